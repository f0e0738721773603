// The bidder portal: a tender's bid page (the form, documents, sealing in the browser, the
// upload with its progress, the receipt checked here, replacing and withdrawing, checking a
// saved receipt, revealing a bid in the decryption window) and the page of the organization's
// own decryption key. Only sealed files and file keys leave the browser, never a plaintext
// bid or an identity.
import "./bidder.css";
import { ApiError, api, serverNow, upload } from "./api.js";
import { formatSize } from "./bytes.js";
import { download, field, grouped, h, money, notice, put, when } from "./dom.js";
import { t } from "./i18n.js";
import { identityForm } from "./identity.js";
import { countdown, loadTender, tenderFacts } from "./public.js";
import * as sealing from "./sealing.js";

const RETRIED_STATUSES = new Set([0, 408, 429, 500, 502, 503, 504]);
const POLL_MS = 3000;

/** Problems ([key, values] pairs) in words, joined. */
function words(problems) {
  return problems.map(([key, values]) => t(key, values)).join("; ");
}

function errorText(error) {
  if (error instanceof sealing.SealingRefused) return t(error.key, error.values);
  return error?.message || String(error);
}

/** The platform's published signing keys, fetched once per page. */
function keyCache() {
  let keys = null;
  return async () => {
    keys ??= sealing.publishedKeys(await api("/keys"));
    return keys;
  };
}

// The receipts the platform gave at submission, kept in this browser by tender and organization.
// A reveal checks the header it is served against them, never against the receipts that
// GET …/bids/mine serves later: a compromised platform holds the signing key and could sign
// a receipt for another bid's header (README.md, online decryption).
function keptKey(tenderId, organizationId) {
  return `bidding.receipts.${organizationId}.${tenderId}`;
}

function keptReceipts(tenderId, organizationId) {
  try {
    const list = JSON.parse(localStorage.getItem(keptKey(tenderId, organizationId)) ?? "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function keepReceipt(tenderId, organizationId, receipt) {
  if (!organizationId) return;
  const list = keptReceipts(tenderId, organizationId).filter((kept) => kept?.leaf_hash !== receipt.leaf_hash);
  list.push(receipt);
  try {
    localStorage.setItem(keptKey(tenderId, organizationId), JSON.stringify(list));
  } catch {
    // storage full or turned off: the receipt can still be downloaded and chosen at the reveal
  }
}

/**
 * The newest bid receipt kept for the tender, by version (client.newest_receipt):
 * {receipt}, with `withdrawn` (a version) when a kept withdrawal receipt ends it; {} if none.
 */
function newestKept(tenderId, organizationId) {
  const list = keptReceipts(tenderId, organizationId);
  const bids = list.filter((kept) => kept?.body?.kind === "bid" && Number.isInteger(kept.body.version));
  if (!bids.length) return {};
  const receipt = bids.reduce((newest, kept) => (kept.body.version > newest.body.version ? kept : newest));
  const withdrawal = list.find((kept) => kept?.body?.kind === "withdrawal" && kept.body.version >= receipt.body.version);
  return withdrawal ? { receipt, withdrawn: withdrawal.body.version } : { receipt };
}

/** The way to the page of the organization's key, where a refusal to seal is put right. */
function keysLink() {
  return h("a", { href: "#/keys" }, t("bid_to_keys"));
}

function signInFirst(main, next, text) {
  main.replaceChildren(
    notice(text),
    h("p", {}, h("a", { class: "button", href: `#/sign-in?next=${next}` }, t("bid_sign_in_link"))),
  );
}

function notBidder(main, user) {
  main.replaceChildren(notice(t("bid_not_bidder", { role: t(`role_${user.role}`) }), "error"));
}

/** Does the proof hold that a genuine receipt is in its tender's sealed log (client.check_inclusion). */
async function checkInclusion(receipt, keys) {
  const tenderId = receipt.body.tender_id;
  let signed;
  try {
    signed = await api(`/tenders/${tenderId}/log/head`);
  } catch (error) {
    if (error.status === 404 || error.status === 409) return { proven: null, text: t("bid_incl_not_yet") };
    throw error;
  }
  const head = signed?.tree_head ?? {};
  if (!sealing.signatureValid(head, signed?.key_id, signed?.signature, keys)) {
    return { proven: false, text: t("bid_incl_head_unsigned") };
  }
  if (head.tender_id !== tenderId) return { proven: false, text: t("bid_incl_other_tender") };
  let answer;
  try {
    answer = await api(`/tenders/${tenderId}/log/proof?leaf_hash=${encodeURIComponent(receipt.leaf_hash)}`);
  } catch (error) {
    if (error.status === 404) return { proven: false, text: t("bid_incl_absent", { at: when(head.sealed_at) }) };
    if (error.status === 409) return { proven: null, text: t("bid_incl_not_yet") };
    throw error;
  }
  const proven =
    answer.tree_size === head.tree_size &&
    sealing.verifyInclusion({
      leaf: receipt.leaf_hash,
      index: answer.leaf_index,
      treeSize: head.tree_size,
      proof: answer.proof ?? [],
      root: head.root_hash,
    });
  if (!proven) return { proven: false, text: t("bid_incl_bad", { size: head.tree_size }) };
  return {
    proven: true,
    text: t("bid_incl_ok", { index: answer.leaf_index + 1, size: head.tree_size, at: when(head.sealed_at) }),
  };
}

// --- the bid page --------------------------------------------------------------------------

async function showBid({ main, params, user }) {
  const tenderId = params[0];
  if (!user) return signInFirst(main, `/tenders/${tenderId}/bid`, t("bid_sign_in_first"));
  if (user.role !== "bidder") return notBidder(main, user);
  let tender = await loadTender(tenderId);
  const keys = keyCache();
  const stops = new Set();
  let busy = false; // sealing or uploading: the page is not redrawn under the bidder's hands
  let left = false;

  const every = (ms, action) => {
    const timer = setInterval(action, ms);
    const stop = () => clearInterval(timer);
    stops.add(stop);
    return stop;
  };

  const mineBox = h("section", { class: "card", "aria-labelledby": "bid-mine-title" });
  const receiptBox = h("div", { "aria-live": "polite" });
  const formBox = h("section", { class: "card", "aria-labelledby": "bid-form-title" });
  const revealBox = h("section", { class: "card", "aria-labelledby": "bid-reveal-title" });
  const dialogs = [];
  let mine = { bid: null, receipts: [] };
  const organization = user.organization?.id;

  // -- the receipt of an upload or a withdrawal --

  async function showReceipt(receipt, { replayed = false, expected }) {
    let problems;
    try {
      problems = sealing.checkReceipt(receipt, await keys(), expected);
    } catch (error) {
      problems = [["bid_failed", { reason: errorText(error) }]];
    }
    // Only a receipt that checks out may vouch for a header at the reveal.
    if (!problems.length) keepReceipt(tender.id, organization, receipt);
    const body = receipt?.body ?? {};
    const withdrawal = expected.kind === "withdrawal";
    const verdict = problems.length
      ? notice(t("bid_receipt_failed", { problems: words(problems) }), "error")
      : notice(
          withdrawal
            ? t("bid_withdrawal_verified", { key: receipt.key_id, version: body.version })
            : t("bid_receipt_verified", { key: receipt.key_id, sha256: body.sha256, size: grouped(body.size) }),
          "ok",
        );
    const rows = [
      ["bid_kind", t(`bid_kind_${body.kind}`)],
      ["bid_version", String(body.version)],
      ["bid_received", when(body.received_at)],
      ["bid_sha256", h("code", {}, String(body.sha256))],
      ["bid_size", `${grouped(body.size)} B`],
      ["bid_bid_id", h("code", {}, String(body.bid_id))],
      ["bid_leaf_hash", h("code", {}, String(receipt?.leaf_hash))],
    ];
    receiptBox.replaceChildren(
      h(
        "section",
        { class: "card receipt", "aria-labelledby": "bid-receipt-title" },
        h("h3", { id: "bid-receipt-title" }, t(withdrawal ? "bid_withdrawal_receipt_title" : "bid_receipt_title")),
        verdict,
        replayed ? notice(t("bid_receipt_replayed")) : null,
        h("dl", { class: "receipt" }, ...rows.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])),
        h(
          "button",
          {
            type: "button",
            onclick: () =>
              download(sealing.receiptFilename(tender.id, receipt), sealing.receiptFileText(receipt), "application/json"),
          },
          t("bid_receipt_download"),
        ),
      ),
    );
  }

  // -- the current bid and its receipts --

  function takesBids() {
    return tender.status === "published" && serverNow() < Date.parse(tender.bid_deadline);
  }

  async function refreshMine() {
    mine = await api(`/tenders/${tender.id}/bids/mine`);
    let published = null;
    try {
      published = await keys();
    } catch {
      published = null; // the receipts are still shown, unchecked
    }
    const { bid, receipts } = mine;
    const parts = [h("h3", { id: "bid-mine-title" }, t("bid_mine"))];
    if (bid) {
      const rows = [
        ["bid_version", String(bid.version)],
        ["bid_sha256", h("code", {}, bid.sha256)],
        ["bid_size", bid.size < 1024 ? `${bid.size} B` : `${formatSize(bid.size)} (${grouped(bid.size)} B)`],
        ["bid_received", when(bid.received_at)],
        ["bid_status", t(`bid_status_${bid.status}`)],
      ];
      parts.push(h("dl", { class: "current" }, ...rows.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)])));
      if (takesBids()) {
        parts.push(h("div", { class: "actions" }, h("button", { type: "button", class: "danger", onclick: () => confirmWithdrawal(bid) }, t("bid_withdraw"))));
      }
    } else {
      const last = receipts[receipts.length - 1];
      parts.push(
        h("p", {}, last?.body?.kind === "withdrawal" ? t("bid_withdrawn_at", { at: when(last.body.received_at) }) : t("bid_none")),
      );
    }
    if (receipts.length) {
      const rows = receipts.map((receipt) => {
        const body = receipt.body ?? {};
        const problems = published ? sealing.receiptProblems(receipt, published) : [["bid_failed", { reason: "GET /keys" }]];
        if (!problems.length && body.tender_id !== tender.id) {
          problems.push(["bid_rx_mismatch", { name: "tender_id", got: body.tender_id, value: tender.id }]);
        }
        const kind = t(`bid_kind_${body.kind}`);
        return h(
          "tr",
          {},
          h("td", {}, kind),
          h("td", { class: "number" }, String(body.version)),
          h("td", {}, when(body.received_at)),
          h("td", { class: "optional" }, h("code", {}, String(body.sha256).slice(0, 16) + "…")),
          h(
            "td",
            { class: `check ${problems.length ? "bad" : "ok"}` },
            problems.length ? t("bid_check_bad", { problems: words(problems) }) : `✓ ${t("bid_check_ok")}`,
          ),
          h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                "aria-label": t("bid_download_named", { kind, version: body.version }),
                onclick: () =>
                  download(sealing.receiptFilename(tender.id, receipt), sealing.receiptFileText(receipt), "application/json"),
              },
              t("bid_download"),
            ),
          ),
        );
      });
      parts.push(
        h("h4", {}, t("bid_receipts")),
        h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "receipts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t("bid_kind")),
                h("th", { scope: "col", class: "number" }, t("bid_version")),
                h("th", { scope: "col" }, t("bid_received")),
                h("th", { scope: "col", class: "optional" }, "SHA-256"),
                h("th", { scope: "col" }, t("bid_check")),
                h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("bid_download"))),
              ),
            ),
            h("tbody", {}, ...rows),
          ),
        ),
      );
    }
    const kept = newestKept(tender.id, organization).receipt;
    if (kept) {
      parts.push(
        h(
          "p",
          { class: "kept" },
          t("bid_kept", { version: kept.body.version }),
          " ",
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              onclick: () => download(sealing.receiptFilename(tender.id, kept), sealing.receiptFileText(kept), "application/json"),
            },
            t("bid_kept_download"),
          ),
        ),
      );
    }
    mineBox.replaceChildren(...parts);
    drawFormHeading();
  }

  // -- withdrawing, with a confirmation step --

  function confirmWithdrawal(bid) {
    const message = h("div", { "aria-live": "assertive" });
    const cancel = h("button", { type: "button", class: "secondary" }, t("bid_withdraw_cancel"));
    const confirm = h("button", { type: "button", class: "danger" }, t("bid_withdraw_confirm"));
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": "bid-withdraw-title", "aria-describedby": "bid-withdraw-text" },
      h("h3", { id: "bid-withdraw-title" }, t("bid_withdraw_title")),
      h("p", { id: "bid-withdraw-text" }, t("bid_withdraw_text", { version: bid.version })),
      message,
      h("div", { class: "actions" }, confirm, cancel),
    );
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    cancel.addEventListener("click", close);
    dialog.addEventListener("close", () => dialog.remove());
    confirm.addEventListener("click", async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      try {
        const receipt = await api(`/tenders/${tender.id}/bids/mine`, { method: "DELETE" });
        close();
        await showReceipt(receipt, {
          expected: { kind: "withdrawal", tender_id: tender.id, sha256: bid.sha256, size: bid.size },
        });
        await refreshMine();
        receiptBox.querySelector("h3")?.setAttribute("tabindex", "-1");
        receiptBox.querySelector("h3")?.focus();
      } catch (error) {
        message.replaceChildren(notice(t("bid_withdraw_failed", { reason: errorText(error) }), "error"));
        confirm.disabled = false;
        cancel.disabled = false;
      }
    });
    dialogs.push(dialog);
    main.append(dialog);
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus; Escape closes too
  }

  // -- the bid form --

  const formHeading = h("h3", { id: "bid-form-title" });
  const replaceNote = h("p", { class: "lead" });

  function drawFormHeading() {
    formHeading.textContent = t(mine.bid ? "bid_replace_title" : "bid_form_title");
    replaceNote.textContent = mine.bid ? t("bid_replaces", { version: mine.bid.version }) : "";
    replaceNote.hidden = !mine.bid;
  }

  function problemText([key, values]) {
    const shown = { ...values };
    if (shown.ceiling !== undefined) shown.ceiling = money(shown.ceiling, tender.currency);
    if (shown.floor !== undefined) shown.floor = money(shown.floor, tender.currency);
    return t(key, shown);
  }

  function hintFor(rule) {
    if (rule.name === sealing.PRICE_FIELD) {
      return t("bid_hint_price", {
        currency: tender.currency,
        ceiling: money(tender.ceiling_price, tender.currency),
        floor: tender.floor_price ? t("bid_hint_floor", { floor: money(tender.floor_price, tender.currency) }) : "",
      });
    }
    const base = t(`bid_hint_${rule.kind}`);
    const bounds = [
      rule.min !== null ? t("bid_hint_min", { min: rule.min }) : null,
      rule.max !== null ? t("bid_hint_max", { max: rule.max }) : null,
    ].filter(Boolean);
    return bounds.length ? `${base}. ${t("bid_hint_range", { range: bounds.join(", ") })}` : base;
  }

  function drawForm() {
    if (!takesBids()) {
      const closed =
        tender.status === "published" ? t("bid_deadline_passed") : t("bid_closed", { status: t(`status_${tender.status}`) });
      formBox.replaceChildren(h("h3", { id: "bid-form-title" }, t("bid_form_title")), notice(closed));
      return;
    }
    const rules = sealing.formRules(tender.bid_fields);
    const controls = new Map();
    const fields = rules.map((rule) => {
      const id = `bid-field-${rule.name}`;
      let control;
      if (rule.kind === "boolean") {
        control = h("input", { type: "checkbox", id, name: rule.name });
      } else if (rule.kind === "text") {
        control = h("textarea", { id, name: rule.name, maxlength: sealing.MAX_TEXT_CHARS, rows: 3 });
      } else {
        control = h("input", {
          type: "text",
          id,
          name: rule.name,
          inputmode: rule.kind === "integer" ? "numeric" : "decimal",
          autocomplete: "off",
          spellcheck: "false",
        });
      }
      if (rule.required && rule.kind !== "boolean") control.setAttribute("aria-required", "true");
      const label =
        rule.name === sealing.PRICE_FIELD ? `${rule.label} (${tender.currency})` : rule.label;
      const required = rule.required && rule.kind !== "boolean" ? t("bid_required_mark") : "";
      const wrapper = field(`${label}${required}`, control, hintFor(rule));
      const error = h("p", { id: `${id}-error`, class: "field-error", hidden: true });
      wrapper.append(error);
      if (rule.kind === "boolean") {
        wrapper.classList.add("inline");
        wrapper.prepend(control);
      }
      controls.set(rule.name, { rule, control, error });
      return wrapper;
    });

    // Documents: kept as File objects until sealing; they are read only to be sealed.
    const documents = [];
    const picker = h("input", { type: "file", multiple: true, id: "bid-attachments" });
    const listing = h("ul", { class: "attachments", "aria-label": t("bid_attached") });
    const attachMessage = h("div", { "aria-live": "polite" });
    const drawDocuments = () => {
      listing.replaceChildren(
        ...(documents.length
          ? documents.map((file, index) =>
              h(
                "li",
                {},
                h("span", { class: "name" }, file.name),
                h("span", { class: "size" }, formatSize(file.size)),
                h(
                  "button",
                  {
                    type: "button",
                    class: "secondary",
                    "aria-label": t("bid_remove_named", { name: file.name }),
                    onclick: () => {
                      documents.splice(index, 1);
                      attachMessage.replaceChildren();
                      drawDocuments();
                      picker.focus();
                    },
                  },
                  t("bid_remove"),
                ),
              ),
            )
          : [h("li", { class: "empty" }, t("bid_no_attachments"))]),
      );
    };
    picker.addEventListener("change", () => {
      const refused = [];
      for (const file of picker.files) {
        const taken = new Set(documents.flatMap((d) => sealing.foldedNames(d.name)));
        const total = documents.reduce((sum, d) => sum + d.size, 0);
        const problem =
          sealing.attachmentNameProblem(file.name) ??
          (sealing.foldedNames(file.name).some((name) => taken.has(name)) ? ["bid_attach_duplicate", {}] : null) ??
          (file.size > sealing.MAX_DOCUMENT_BYTES ? ["bid_attach_too_big", {}] : null) ??
          (total + file.size > sealing.MAX_TOTAL_BYTES ? ["bid_attach_total", {}] : null) ??
          (documents.length + 1 >= sealing.MAX_ENTRIES ? ["bid_attach_too_many", { n: sealing.MAX_ENTRIES - 1 }] : null);
        if (problem) refused.push(t("bid_attach_refused", { name: file.name, reason: t(...problem) }));
        else documents.push(file);
      }
      picker.value = ""; // the same file may be chosen again after removing it
      attachMessage.replaceChildren(...refused.map((text) => notice(text, "error")));
      drawDocuments();
    });
    drawDocuments();

    const submit = h("button", { type: "submit" }, t("bid_submit"));
    const retry = h("button", { type: "button", hidden: true }, t("bid_retry"));
    const retryHint = h("small", { id: "bid-retry-hint", hidden: true }, t("bid_retry_hint"));
    retry.setAttribute("aria-describedby", retryHint.id);
    const stage = h("span", { id: "bid-progress-label" });
    const bar = h("progress", { max: 100, value: 0, "aria-labelledby": "bid-progress-label" });
    const amount = h("output", { for: "bid-progress-label" });
    const transfer = h("div", { class: "transfer", hidden: true }, stage, bar, amount);
    const message = h("div", { "aria-live": "assertive" });
    let pending = null; // a sealed file whose upload failed: {sealed, key}

    const progress = (label) => (done, total) => {
      const percent = total ? Math.floor((done / total) * 100) : 0;
      stage.textContent = label;
      bar.value = percent;
      amount.textContent = t("bid_progress", { percent, done: formatSize(done), total: formatSize(total) });
    };

    const markField = ({ control, error }, problem) => {
      const hint = `${control.id}-hint`;
      if (problem) {
        error.textContent = problemText(problem);
        error.hidden = false;
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", `${error.id} ${hint}`);
      } else {
        error.textContent = "";
        error.hidden = true;
        control.removeAttribute("aria-invalid");
        control.setAttribute("aria-describedby", hint);
      }
    };
    const markFields = (problems) => {
      for (const entry of controls.values()) markField(entry, problems[entry.rule.name]);
    };
    const readFields = () => {
      const raws = {};
      for (const { rule, control } of controls.values()) {
        raws[rule.name] = rule.kind === "boolean" ? control.checked : control.value;
      }
      return sealing.readForm(rules, raws, { ceiling: tender.ceiling_price, floor: tender.floor_price });
    };
    const marked = () => [...controls.values()].filter(({ control }) => control.hasAttribute("aria-invalid")).length;
    // A field marked wrong is read again as it changes, so that no mark outlives its cause;
    // the others wait for the next submit.
    for (const entry of controls.values()) {
      entry.control.addEventListener("input", () => {
        if (!entry.control.hasAttribute("aria-invalid")) return;
        const before = marked();
        markField(entry, readFields().problems[entry.rule.name]);
        const left = marked();
        if (!left) message.replaceChildren();
        else if (left !== before) message.replaceChildren(notice(t("bid_fix_fields", { n: left }), "error"));
      });
    }

    const send = async () => {
      const { sealed, key } = pending;
      retry.hidden = true;
      retryHint.hidden = true;
      busy = true;
      submit.disabled = true;
      transfer.hidden = false;
      const uploading = progress(t("bid_uploading"));
      uploading(0, sealed.size);
      try {
        const answer = await upload(`/tenders/${tender.id}/bids`, sealed.bytes, {
          headers: { "Idempotency-Key": key, "Content-Type": "application/octet-stream" },
          onProgress: uploading,
        });
        pending = null;
        transfer.hidden = true;
        await showReceipt(answer.body, {
          replayed: answer.status === 200,
          expected: {
            kind: "bid",
            tender_id: tender.id,
            sha256: sealed.sha256,
            size: sealed.size,
            header_sha256: sealed.headerSha256,
          },
        });
        await refreshMine().catch(() => null);
        receiptBox.querySelector("h3")?.setAttribute("tabindex", "-1");
        receiptBox.querySelector("h3")?.focus();
      } catch (error) {
        const retried = error instanceof ApiError && (RETRIED_STATUSES.has(error.status) || error.type === "upload_interrupted");
        message.replaceChildren(notice(t("bid_upload_failed", { reason: errorText(error) }), "error"));
        if (retried) {
          retry.hidden = false;
          retryHint.hidden = false;
          retry.focus();
        } else {
          pending = null;
          transfer.hidden = true;
        }
      } finally {
        busy = false;
        submit.disabled = false;
      }
    };
    retry.addEventListener("click", () => {
      if (pending && !busy) send();
    });

    const form = h(
      "form",
      { class: "bid-form", novalidate: true },
      ...fields,
      field(t("bid_attachments"), picker, t("bid_attachments_hint")),
      listing,
      attachMessage,
      h("div", { class: "actions" }, submit, retry),
      retryHint,
      transfer,
      message,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (busy) return;
      message.replaceChildren();
      const { form: values, problems } = readFields();
      markFields(problems);
      const wrong = Object.keys(problems);
      if (wrong.length) {
        message.replaceChildren(notice(t("bid_fix_fields", { n: wrong.length }), "error"));
        controls.get(wrong[0]).control.focus();
        return;
      }
      busy = true;
      submit.disabled = true;
      retry.hidden = true;
      retryHint.hidden = true;
      pending = null;
      try {
        let own = null;
        if (tender.opening_mode === "bidder") {
          const current = (await api("/me/keys")).current;
          if (!current) throw new sealing.SealingRefused("bid_refuse_no_key");
          if (!current.verified_at) throw new sealing.SealingRefused("bid_refuse_unverified");
          own = current.recipient;
        }
        const recipients = sealing.sealingRecipients(tender, own, serverNow());
        transfer.hidden = false;
        progress(t("bid_preparing"))(0, 1);
        // Let the page paint the stage before the archive is built.
        await new Promise((resolve) => setTimeout(resolve, 30));
        const read = await Promise.all(
          documents.map(async (file) => ({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) })),
        );
        const plaintext = new Blob([sealing.buildPlaintext(values, read)]);
        const sealed = await sealing.seal(plaintext, recipients, progress(t("bid_sealing")));
        pending = { sealed, key: sealing.idempotencyKey() };
      } catch (error) {
        busy = false;
        submit.disabled = false;
        transfer.hidden = true;
        const refusal = error instanceof sealing.SealingRefused;
        const text = refusal
          ? t(error.key, { ...error.values, status: t(`status_${error.values.status ?? tender.status}`) })
          : t("bid_seal_failed", { reason: errorText(error) });
        const keyProblem = refusal && ["bid_refuse_no_key", "bid_refuse_unverified"].includes(error.key);
        put(message, notice(text, "error"), keyProblem ? h("p", {}, keysLink()) : null);
        return;
      }
      await send();
    });

    const sealingNote =
      tender.opening_mode === "bidder"
        ? t("bid_sealing_bidder", { backup: tender.backup_decryption ? t("bid_sealing_backup") : "" })
        : t("bid_sealing_platform");
    formBox.replaceChildren(formHeading, replaceNote, h("p", { class: "lead" }, sealingNote), form);
    drawFormHeading();
  }

  // -- checking a saved receipt --

  function savedReceiptBox() {
    const picker = h("input", { type: "file", accept: ".json,application/json", id: "bid-saved-receipt" });
    const result = h("div", { "aria-live": "polite" });
    picker.addEventListener("change", async () => {
      const file = picker.files[0];
      if (!file) return;
      result.replaceChildren(h("p", {}, t("loading")));
      let receipt;
      try {
        const text = await file.text();
        picker.value = ""; // the same file may be checked again later, once the log is sealed
        receipt = JSON.parse(text);
      } catch {
        result.replaceChildren(notice(t("bid_saved_not_json"), "error"));
        return;
      }
      try {
        const published = await keys();
        const problems = sealing.receiptProblems(receipt, published);
        if (problems.length) {
          result.replaceChildren(notice(t("bid_receipt_failed", { problems: words(problems) }), "error"));
          return;
        }
        const body = receipt.body;
        const lines = [
          notice(
            t("bid_saved_ok", {
              kind: t(`bid_kind_${body.kind}`).toLowerCase(),
              version: body.version,
              at: when(body.received_at),
            }),
            "ok",
          ),
        ];
        if (body.tender_id !== tender.id) lines.push(notice(t("bid_saved_other_tender", { tender: body.tender_id })));
        result.replaceChildren(...lines);
        const inclusion = await checkInclusion(receipt, published);
        lines.push(notice(inclusion.text, inclusion.proven === true ? "ok" : inclusion.proven === false ? "error" : "info"));
        result.replaceChildren(...lines);
      } catch (error) {
        result.replaceChildren(notice(t("bid_failed", { reason: errorText(error) }), "error"));
      }
    });
    return h(
      "section",
      { class: "card", "aria-labelledby": "bid-saved-title" },
      h("h3", { id: "bid-saved-title" }, t("bid_saved_title")),
      h("p", { class: "lead" }, t("bid_saved_text")),
      field(t("bid_saved_file"), picker),
      result,
    );
  }

  // -- revealing the bid in the decryption window (bidder mode) --

  async function openingEvents() {
    const events = [];
    let after = 0;
    for (;;) {
      const page = await api(`/tenders/${tender.id}/opening/events?after=${after}`);
      events.push(...page.events);
      if (!page.has_more) return events;
      after = page.next_after;
    }
  }

  function outcomeNotice(event) {
    const data = event.data ?? {};
    if (event.type === "bid.decrypted") {
      return notice(t("bid_outcome_decrypted", { price: money(data.price, tender.currency) }), "ok");
    }
    if (event.type === "bid.rejected") {
      return notice(t("bid_outcome_rejected", { reason: data.detail || data.reason }), "error");
    }
    return notice(t("bid_outcome_withdrawn"), "error");
  }

  let stopRevealPoll = null;
  let stopWindowClock = null;

  async function drawReveal() {
    stopRevealPoll?.();
    stopRevealPoll = null;
    stopWindowClock?.();
    stopWindowClock = null;
    const title = h("h3", { id: "bid-reveal-title" }, t("bid_reveal_title"));
    const hall = h("p", {}, h("a", { href: `#/tenders/${tender.id}/hall` }, t("bid_to_hall")));
    let events;
    try {
      events = await openingEvents();
    } catch (error) {
      const text = error.status === 403 ? t("bid_reveal_no_bid") : t("bid_failed", { reason: errorText(error) });
      revealBox.replaceChildren(title, notice(text, error.status === 403 ? "info" : "error"));
      return;
    }
    const opened = events.find((e) => e.type === "decryption.window_opened");
    const closed = events.find((e) => e.type === "decryption.window_closed");
    const decided = events.find(
      (e) => ["bid.decrypted", "bid.rejected", "bid.withdrawn"].includes(e.type) && e.data?.bidder_id === organization,
    );
    const listed = events.find((e) => e.type === "bids.listed");
    const failed = events.find((e) => e.type === "opening.failed");
    if (decided) {
      revealBox.replaceChildren(title, h("div", { class: "outcome" }, outcomeNotice(decided)), hall);
      return;
    }
    if (failed) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_failed_opening")), hall);
      return;
    }
    if (listed && !(listed.data?.bids ?? []).some((b) => b.bidder_id === organization)) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_no_bid")), hall);
      return;
    }
    if (!opened) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_waiting")), hall);
      stopRevealPoll = every(POLL_MS, () => {
        if (!left) drawReveal().catch(() => null);
      });
      return;
    }
    const closesAt = opened.data?.closes_at;
    if (closed || serverNow() >= Date.parse(closesAt)) {
      revealBox.replaceChildren(title, notice(t("bid_reveal_closed", { at: when(closesAt) })), hall);
      return;
    }
    const [clock, stopClock] = countdown(closesAt);
    stopWindowClock = stopClock;
    stops.add(stopClock);
    const receiptPicker = h("input", { type: "file", id: "bid-reveal-receipt", accept: ".json,application/json" });
    const kept = newestKept(tender.id, organization);
    const receiptHint = kept.receipt
      ? t("bid_reveal_receipt_kept", { version: kept.receipt.body.version })
      : t("bid_reveal_receipt_none");
    /** The bidder's own receipt of the bid: the file chosen, else the one kept here. */
    const ownReceipt = async () => {
      const chosen = receiptPicker.files[0];
      if (chosen) {
        try {
          return JSON.parse(await chosen.text());
        } catch {
          throw new sealing.SealingRefused("bid_saved_not_json");
        }
      }
      if (kept.withdrawn !== undefined) throw new sealing.SealingRefused("bid_reveal_kept_withdrawn", { version: kept.withdrawn });
      if (!kept.receipt) {
        receiptPicker.focus();
        throw new sealing.SealingRefused("bid_reveal_need_receipt");
      }
      return kept.receipt;
    };
    const form = identityForm({
      id: "bid-reveal-identity",
      label: t("bid_reveal_file"),
      more: [field(t("bid_reveal_receipt_file"), receiptPicker, receiptHint)],
      submit: t("bid_reveal_submit"),
      className: "reveal",
      use: async (identity) => {
        const receipt = await ownReceipt();
        const pin = sealing.pinnedHeader(receipt, await keys(), tender.id);
        if (pin.problems) throw new sealing.SealingRefused("bid_reveal_rx_refused", { problems: words(pin.problems) });
        const { header } = await api(`/tenders/${tender.id}/bids/mine/header`);
        // The file key is computed only from the header the bidder's own receipt pins.
        const mismatch = sealing.servedHeaderProblem(header, receipt);
        if (mismatch) throw new sealing.SealingRefused(...mismatch);
        let fileKey;
        try {
          fileKey = await sealing.revealFileKey(header, identity);
        } catch {
          throw new sealing.SealingRefused("bid_reveal_wrong_identity");
        }
        const outcome = await api(`/tenders/${tender.id}/opening/reveal`, { method: "POST", json: { file_key: fileKey } });
        stopClock();
        revealBox.replaceChildren(title, h("div", { class: "outcome" }, outcomeNotice(outcome)), hall);
      },
      failed: (error) => {
        const tries = error instanceof ApiError ? error.body?.tries_left : undefined;
        return [
          notice(t("bid_reveal_refused", { reason: errorText(error) }), "error"),
          tries !== undefined ? h("p", {}, t("bid_reveal_tries", { n: tries })) : null,
        ];
      },
    });
    revealBox.replaceChildren(
      title,
      h("p", {}, t("bid_reveal_open", { at: when(closesAt) }), clock),
      h("p", { class: "lead" }, t("bid_reveal_text")),
      form,
      hall,
    );
  }

  // -- the page, redrawn when the tender moves on (the deadline, the window) --

  const [clock, stopClock] = countdown(tender.bid_deadline);
  stops.add(stopClock);
  const facts = h("div", {});
  const savedBox = savedReceiptBox();

  async function draw() {
    facts.replaceChildren(tenderFacts(tender));
    drawForm();
    await refreshMine();
    // Bidder mode: the reveal during the window, and its outcome once the opening moves on.
    revealBox.hidden = !(tender.opening_mode === "bidder" && ["opening", "opened", "failed"].includes(tender.status));
    if (!revealBox.hidden) await drawReveal();
  }

  main.replaceChildren(
    h(
      "div",
      { class: "bid-page" },
      h("a", { href: `#/tenders/${tender.id}` }, t("bid_back")),
      h("h2", {}, t("bid_title", { title: tender.title })),
      h("p", { class: "countdown-line" }, `${t("countdown")}: `, clock),
      h("details", { class: "card facts-box", open: true }, h("summary", {}, t("bid_facts")), facts),
      revealBox,
      mineBox,
      receiptBox,
      formBox,
      savedBox,
    ),
  );
  await draw();

  // After the deadline the tender moves on by itself: follow it while the bidder watches.
  let formOpen = takesBids();
  every(1000, () => {
    if (left || busy) return;
    if (formOpen && !takesBids()) {
      formOpen = false;
      drawForm();
      refreshMine().catch(() => null);
    }
  });
  const moving = () =>
    tender.status === "opening" || (tender.status === "published" && serverNow() >= Date.parse(tender.bid_deadline));
  every(POLL_MS, async () => {
    if (left || busy || !moving()) return;
    try {
      const fresh = await loadTender(tender.id);
      if (left || fresh.status === tender.status) return;
      tender = fresh;
      await draw();
    } catch {
      // looked again at the next tick
    }
  });

  return () => {
    left = true;
    for (const stop of stops) stop();
    stopRevealPoll?.();
    for (const dialog of dialogs) dialog.remove();
  };
}

// --- the organization's decryption key -----------------------------------------------------

function identityFilename(user) {
  const name = (user.organization?.name ?? "").replace(/[\\/:*?"<>|\s]+/g, "-").replace(/^-+|-+$/g, "");
  return `${name || "organization"}-age-identity.txt`;
}

async function showKeys({ main, user }) {
  if (!user) return signInFirst(main, "/keys", t("bid_keys_sign_in"));
  if (user.role !== "bidder") return notBidder(main, user);
  const currentBox = h("section", { class: "card key-box", "aria-labelledby": "bid-keys-current-title" });
  const generateBox = h("section", { class: "card", "aria-labelledby": "bid-keys-generate-title" });
  const checkBox = h("section", { class: "card", "aria-labelledby": "bid-keys-check-title" });
  let keys = { current: null, history: [] };

  async function refresh() {
    keys = await api("/me/keys");
    const { current, history } = keys;
    const parts = [h("h3", { id: "bid-keys-current-title" }, t("bid_keys_current"))];
    if (!current) {
      parts.push(h("p", {}, t("bid_keys_none")));
    } else {
      parts.push(
        h(
          "dl",
          {},
          h("dt", {}, t("bid_keys_recipient")),
          h("dd", {}, h("code", { class: "recipient" }, current.recipient)),
          h("dt", {}, t("bid_keys_registered")),
          h("dd", {}, when(current.registered_at)),
          h("dt", {}, t("bid_keys_verified")),
          h(
            "dd",
            { class: current.verified_at ? "verified" : "unverified" },
            current.verified_at ? `✓ ${t("bid_keys_verified_at", { at: when(current.verified_at) })}` : t("bid_keys_not_verified"),
          ),
        ),
      );
    }
    if (history.length) {
      parts.push(
        h("h4", {}, t("bid_keys_history")),
        h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { class: "receipts" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t("bid_keys_recipient")),
                h("th", { scope: "col" }, t("bid_keys_registered")),
                h("th", { scope: "col" }, t("bid_keys_retired")),
              ),
            ),
            h(
              "tbody",
              {},
              ...history.map((key) =>
                h(
                  "tr",
                  {},
                  h("td", {}, h("code", {}, key.recipient)),
                  h("td", {}, when(key.registered_at)),
                  h("td", {}, when(key.retired_at)),
                ),
              ),
            ),
          ),
        ),
      );
    }
    currentBox.replaceChildren(...parts);
  }

  function drawGenerate() {
    const message = h("div", { "aria-live": "polite" });
    const generate = h("button", { type: "button" }, t("bid_keys_generate"));
    const made = h("div", {});
    generate.addEventListener("click", async () => {
      generate.disabled = true;
      try {
        const { identity, recipient } = await sealing.newIdentity();
        let saved = false;
        const registerHint = h("small", { id: "bid-keys-register-hint" }, t("bid_keys_register_first"));
        const register = h("button", { type: "button", disabled: true, "aria-describedby": registerHint.id }, t("bid_keys_register"));
        const save = h("button", { type: "button" }, t("bid_keys_download"));
        save.addEventListener("click", () => {
          const created = new Date(serverNow()).toISOString().replace(/\.\d+Z$/, "Z");
          download(identityFilename(user), sealing.identityFileText(identity, recipient, created), "text/plain");
          saved = true;
          register.disabled = false;
          registerHint.hidden = true;
        });
        register.addEventListener("click", async () => {
          if (!saved) return;
          register.disabled = true;
          try {
            await api("/me/keys", { method: "PUT", json: { recipient } });
            await refresh();
            drawGenerate();
            drawCheck(notice(t("bid_keys_registered_done"), "ok"));
            checkBox.querySelector("input")?.focus();
          } catch (error) {
            message.replaceChildren(notice(t("bid_failed", { reason: errorText(error) }), "error"));
            register.disabled = false;
          }
        });
        made.replaceChildren(
          notice(t("bid_keys_generated"), "ok"),
          h("dl", {}, h("dt", {}, t("bid_keys_recipient")), h("dd", {}, h("code", { class: "recipient" }, recipient))),
          notice(t("bid_keys_keep"), "error"),
          h("div", { class: "actions" }, save, register),
          registerHint,
        );
        save.focus();
      } catch (error) {
        message.replaceChildren(notice(t("bid_failed", { reason: errorText(error) }), "error"));
      } finally {
        generate.disabled = false;
      }
    });
    put(
      generateBox,
      h("h3", { id: "bid-keys-generate-title" }, t("bid_keys_generate_title")),
      keys.current ? notice(t("bid_keys_replace_warning")) : null,
      h("div", { class: "actions" }, generate),
      made,
      message,
    );
  }

  function drawCheck(intro = null) {
    if (!keys.current) {
      checkBox.hidden = true;
      return;
    }
    checkBox.hidden = false;
    const form = identityForm({
      id: "bid-keys-identity",
      label: t("bid_keys_check_file"),
      submit: t("bid_keys_check"),
      use: async (identity) => {
        const mine = await sealing.recipientOf(identity);
        const registered = keys.current?.recipient;
        if (mine !== registered) throw new Error(t("bid_keys_check_other", { mine, registered }));
        const { challenge } = await api("/me/keys/challenge", { method: "POST" });
        const answer = await sealing.unsealText(sealing.fromBase64(challenge), identity);
        await api("/me/keys/challenge/answer", { method: "POST", json: { answer } });
        await refresh();
        checkBox.querySelector(".notice.ok")?.remove(); // "registered, now check it" is done
        return notice(t("bid_keys_check_ok"), "ok");
      },
      failed: (error) => notice(t("bid_keys_check_failed", { reason: errorText(error) }), "error"),
    });
    put(
      checkBox,
      h("h3", { id: "bid-keys-check-title" }, t("bid_keys_check_title")),
      intro,
      h("p", { class: "lead" }, t("bid_keys_check_text")),
      form,
    );
  }

  await refresh();
  main.replaceChildren(
    h(
      "div",
      { class: "bid-page" },
      h("h2", {}, t("bid_keys_title")),
      h("p", { class: "lead" }, t("bid_keys_intro")),
      currentBox,
      checkBox,
      generateBox,
    ),
  );
  drawGenerate();
  drawCheck();
}

export const routes = [
  [/^\/tenders\/([0-9a-f-]{36})\/bid$/, showBid],
  [/^\/keys$/, showKeys],
];
