// The public pages: the tender list with search and a status filter, and a tender's detail
// with its amendments, recipient, commitment and a countdown on the server's clock.
import { api, serverNow, syncClock } from "./api.js";
import { field, h, money, timeLeft, when } from "./dom.js";
import { t } from "./i18n.js";
import { documentsPanel } from "./documents.js";

const STATUSES = ["published", "opening", "opened", "failed", "cancelled", "draft"];
const PAGE_SIZE = 20;

function query() {
  return new URLSearchParams(location.hash.split("?")[1] ?? "");
}

async function showList({ main }) {
  const params = query();
  const page = Math.max(1, Number.parseInt(params.get("page") ?? "1", 10) || 1);
  const wanted = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
  if (params.get("q")) wanted.set("q", params.get("q"));
  if (STATUSES.includes(params.get("status"))) wanted.set("status", params.get("status"));
  const body = await api(`/tenders?${wanted}`);

  const search = h("input", { type: "search", name: "q", maxlength: 200, value: params.get("q") ?? "" });
  const status = h(
    "select",
    { name: "status" },
    h("option", { value: "" }, t("anyStatus")),
    ...STATUSES.map((s) => h("option", { value: s, selected: params.get("status") === s }, t(`status_${s}`))),
  );
  const filter = h(
    "form",
    { class: "filters", role: "search" },
    field(t("search"), search, t("searchHint")),
    field(t("status"), status),
    h("button", { type: "submit" }, t("search")),
  );
  const go = (changes) => {
    const next = new URLSearchParams({ q: search.value.trim(), status: status.value, ...changes });
    for (const [key, value] of [...next]) if (!value || (key === "page" && value === "1")) next.delete(key);
    location.hash = `#/${next.size ? `?${next}` : ""}`;
  };
  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ page: "1" });
  });
  status.addEventListener("change", () => go({ page: "1" }));

  let listing;
  if (body.items.length === 0) {
    listing = h("p", {}, t("noTenders"));
  } else {
    const rows = body.items.map((tender) =>
      h(
        "tr",
        {},
        h("td", {}, h("a", { href: `#/tenders/${tender.id}` }, tender.reference)),
        h("td", {}, tender.title),
        h("td", { class: "wide" }, tender.buyer_name),
        h("td", {}, when(tender.bid_deadline)),
        h("td", {}, h("span", { class: `status ${tender.status}` }, t(`status_${tender.status}`))),
      ),
    );
    listing = h(
      "table",
      { class: "tenders" },
      h("thead", {}, h("tr", {}, ...["reference", "name", "buyer", "deadline", "status"].map((k) =>
        h("th", { scope: "col", class: k === "buyer" ? "wide" : null }, t(k))))),
      h("tbody", {}, ...rows),
    );
  }
  const pages = Math.max(1, Math.ceil(body.total / PAGE_SIZE));
  const pager = h(
    "nav",
    { class: "pager", "aria-label": t("pageOf", { page, pages, total: body.total }) },
    h("button", { type: "button", disabled: page <= 1, onclick: () => go({ page: String(page - 1) }) }, t("previous")),
    h("span", {}, t("pageOf", { page, pages, total: body.total })),
    h("button", { type: "button", disabled: page >= pages, onclick: () => go({ page: String(page + 1) }) }, t("next")),
  );
  main.replaceChildren(h("h2", {}, t("tenders")), filter, listing, pager);
}

/** The tender's facts as a definition list; shared with the pages that act on a tender. */
export function tenderFacts(tender) {
  const facts = [
    ["reference", tender.reference],
    ["buyer", tender.buyer_name],
    ["status", t(`status_${tender.status}`)],
    ["deadline", when(tender.bid_deadline)],
    ["ceiling", money(tender.ceiling_price, tender.currency)],
    ["floor", tender.floor_price ? money(tender.floor_price, tender.currency) : "—"],
    ["openingMode", t(`mode_${tender.opening_mode}`)],
  ];
  if (tender.opening_mode === "bidder") {
    facts.push(["window", t("minutes", { n: tender.decryption_window_minutes })]);
    facts.push(["backup", t(tender.backup_decryption ? "yes" : "no")]);
  }
  facts.push(
    ["minBids", String(tender.min_bids)],
    ["publicOpening", t(tender.public_opening ? "yes" : "no")],
    ["recipient", h("code", {}, tender.opening_recipient ?? "—")],
    ["commitment", h("code", {}, tender.coefficient_commitment ?? "—")],
  );
  return h("dl", { class: "facts" }, ...facts.flatMap(([key, value]) => [h("dt", {}, t(key)), h("dd", {}, value)]));
}

/** Load a tender and set the page's clock from its server_time. */
export async function loadTender(id) {
  const tender = await api(`/tenders/${id}`);
  syncClock(tender.server_time);
  return tender;
}

/** A live countdown to the deadline on the server's clock; returns [element, stop]. */
export function countdown(deadline) {
  const output = h("output", { class: "countdown", "aria-live": "off" });
  const tick = () => {
    output.textContent = timeLeft(Date.parse(deadline) - serverNow());
  };
  tick();
  const timer = setInterval(tick, 1000);
  return [output, () => clearInterval(timer)];
}

/** One amended field: deadlines in the reader's time, a new description in full. */
function amendedField(name, change) {
  if (name === "bid_deadline") {
    return h("li", {}, `${t("deadline")}: ${when(change.from)} → ${when(change.to)}`);
  }
  if (name === "document_added") {
    return h("li", {}, t("documentAdded", { name: change.to.name }), " ", h("code", {}, change.to.sha256.slice(0, 16) + "…"));
  }
  if (name === "description") {
    return h("li", {}, h("details", {}, h("summary", {}, t("descriptionChanged")), h("p", { class: "description" }, change.to)));
  }
  return h("li", {}, `${name}: ${change.from} → ${change.to}`);
}

function amendmentList(tender) {
  if (!tender.amendments.length) return null;
  return [
    h("h3", {}, t("amendments")),
    h(
      "ol",
      { class: "amendments" },
      ...tender.amendments.map((amendment) =>
        h(
          "li",
          {},
          h("strong", {}, t("amendment", { number: amendment.number, at: when(amendment.amended_at) })),
          h(
            "ul",
            {},
            ...Object.entries(amendment.changes).map(([name, change]) => amendedField(name, change)),
          ),
          amendment.reason ? h("p", {}, t("amendReason", { reason: amendment.reason })) : null,
        ),
      ),
    ),
  ];
}

async function showTender({ main, params, user }) {
  const tender = await loadTender(params[0]);
  const [clock, stop] = countdown(tender.bid_deadline);
  const actions = [];
  if (user?.role === "bidder" && tender.status === "published") {
    actions.push(h("a", { class: "button", href: `#/tenders/${tender.id}/bid` }, t("toBid")));
  }
  if (user?.role === "bidder" && tender.status === "opening" && tender.opening_mode === "bidder") {
    // In the decryption window the bid page is where a bidder reveals its bid.
    actions.push(h("a", { class: "button", href: `#/tenders/${tender.id}/bid` }, t("toReveal")));
  }
  if (["published", "opening", "opened", "failed"].includes(tender.status)) {
    actions.push(h("a", { class: "button", href: `#/tenders/${tender.id}/hall` }, t("toHall")));
  }
  if (user && (user.role === "officer" || user.role === "admin") && user.organization?.id === tender.organization.id) {
    actions.push(h("a", { class: "button", href: `#/officer/tenders/${tender.id}` }, t("toManage")));
  }
  const fields = h(
    "ul",
    {},
    ...tender.bid_fields.map((f) => h("li", {}, `${f.label} (${f.name}, ${f.type}${f.required ? ", *" : ""})`)),
  );
  const parts = [
    h("a", { href: "#/" }, t("back")),
    h("h2", {}, tender.title),
    tender.status === "cancelled" ? h("p", { class: "notice error" }, t("cancelled", { reason: tender.cancel_reason })) : null,
    h("p", { class: "countdown-line" }, `${t("countdown")}: `, clock),
    h("div", { class: "actions" }, ...actions),
    tenderFacts(tender),
    h("div", { class: "description" }, tender.description),
    documentsPanel(tender),
    h("h3", {}, t("bidFields")),
    fields,
    amendmentList(tender),
  ];
  main.replaceChildren(...parts.flat().filter(Boolean));
  return stop;
}

export const routes = [
  [/^\/(?:\?.*)?$/, showList],
  [/^\/tenders\/([0-9a-f-]{36})$/, showTender],
];
