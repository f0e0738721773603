// The bidder's side of a sealed bid, as pure functions: the bid form read as the opening reads
// it (bidding/rules/forms.py), the plaintext (the form's canonical JSON, or a ZIP of bid.json
// and the documents, as bidding/client.py builds it), sealing with age, the file key of a
// bid's header, and the checks of receipts and inclusion proofs. Nothing here touches the
// page or the network. Refusals are [textKey, values] pairs for the page to put in words.
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { deflateSync, zipSync } from "fflate";
import { hexToBytes } from "./bytes.js";

// --- limits of the opening (bidding/rules/forms.py) -----------------------------------------

const MIB = 1024 * 1024;
export const PRICE_FIELD = "price";
export const BID_FORM_NAME = "bid.json";
export const ATTACHMENTS_FOLDER = "attachments/";
export const MAX_TEXT_CHARS = 10_000;
export const MAX_DECIMAL_CHARS = 40;
export const MAX_FORM_BYTES = 1 * MIB;
export const MAX_ENTRIES = 1000;
export const MAX_ENTRY_NAME_CHARS = 500;
export const MAX_DOCUMENT_BYTES = 512 * MIB;
export const MAX_TOTAL_BYTES = 1024 * MIB;
const MAX_COMPRESSION_RATIO = 200;
const RATIO_CHECKED_ABOVE_BYTES = 1 * MIB;
const MAX_SAFE_INTEGER = 2n ** 53n - 1n;
const AGE_MAGIC = "age-encryption.org/v1\n";

// --- canonical JSON (bidding/crypto/canonical.py) ------------------------------------------

/** The canonical JSON text of a value: sorted keys, no whitespace, integers only, no floats. */
export function canonicalJson(value) {
  if (value === null || value === true || value === false) return String(value);
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw new TypeError("strings must not contain lone surrogates");
    // JSON.stringify escapes exactly what canonical_json does: ", \, and C0 controls
    // (\b \t \n \f \r by name, the rest as lowercase \u00xx); nothing else.
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`${value} is not allowed in canonical JSON: decimals travel as strings`);
    }
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object") {
    // The default sort compares UTF-16 code units, which is the order RFC 8785 asks for.
    const keys = Object.keys(value).sort();
    return `{${keys.map((key) => `${canonicalJson(key)}:${canonicalJson(value[key])}`).join(",")}}`;
  }
  throw new TypeError(`${typeof value} is not allowed in canonical JSON`);
}

/** The canonical JSON of a value as UTF-8 bytes: what is signed, hashed or sealed. */
export function canonicalBytes(value) {
  return new TextEncoder().encode(canonicalJson(value));
}

// --- decimals as text, compared exactly ---------------------------------------------------

const DECIMAL_TEXT = /^-?[0-9]+(\.[0-9]+)?$/;

/** Whether the text is a plainly written decimal, as the platform reads one. */
export function isDecimalText(text) {
  return typeof text === "string" && text.length <= MAX_DECIMAL_CHARS && DECIMAL_TEXT.test(text);
}

function fraction(text) {
  return String(text).split(".")[1] ?? "";
}

function scaled(text, places) {
  const negative = text.startsWith("-");
  const [whole, part = ""] = text.replace(/^-/, "").split(".");
  const digits = BigInt(whole + part.padEnd(places, "0"));
  return negative ? -digits : digits;
}

/** -1, 0 or 1 as decimal text a is below, equal to or above decimal text b; exact. */
export function compareDecimal(a, b) {
  const places = Math.max(fraction(a).length, fraction(b).length);
  const x = scaled(String(a), places);
  const y = scaled(String(b), places);
  return x < y ? -1 : x > y ? 1 : 0;
}

// --- the bid form --------------------------------------------------------------------------

/** The tender's fields as the opening reads them: price first, always a required decimal. */
export function formRules(bidFields) {
  const rules = (bidFields ?? []).map((f) => ({
    name: f.name,
    label: f.label || f.name,
    kind: f.type,
    required: f.required !== false,
    min: f.min === null || f.min === undefined ? null : String(f.min),
    max: f.max === null || f.max === undefined ? null : String(f.max),
  }));
  const price = rules.find((rule) => rule.name === PRICE_FIELD);
  return [
    { label: "Price", min: null, max: null, ...price, name: PRICE_FIELD, kind: "decimal", required: true },
    ...rules.filter((rule) => rule.name !== PRICE_FIELD),
  ];
}

const refuse = (key, values = {}) => ({ problem: [key, values] });

/**
 * One field's value from what was typed (text) or ticked (boolean): {value}, {omit: true} for
 * an optional field left empty, or {problem: [textKey, values]}.
 */
export function readField(rule, raw) {
  if (rule.kind === "boolean") return { value: raw === true };
  if (rule.kind === "text") {
    const text = String(raw ?? "");
    if (text.trim() === "") return rule.required ? refuse("bid_err_required") : { omit: true };
    if (text.length > MAX_TEXT_CHARS) return refuse("bid_err_text_long", { n: MAX_TEXT_CHARS });
    if (!text.isWellFormed()) return refuse("bid_err_text_invalid");
    return { value: text };
  }
  // Full-width digits and points typed with a Chinese input method are the digits meant.
  const text = String(raw ?? "").normalize("NFKC").trim();
  if (text === "") return rule.required ? refuse("bid_err_required") : { omit: true };
  let value;
  if (rule.kind === "integer") {
    if (!/^-?[0-9]+$/.test(text)) return refuse("bid_err_integer");
    const whole = BigInt(text);
    if (whole > MAX_SAFE_INTEGER || whole < -MAX_SAFE_INTEGER) {
      return refuse("bid_err_integer_range", { n: String(MAX_SAFE_INTEGER) });
    }
    value = Number(whole);
  } else {
    if (!isDecimalText(text)) {
      return refuse(rule.name === PRICE_FIELD ? "bid_err_money" : "bid_err_decimal");
    }
    value = text;
  }
  const number = String(value);
  if (rule.name === PRICE_FIELD) {
    if (/[1-9]/.test(fraction(number).slice(2))) return refuse("bid_err_cents");
    if (compareDecimal(number, "0") <= 0) return refuse("bid_err_positive");
  }
  if (rule.min !== null && compareDecimal(number, rule.min) < 0) return refuse("bid_err_min", { min: rule.min });
  if (rule.max !== null && compareDecimal(number, rule.max) > 0) return refuse("bid_err_max", { max: rule.max });
  return { value };
}

/**
 * The bid form from the page's values ({name: text or boolean}), checked as the opening
 * will check it, price range included: {form, problems: {name: [textKey, values]}}.
 */
export function readForm(rules, raws, { ceiling, floor = null }) {
  const form = {};
  const problems = {};
  for (const rule of rules) {
    const read = readField(rule, raws[rule.name]);
    if (read.problem) problems[rule.name] = read.problem;
    else if (!read.omit) form[rule.name] = read.value;
  }
  const price = form[PRICE_FIELD];
  if (price !== undefined) {
    if (ceiling !== null && ceiling !== undefined && compareDecimal(price, ceiling) > 0) {
      problems[PRICE_FIELD] = ["bid_err_above_ceiling", { ceiling }];
    } else if (floor !== null && floor !== undefined && compareDecimal(price, floor) < 0) {
      problems[PRICE_FIELD] = ["bid_err_below_floor", { floor }];
    }
  }
  if (!Object.keys(problems).length && canonicalBytes(form).length > MAX_FORM_BYTES) {
    problems[PRICE_FIELD] = ["bid_err_form_large", {}];
  }
  return { form, problems };
}

// --- attachments and the plaintext --------------------------------------------------------

const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/** Why a document's file name would be refused inside the archive, or null. */
export function attachmentNameProblem(name) {
  if (!name || name === "." || name === "..") return ["bid_err_name_empty", {}];
  if ((ATTACHMENTS_FOLDER + name).length > MAX_ENTRY_NAME_CHARS) {
    return ["bid_err_name_long", { n: MAX_ENTRY_NAME_CHARS - ATTACHMENTS_FOLDER.length }];
  }
  if (/\p{Cc}/u.test(name) || BIDI_CONTROLS.test(name)) return ["bid_err_name_control", {}];
  if (/[:\\/]/.test(name)) return ["bid_err_name_character", {}];
  if (!name.isWellFormed()) return ["bid_err_name_control", {}];
  return null;
}

/**
 * The keys under which two names are one file where the archive is unpacked (the opening folds
 * with NFC and casefold; lower(upper(x)) catches what casefold adds to lowercasing, as ß/ss).
 */
export function foldedNames(name) {
  const nfc = name.normalize("NFC");
  return [nfc.toLowerCase(), nfc.toUpperCase().toLowerCase()];
}

/** The entries of a ZIP written by fflate (no comment): name, stored size and real size. */
function zipEntries(zip) {
  const view = new DataView(zip.buffer, zip.byteOffset, zip.byteLength);
  const end = zip.length - 22;
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  const decoder = new TextDecoder();
  const entries = [];
  for (let i = 0; i < count; i++) {
    const nameLength = view.getUint16(at + 28, true);
    entries.push({
      name: decoder.decode(zip.subarray(at + 46, at + 46 + nameLength)),
      compressed: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
    });
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return entries;
}

/**
 * Whether deflating a document is worth its time: samples from its start, middle and end are
 * tried quickly, so scans, images and office files, compressed already, are stored as they are.
 */
function worthDeflating(bytes) {
  const sample = 256 * 1024;
  if (bytes.length <= 4 * sample) return true;
  let raw = 0;
  let packed = 0;
  for (const at of [0, Math.floor(bytes.length / 2), bytes.length - sample]) {
    const part = bytes.subarray(at, at + sample);
    raw += part.length;
    packed += deflateSync(part, { level: 1 }).length;
  }
  return packed < raw * 0.9;
}

/**
 * The bid as it is sealed: the form's canonical JSON, or, with documents ([{name, bytes}]), a
 * ZIP of bid.json at its root and attachments/<name>. A document compressed already is stored;
 * one that deflates beyond the ratio the opening takes for a zip bomb is stored too.
 */
export function buildPlaintext(form, documents = []) {
  const data = canonicalBytes(form);
  if (!documents.length) return data;
  const deflated = new Set(
    documents.filter((document) => worthDeflating(document.bytes)).map((document) => ATTACHMENTS_FOLDER + document.name),
  );
  for (;;) {
    const entries = { [BID_FORM_NAME]: data };
    for (const document of documents) {
      const name = ATTACHMENTS_FOLDER + document.name;
      entries[name] = [document.bytes, { level: deflated.has(name) ? 6 : 0 }];
    }
    const zip = zipSync(entries);
    const tooCompressible = zipEntries(zip).filter(
      (entry) =>
        entry.size > RATIO_CHECKED_ABOVE_BYTES && entry.size > entry.compressed * MAX_COMPRESSION_RATIO,
    );
    if (!tooCompressible.length) return zip;
    for (const entry of tooCompressible) deflated.delete(entry.name);
  }
}

// --- sealing -------------------------------------------------------------------------------

/** A refusal to seal, with the text key that says why. */
export class SealingRefused extends Error {
  constructor(key, values = {}) {
    super(key);
    this.key = key;
    this.values = values;
  }
}

/**
 * Whom to seal a bid for this tender to (bidding/client.py sealing_recipients). Platform mode:
 * the tender's recipient. Bidder mode: the organization's own recipient `own`, and the tender's
 * too when backup decryption is on. `now` is the server's clock in milliseconds.
 */
export function sealingRecipients(tender, own, now) {
  if (tender.status !== "published") throw new SealingRefused("bid_refuse_status", { status: tender.status });
  if (now >= Date.parse(tender.bid_deadline)) throw new SealingRefused("bid_refuse_deadline");
  if (typeof tender.opening_recipient !== "string") throw new SealingRefused("bid_refuse_no_recipient");
  if (tender.opening_mode !== "bidder") return [tender.opening_recipient];
  if (!own) throw new SealingRefused("bid_refuse_no_key");
  return tender.backup_decryption ? [own, tender.opening_recipient] : [own];
}

/**
 * The age header at the start of a sealed file: its bytes through the newline of the "---" MAC
 * line (bidding/crypto/age.py header_length), or null if the file has none.
 */
export function headerOf(sealed) {
  const limit = Math.min(sealed.length, 128 * 1024 + 1);
  for (let at = 0; at + 4 < limit; at++) {
    // The first "\n---" starts the MAC line, as header_length finds it: no stanza line does.
    if (sealed[at] === 10 && sealed[at + 1] === 45 && sealed[at + 2] === 45 && sealed[at + 3] === 45) {
      const end = sealed.indexOf(10, at + 1);
      return end === -1 ? null : sealed.subarray(0, end + 1);
    }
  }
  return null;
}

/** The digest a bid's receipt pins its age header by (header_sha256), in hex. */
export function headerSha256(header) {
  return bytesToHex(sha256(header));
}

/**
 * Seal a plaintext (a Blob) with age to the recipients, streaming; onProgress(done, total) as
 * the plaintext is read. Resolves to {bytes, sha256, size, headerSha256} of the sealed file. The bytes are
 * one array, not a Blob: what an upload sends is then what the browser reports it sent.
 */
export async function seal(plaintext, recipients, onProgress) {
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  let read = 0;
  const counted = plaintext.stream().pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        read += chunk.length;
        onProgress?.(read, plaintext.size);
        controller.enqueue(chunk);
      },
    }),
  );
  const sealed = await encrypter.encrypt(counted);
  const reader = sealed.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    size += value.length;
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const part of parts.splice(0)) {
    bytes.set(part, at);
    at += part.length;
  }
  if (new TextDecoder().decode(bytes.subarray(0, AGE_MAGIC.length)) !== AGE_MAGIC) {
    throw new Error("the sealed file is not an age file");
  }
  // WebCrypto's digest is native and several times faster than hashing in JavaScript; age
  // itself needs WebCrypto (a secure context) already.
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const header = headerOf(bytes);
  return { bytes, sha256: bytesToHex(digest), size, headerSha256: header && headerSha256(header) };
}

/** A random Idempotency-Key for one sealed file: a retry of its upload gets the same receipt. */
export function idempotencyKey() {
  return bytesToHex(crypto.getRandomValues(new Uint8Array(16)));
}

// --- the bidder's own key (online decryption) ----------------------------------------------

/** A new X25519 identity and its recipient, made here; the identity never leaves the browser. */
export async function newIdentity() {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** An identity file that age and `bidding` read: the identity first, then comment lines. */
export function identityFileText(identity, recipient, created) {
  return `${identity}\n# public key: ${recipient}\n# created: ${created}\n`;
}

/** The identity in an identity file's text (`#` comments and blank lines skipped); throws. */
export function identityFromText(text) {
  const lines = String(text)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
  const identity = lines.find((line) => /^AGE-SECRET-KEY-1[0-9A-Z]+$/.test(line));
  if (!identity) throw new SealingRefused("bid_refuse_identity_file");
  return identity;
}

/** The recipient (age1…) of an identity. */
export function recipientOf(identity) {
  return identityToRecipient(identity);
}

/** Open a small age file (the key check's challenge) with the identity, as text. */
export async function unsealText(sealed, identity) {
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  return decrypter.decrypt(sealed, "text");
}

/** The 16-byte age file key of a bid, from its header (base64) and the identity, in base64. */
export async function revealFileKey(headerBase64, identity) {
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity);
  return toBase64(await decrypter.decryptHeader(fromBase64(headerBase64)));
}

// --- receipts and the log ------------------------------------------------------------------

/** Strict standard base64 to bytes; throws on anything else. */
export function fromBase64(text) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new TypeError("not base64");
  }
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

export function toBase64(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The platform's published Ed25519 keys (GET /keys) as a Map of key id to raw public key. */
export function publishedKeys(answer) {
  const keys = new Map();
  for (const entry of answer?.keys ?? []) {
    try {
      if (entry.algorithm !== "Ed25519") continue;
      const raw = fromBase64(entry.public_key);
      // A key id is the first 8 bytes of the key's SHA-256: one that is not is no such key.
      if (raw.length === 32 && bytesToHex(sha256(raw).slice(0, 8)) === entry.key_id) keys.set(entry.key_id, raw);
    } catch {
      // a malformed entry names no key
    }
  }
  return keys;
}

/** Whether the signature signs the canonical JSON of body under keys[keyId]; never throws. */
export function signatureValid(body, keyId, signature, keys) {
  try {
    const key = keys.get(keyId);
    if (!key) return false;
    const bytes = fromBase64(signature);
    if (bytes.length !== 64) return false;
    return ed25519.verify(bytes, canonicalBytes(body), key, { zip215: false });
  } catch {
    return false;
  }
}

/** The RFC 6962 leaf hash, sha256(0x00 ‖ data), in hex. */
export function leafHash(data) {
  const prefixed = new Uint8Array(data.length + 1);
  prefixed.set(data, 1);
  return bytesToHex(sha256(prefixed));
}

function nodeHash(left, right) {
  const joined = new Uint8Array(65);
  joined[0] = 1;
  joined.set(left, 1);
  joined.set(right, 33);
  return sha256(joined);
}

/** What is wrong with a receipt (bidding/crypto/receipts.py receipt_problems); [] if genuine. */
export function receiptProblems(receipt, keys) {
  if (!receipt || typeof receipt !== "object" || Array.isArray(receipt)) return [["bid_rx_not_object", {}]];
  const { body, leaf_hash: leaf, key_id: keyId, signature } = receipt;
  if (!body || typeof body !== "object" || Array.isArray(body)) return [["bid_rx_no_body", {}]];
  if (typeof keyId !== "string" || typeof signature !== "string") return [["bid_rx_no_signature", {}]];
  const problems = [];
  if (!keys.has(keyId)) problems.push(["bid_rx_unknown_key", { key: keyId }]);
  else if (!signatureValid(body, keyId, signature, keys)) problems.push(["bid_rx_bad_signature", {}]);
  let expected;
  try {
    expected = leafHash(canonicalBytes(body));
  } catch {
    return [...problems, ["bid_rx_not_canonical", {}]];
  }
  if (leaf !== expected) problems.push(["bid_rx_bad_leaf", {}]);
  return problems;
}

/**
 * What is wrong with the receipt of an upload or a withdrawal (client.check_receipt): its
 * signature, or not matching what was expected ({kind, tender_id, sha256, size}, and for an
 * upload header_sha256, the pin a reveal relies on).
 */
export function checkReceipt(receipt, keys, expected) {
  const problems = receiptProblems(receipt, keys);
  const body = receipt?.body;
  if (body && typeof body === "object") {
    for (const [name, value] of Object.entries(expected)) {
      if (body[name] !== value) problems.push(["bid_rx_mismatch", { name, got: String(body[name]), value: String(value) }]);
    }
    if (!Number.isInteger(body.version)) problems.push(["bid_rx_no_version", {}]);
  }
  return problems;
}

/** Whether the RFC 9162 audit path puts the leaf at index in the tree of size and root. */
export function verifyInclusion({ leaf, index, treeSize, proof, root }) {
  try {
    let r = hexToBytes(leaf);
    const top = hexToBytes(root);
    const path = proof.map(hexToBytes);
    if (r.length !== 32 || top.length !== 32 || path.some((p) => p.length !== 32)) return false;
    if (!(Number.isInteger(index) && Number.isInteger(treeSize) && index >= 0 && index < treeSize)) return false;
    let fn = index;
    let sn = treeSize - 1;
    const half = (n) => Math.floor(n / 2);
    for (const p of path) {
      if (sn === 0) return false;
      if (fn % 2 === 1 || fn === sn) {
        r = nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      } else {
        r = nodeHash(r, p);
      }
      fn = half(fn);
      sn = half(sn);
    }
    return sn === 0 && sameBytes(r, top);
  } catch {
    return false;
  }
}

/**
 * The header digest the bidder's own receipt pins for this tender's bid (client.pinned_header):
 * {pinned} or {problems: [[textKey, values], …]} when the receipt cannot vouch for a header.
 */
export function pinnedHeader(receipt, keys, tenderId) {
  const problems = receiptProblems(receipt, keys);
  if (problems.length) return { problems };
  const body = receipt.body;
  if (body.tender_id !== tenderId) return { problems: [["bid_rx_mismatch", { name: "tender_id", got: String(body.tender_id), value: tenderId }]] };
  if (body.kind !== "bid") return { problems: [["bid_reveal_rx_withdrawal", {}]] };
  if (typeof body.header_sha256 !== "string") return { problems: [["bid_reveal_rx_no_pin", {}]] };
  return { pinned: body.header_sha256 };
}

/**
 * Why the header the platform served (base64) is not the one the receipt pins, as a
 * [textKey, values] refusal; null when it is. No file key may be computed from a refused one.
 */
export function servedHeaderProblem(headerBase64, receipt) {
  let served;
  try {
    served = headerSha256(fromBase64(headerBase64));
  } catch {
    return ["bid_reveal_header_malformed", {}];
  }
  const pinned = receipt.body.header_sha256;
  if (served === pinned) return null;
  return ["bid_reveal_header_mismatch", { version: receipt.body.version, served: served.slice(0, 16), pinned: String(pinned).slice(0, 16) }];
}

/** The default name of a receipt file (client.receipt_filename); withdrawals are marked. */
export function receiptFilename(tenderId, receipt) {
  const version = receipt?.body?.version;
  if (!Number.isInteger(version)) return `receipt-${tenderId}.json`;
  const kind = receipt.body.kind === "withdrawal" ? "-withdrawal" : "";
  return `receipt-${tenderId}-v${version}${kind}.json`;
}

/** A receipt as a file: indented UTF-8 JSON, like `bidding submit` saves it. */
export function receiptFileText(receipt) {
  return `${JSON.stringify(receipt, null, 2)}\n`;
}
