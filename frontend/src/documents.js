// A tender's documents: the list everyone sees (download, size, SHA-256), and for its officers
// an upload with a progress bar, a reason when the tender is published, removal on a draft.
import { ApiError, api, upload } from "./api.js";
import { formatSize } from "./bytes.js";
import { field, h, notice, when } from "./dom.js";
import { t } from "./i18n.js";

/** The documents as a table; with manage, the officer's upload and (drafts) removal too. */
export function documentsPanel(tender, { manage = false, changed = () => {} } = {}) {
  const section = h("section", { class: "documents", "aria-labelledby": `docs-${tender.id}` });
  const heading = h("h3", { id: `docs-${tender.id}` }, t("doc_title"));
  const rows = tender.documents.map((document) =>
    h(
      "tr",
      {},
      h(
        "td",
        {},
        h("a", { href: `/api/v1/tenders/${tender.id}/documents/${document.id}`, download: document.name }, document.name),
      ),
      h("td", { class: "number" }, formatSize(document.size)),
      h("td", { class: "wide" }, when(document.uploaded_at)),
      h("td", { class: "wide" }, h("code", { title: t("doc_digest") }, document.sha256.slice(0, 16) + "…")),
      manage && tender.status === "draft"
        ? h(
            "td",
            {},
            h(
              "button",
              {
                type: "button",
                class: "secondary",
                onclick: async (event) => {
                  const button = event.currentTarget;
                  button.disabled = true;
                  try {
                    await api(`/tenders/${tender.id}/documents/${document.id}`, { method: "DELETE" });
                    changed();
                  } catch (error) {
                    section.append(notice(error.message, "error"));
                    button.disabled = false;
                  }
                },
              },
              t("doc_remove", { name: document.name }),
            ),
          )
        : null,
    ),
  );
  const list = rows.length
    ? h(
        "div",
        { class: "scroll" },
        h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              h("th", { scope: "col" }, t("doc_name")),
              h("th", { scope: "col", class: "number" }, t("doc_size")),
              h("th", { scope: "col", class: "wide" }, t("doc_uploaded")),
              h("th", { scope: "col", class: "wide" }, "SHA-256"),
              manage && tender.status === "draft" ? h("th", { scope: "col" }, "") : null,
            ),
          ),
          h("tbody", {}, ...rows),
        ),
      )
    : h("p", {}, t("doc_none"));
  section.append(heading, list);
  if (manage && ["draft", "published"].includes(tender.status)) section.append(uploadForm(tender, changed));
  return section;
}

function uploadForm(tender, changed) {
  const file = h("input", { type: "file", name: "document" });
  const reason = h("input", { type: "text", name: "reason", maxlength: 2000 });
  const bar = h("progress", { max: 100, value: 0, hidden: true });
  const message = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "submit" }, t("doc_upload"));
  const form = h(
    "form",
    { class: "card" },
    h("h4", {}, t("doc_add")),
    field(t("doc_file"), file),
    tender.status === "published" ? field(t("doc_reason"), reason) : null,
    button,
    bar,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = file.files[0];
    if (!chosen) {
      message.replaceChildren(notice(t("doc_pick"), "error"));
      return;
    }
    if (tender.status === "published" && !reason.value.trim()) {
      reason.setAttribute("aria-invalid", "true");
      message.replaceChildren(notice(t("doc_reason_needed"), "error"));
      return;
    }
    const query = new URLSearchParams({ name: chosen.name });
    if (reason.value.trim()) query.set("reason", reason.value.trim());
    button.disabled = true;
    bar.hidden = false;
    try {
      await upload(`/tenders/${tender.id}/documents?${query}`, chosen, {
        headers: { "Content-Type": chosen.type || "application/octet-stream" },
        onProgress: (sent, total) => {
          const percent = total ? Math.floor((sent / total) * 100) : 0;
          bar.value = percent;
          bar.textContent = `${percent}%`;
          message.replaceChildren(h("p", {}, t("doc_uploading", { name: chosen.name, percent })));
        },
      });
      message.replaceChildren(notice(t("doc_uploaded_ok", { name: chosen.name }), "ok"));
      changed();
    } catch (error) {
      message.replaceChildren(notice(error instanceof ApiError ? error.message : String(error), "error"));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}
