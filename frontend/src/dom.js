// Small helpers for building pages from elements: text goes in as text, never as HTML.
import { currentLanguage, t } from "./i18n.js";

/** An element with attributes and children; strings become text nodes, null is skipped. */
export function h(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "value" || name === "checked") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Replace a node's children, leaving out the absent ones (replaceChildren writes "null"). */
export function put(node, ...children) {
  node.replaceChildren(...children.filter((child) => child !== null && child !== undefined && child !== false));
}

let fieldNumber = 0;

/** A labelled control: the label is tied to the input by id, a hint and error by aria. */
export function field(label, control, hint) {
  const id = control.id || `field-${++fieldNumber}`;
  control.id = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintNode = h("small", { id: `${id}-hint` }, hint);
    control.setAttribute("aria-describedby", hintNode.id);
    parts.push(hintNode);
  }
  return h("div", { class: "field" }, ...parts);
}

/** A message for the reader, announced by screen readers; kind is "error", "ok" or "info". */
export function notice(text, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** A date and time in the reader's language and time zone. */
export function when(iso) {
  return iso ? new Date(iso).toLocaleString(currentLanguage()) : "—";
}

/** A whole number's digits grouped by three: 1234567 -> 1,234,567. */
export function grouped(whole) {
  return String(whole).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** An amount in its currency, digits grouped; the decimal string is kept exact. */
export function money(text, currency = "") {
  if (text === null || text === undefined) return "—";
  const [whole, cents = ""] = String(text).split(".");
  return `${currency ? `${currency} ` : ""}${grouped(whole)}${cents ? `.${cents}` : ""}`;
}

/** A duration as d h:mm:ss, or "closed" when it has passed. */
export function timeLeft(milliseconds) {
  if (milliseconds <= 0) return t("closed");
  const seconds = Math.floor(milliseconds / 1000);
  const days = Math.floor(seconds / 86400);
  const clock = [Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  return days ? `${days}d ${clock}` : clock;
}

/** Offer bytes or text to the user as a downloaded file. */
export function download(name, content, type = "application/octet-stream") {
  const url = URL.createObjectURL(content instanceof Blob ? content : new Blob([content], { type }));
  const link = h("a", { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
