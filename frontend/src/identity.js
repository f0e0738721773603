// The form where a bidder chooses the organization's age identity file (AGE-SECRET-KEY-1…).
// The file is read here, in this browser; the identity never leaves it.
import { field, h, notice } from "./dom.js";
import { t } from "./i18n.js";
import { identityFromText } from "./sealing.js";

/**
 * The identity file's picker (its label and element id given), any more fields, a submit
 * button and a message. On submit, use(identity) runs with the identity read from the file;
 * what it returns, or failed(error) when anything throws, is put in the message.
 */
export function identityForm({ id, label, more = [], submit, className = null, use, failed }) {
  const picker = h("input", { type: "file", id, accept: ".txt,.key,text/plain" });
  const button = h("button", { type: "submit" }, submit);
  const message = h("div", { "aria-live": "assertive" });
  const show = (said) => message.replaceChildren(...[said ?? []].flat().filter((node) => node));
  const form = h(
    "form",
    { class: className },
    field(label, picker),
    ...more,
    h("div", { class: "actions" }, button),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren();
    const file = picker.files[0];
    if (!file) {
      message.replaceChildren(notice(t("bid_refuse_identity_file"), "error"));
      picker.focus();
      return;
    }
    button.disabled = true;
    try {
      show(await use(identityFromText(await file.text())));
    } catch (error) {
      show(failed(error));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
