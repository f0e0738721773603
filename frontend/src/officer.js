// The officer console: the organization's tenders, one form to create and edit a draft
// (its scoring and bid form included), publication, amendments and cancellation.
import "./officer.css";
import { ApiError, api, serverNow } from "./api.js";
import { field, h, money, notice, when } from "./dom.js";
import { t } from "./i18n.js";
import { loadTender, tenderFacts } from "./public.js";
import { documentsPanel } from "./documents.js";
import { bidFieldsEditor, bidFieldsTable } from "./formbuilder.js";
import { METHODS, scoringEditor, scoringSummary } from "./scoring.js";

const MONEY = /^\d+(\.\d{1,2})?$/;
const WHOLE = /^\d+$/;
// A notice to show on the next page drawn (after a save moves to the tender's own address).
let flash = null;

// --- small helpers -------------------------------------------------------------------------

function isOfficer(user) {
  return user?.role === "officer";
}

function pad(number) {
  return String(number).padStart(2, "0");
}

/** An ISO time as the value of a datetime-local input, in the viewer's time zone. */
function toLocalInput(iso) {
  const date = iso instanceof Date ? iso : new Date(iso ?? NaN);
  if (Number.isNaN(date.getTime())) return "";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value as ISO 8601 with the viewer's UTC offset, or null. */
function fromLocalInput(value) {
  if (!value) return null;
  const date = new Date(value); // a date-time without offset is local time
  if (Number.isNaN(date.getTime())) return null;
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const zone = `${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  return `${toLocalInput(date)}:${pad(date.getSeconds())}${zone}`;
}

function zoneName() {
  const offset = -new Date().getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const utc = `UTC${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return name && !/^(Etc\/)?UTC$/.test(name) ? `${name}, ${utc}` : utc;
}

/** An amount in cents, exactly (no floating point), for comparing two amounts. */
function cents(text) {
  const [whole, part = ""] = text.split(".");
  return BigInt(whole) * 100n + BigInt(part.padEnd(2, "0") || "0");
}

function wholeOrText(text) {
  const trimmed = String(text).trim();
  return WHOLE.test(trimmed) ? Number(trimmed) : trimmed;
}

// --- problems next to the controls and in a summary ------------------------------------------

/** The API's complaints as [path, message] pairs; paths without the leading "body". */
function apiProblems(error) {
  const body = error.body ?? {};
  const clean = (path) => String(path ?? "").replace(/^body\.?/, "");
  if (Array.isArray(body.errors)) return body.errors.map((item) => [clean(item.field), item.message]);
  if (Array.isArray(body.detail)) {
    return body.detail.map((item) => [clean((item.loc ?? []).join(".")), item.msg]);
  }
  if (body.field) {
    const detail = String(body.detail ?? "");
    const prefix = `${body.field}: `;
    return [[clean(body.field), detail.startsWith(prefix) ? detail.slice(prefix.length) : detail]];
  }
  return [];
}

/** What a control is called, for the summary: its label, after its bid field's legend. */
function describeControl(control) {
  const label = control.labels?.[0]?.textContent?.trim() ?? "";
  const legend = control.closest("fieldset.off-bid-field")?.querySelector("legend")?.textContent;
  return legend ? `${legend} · ${label}` : label;
}

let errorNumber = 0;

/**
 * A summary (role=alert) and the marks on the controls: aria-invalid and a message tied to
 * the control with aria-describedby. show() takes [control|null, message, path?] triples.
 */
function problemsArea() {
  const summary = h("div", { class: "off-summary", role: "alert", tabindex: "-1", hidden: true });
  let marked = [];
  const clear = () => {
    for (const { control, message, describedBy } of marked) {
      message.remove();
      control.removeAttribute("aria-invalid");
      if (describedBy) control.setAttribute("aria-describedby", describedBy);
      else control.removeAttribute("aria-describedby");
    }
    marked = [];
    summary.hidden = true;
    summary.replaceChildren();
  };
  const mark = (control, text) => {
    const already = marked.find((entry) => entry.control === control);
    if (already) {
      already.message.append(` ${text}`);
      return;
    }
    if (!control.id) control.id = `off-control-${++errorNumber}`;
    const message = h("p", { class: "off-error", id: `${control.id}-error` }, text);
    const describedBy = control.getAttribute("aria-describedby");
    (control.closest(".field") ?? control.closest("fieldset") ?? control.parentElement).append(message);
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", describedBy ? `${describedBy} ${message.id}` : message.id);
    marked.push({ control, message, describedBy });
  };
  const show = (problems, { focus = true } = {}) => {
    clear();
    const items = problems.map(([control, text, path]) => {
      if (!control) return h("li", {}, path ? t("off_problemAt", { what: path, text }) : text);
      mark(control, text);
      return h(
        "li",
        {},
        h("button", { type: "button", class: "off-link", onclick: () => control.focus() }, t("off_problemAt", { what: describeControl(control), text })),
      );
    });
    summary.replaceChildren(h("p", { class: "off-summary-title" }, t("off_summary", { n: problems.length })), h("ul", {}, ...items));
    summary.hidden = false;
    if (focus) summary.focus();
  };
  return { summary, clear, show };
}

/** Report a refused request: by control where the API names a field, else as a notice. */
function reportError(error, problems, messages, controlFor) {
  const pairs = error instanceof ApiError ? apiProblems(error) : [];
  if (pairs.length) {
    problems.show(pairs.map(([path, text]) => [controlFor(path), text, path]));
  } else {
    messages.replaceChildren(notice(error.message, "error"));
  }
}

/** A native modal dialog asking to confirm; resolves true or false. Escape means no. */
function confirmDialog(parent, { title, text, confirm, danger = false }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const number = ++errorNumber;
    const yes = h("button", { type: "button", class: danger ? "danger" : null }, confirm);
    const no = h("button", { type: "button", class: "secondary" }, t("off_goBack"));
    const dialog = h(
      "dialog",
      { class: "off-dialog", "aria-labelledby": `off-dialog-${number}-title`, "aria-describedby": `off-dialog-${number}-text` },
      h("h3", { id: `off-dialog-${number}-title` }, title),
      ...[text].flat().map((line, index) => h("p", { id: index === 0 ? `off-dialog-${number}-text` : null }, line)),
      h("div", { class: "actions" }, yes, no),
    );
    const finish = (answer) => {
      if (dialog.open) dialog.close();
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(answer);
    };
    yes.addEventListener("click", () => finish(true));
    no.addEventListener("click", () => finish(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    parent.append(dialog);
    dialog.showModal();
    no.focus(); // the safe answer first; one Tab back reaches the other
  });
}

/** Put a page's parts in place: nested lists flattened, null and false left out. */
function place(main, ...parts) {
  main.replaceChildren(...parts.flat(Infinity).filter((part) => part !== null && part !== undefined && part !== false));
}

function busy(buttons, on) {
  for (const button of buttons) button.disabled = on;
}

// --- who may use the console ---------------------------------------------------------------

/** True when the user may see the console; otherwise the page says why and offers a way. */
function admitted(main, user) {
  if (user && (user.role === "officer" || user.role === "admin")) return true;
  const here = location.hash.replace(/^#/, "") || "/officer";
  place(
    main,
    h("h2", {}, t("navOfficer")),
    ...(user
      ? [
          notice(t("off_notForYou", { role: t(`role_${user.role}`) }), "info"),
          h("p", {}, h("a", { href: "#/" }, t("off_toPublicList"))),
        ]
      : [
          notice(t("off_signInNeeded"), "info"),
          h("p", {}, h("a", { class: "button", href: `#/sign-in?next=${here}` }, t("off_signInLink"))),
        ]),
  );
  return false;
}

// --- the list ------------------------------------------------------------------------------

/** Every tender of the organization (an admin, who has none, sees every visible one). */
async function ownTenders(user) {
  const mine = [];
  const organization = user.organization?.id;
  const only = organization ? `&organization_id=${organization}` : "";
  for (let page = 1; page <= 50; page += 1) {
    const body = await api(`/tenders?page=${page}&page_size=100${only}`);
    mine.push(...body.items);
    if (page * 100 >= body.total || !body.items.length) break;
  }
  return mine;
}

const STATUS_ORDER = ["draft", "published", "opening", "opened", "failed", "cancelled"];

async function showConsole({ main, user }) {
  if (!admitted(main, user)) return;
  const tenders = await ownTenders(user);
  const text = h("input", { type: "search", id: "off-filter-text", maxlength: 200 });
  const status = h(
    "select",
    { id: "off-filter-status" },
    h("option", { value: "" }, t("anyStatus")),
    ...STATUS_ORDER.map((s) => h("option", { value: s }, t(`status_${s}`))),
  );
  const listing = h("div", { class: "off-scroll" });
  const count = h("p", { class: "off-muted", role: "status" });
  const draw = () => {
    const words = text.value.trim().toLowerCase();
    const shown = tenders.filter(
      (tender) =>
        (!status.value || tender.status === status.value) &&
        (!words || `${tender.reference} ${tender.title}`.toLowerCase().includes(words)),
    );
    count.textContent = t("off_counts", { total: shown.length });
    if (!shown.length) {
      listing.replaceChildren(h("p", {}, tenders.length ? t("off_noneMatch") : t("off_noneYet")));
      return;
    }
    listing.replaceChildren(
      h(
        "table",
        { class: "off-tenders" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, t("reference")),
            h("th", { scope: "col" }, t("name")),
            h("th", { scope: "col" }, t("status")),
            h("th", { scope: "col" }, t("deadline")),
            h("th", { scope: "col", class: "wide" }, t("ceiling")),
            h("th", { scope: "col", class: "wide" }, t("off_colActions")),
          ),
        ),
        h(
          "tbody",
          {},
          ...shown.map((tender) =>
            h(
              "tr",
              {},
              h("td", {}, h("a", { href: `#/officer/tenders/${tender.id}` }, tender.reference)),
              h("td", {}, tender.title),
              h("td", {}, h("span", { class: `status ${tender.status}` }, t(`status_${tender.status}`))),
              h("td", {}, when(tender.bid_deadline)),
              h("td", { class: "wide number" }, money(tender.ceiling_price, tender.currency)),
              h(
                "td",
                { class: "wide" },
                tender.status === "draft" ? "—" : h("a", { href: `#/tenders/${tender.id}` }, t("off_publicPage")),
              ),
            ),
          ),
        ),
      ),
    );
  };
  text.addEventListener("input", draw);
  status.addEventListener("change", draw);
  draw();
  place(
    main,
    h("h2", {}, user.organization ? t("off_consoleOf", { org: user.organization.name }) : t("off_console")),
    isOfficer(user)
      ? h("div", { class: "actions" }, h("a", { class: "button", href: "#/officer/new" }, t("off_newTender")))
      : notice(t("off_adminNote"), "info"),
    h(
      "form",
      { class: "filters", role: "search", onsubmit: (event) => event.preventDefault() },
      field(t("off_filterText"), text, t("off_filterTextHint")),
      field(t("status"), status),
    ),
    count,
    listing,
  );
}

// --- the tender form -----------------------------------------------------------------------

/** The form for every field of a tender; collect() gives the API's body, check() the problems. */
function tenderForm(tender, user) {
  const v = tender ?? {};
  const text = (name, attributes = {}) =>
    h("input", { type: "text", id: `off-${name}`, name, autocomplete: "off", ...attributes });
  const reference = text("reference", { value: v.reference ?? "", maxlength: 64, required: true });
  const title = text("title", { value: v.title ?? "", maxlength: 200, required: true });
  const buyer = text("buyer_name", {
    value: v.buyer_name ?? user?.organization?.name ?? "",
    maxlength: 200,
    required: true,
    autocomplete: "organization",
  });
  const description = h("textarea", { id: "off-description", name: "description", maxlength: 20000, rows: 6, value: v.description ?? "" });
  const currency = text("currency", { value: v.currency ?? "CNY", maxlength: 3, autocapitalize: "characters", class: "off-short" });
  const ceiling = text("ceiling_price", { value: v.ceiling_price ?? "", inputmode: "decimal", required: true });
  const floor = text("floor_price", { value: v.floor_price ?? "", inputmode: "decimal" });
  const initialDeadline = toLocalInput(v.bid_deadline);
  const deadline = h("input", {
    type: "datetime-local",
    id: "off-bid_deadline",
    name: "bid_deadline",
    required: true,
    value: initialDeadline,
    min: toLocalInput(new Date(serverNow())),
  });
  const modes = ["platform", "bidder"].map((mode) =>
    h("input", { type: "radio", name: "off-opening-mode", value: mode, checked: (v.opening_mode ?? "platform") === mode }),
  );
  const windowMinutes = h("input", {
    type: "number",
    id: "off-decryption_window_minutes",
    min: 1,
    max: 1440,
    step: 1,
    value: String(v.decryption_window_minutes ?? 30),
  });
  const backup = h("input", { type: "checkbox", id: "off-backup_decryption", checked: v.backup_decryption ?? false });
  const bidderOptions = h(
    "div",
    { class: "off-params" },
    field(t("off_window"), windowMinutes, t("off_windowHint")),
    h(
      "div",
      { class: "field" },
      h("div", { class: "field inline" }, backup, h("label", { for: backup.id }, t("off_backup"))),
      h("small", { id: "off-backup-hint" }, t("off_backupHint")),
    ),
  );
  backup.setAttribute("aria-describedby", "off-backup-hint");
  const minBids = h("input", { type: "number", id: "off-min_bids", min: 1, max: 1000, step: 1, value: String(v.min_bids ?? 3) });
  const publicOpening = h("input", { type: "checkbox", id: "off-public_opening", checked: v.public_opening ?? false });
  const scoring = scoringEditor(v.scoring ?? { method: "lowest_price" });
  const builder = bidFieldsEditor(v.bid_fields ?? []);

  const mode = () => modes.find((radio) => radio.checked)?.value ?? "platform";
  const showMode = () => {
    bidderOptions.hidden = mode() !== "bidder";
  };
  for (const radio of modes) radio.addEventListener("change", showMode);
  showMode();

  const element = [
    h(
      "fieldset",
      { class: "off-section" },
      h("legend", {}, t("off_secTender")),
      field(t("off_reference"), reference, t("off_referenceHint")),
      field(t("off_title"), title),
      field(t("off_buyer"), buyer),
      field(t("off_description"), description),
    ),
    h(
      "fieldset",
      { class: "off-section" },
      h("legend", {}, t("off_secPrices")),
      field(t("off_currency"), currency, t("off_currencyHint")),
      field(t("off_ceiling"), ceiling, t("off_moneyHint")),
      field(t("off_floor"), floor, t("off_floorHint")),
    ),
    h(
      "fieldset",
      { class: "off-section" },
      h("legend", {}, t("off_secOpening")),
      field(t("off_deadline"), deadline, t("off_deadlineHint", { zone: zoneName() })),
      h(
        "fieldset",
        { class: "off-choices" },
        h("legend", {}, t("off_openingMode")),
        ...modes.map((radio) => h("label", { class: "off-choice" }, radio, ` ${t(`mode_${radio.value}`)}`)),
      ),
      bidderOptions,
      field(t("off_minBids"), minBids, t("off_minBidsHint")),
      h("div", { class: "field inline" }, publicOpening, h("label", { for: publicOpening.id }, t("off_publicOpening"))),
    ),
    h("fieldset", { class: "off-section" }, h("legend", {}, t("off_scoring")), scoring.element),
    h("fieldset", { class: "off-section" }, h("legend", {}, t("off_bidForm")), builder.element),
  ];

  const controls = {
    reference,
    title,
    description,
    buyer_name: buyer,
    currency,
    ceiling_price: ceiling,
    floor_price: floor,
    bid_deadline: deadline,
    opening_mode: modes[0],
    decryption_window_minutes: windowMinutes,
    backup_decryption: backup,
    min_bids: minBids,
    public_opening: publicOpening,
  };

  // The window and backup belong to bidder mode; otherwise they are left as they are.
  const bidderMode = () =>
    mode() === "bidder"
      ? { decryption_window_minutes: wholeOrText(windowMinutes.value), backup_decryption: backup.checked }
      : {};
  const collect = () => ({
    reference: reference.value.trim(),
    title: title.value.trim(),
    description: description.value,
    buyer_name: buyer.value.trim(),
    currency: currency.value.trim().toUpperCase(),
    ceiling_price: ceiling.value.trim(),
    floor_price: floor.value.trim() || null,
    bid_deadline: fromLocalInput(deadline.value),
    opening_mode: mode(),
    ...bidderMode(),
    min_bids: wholeOrText(minBids.value),
    public_opening: publicOpening.checked,
    scoring: scoring.value(),
    bid_fields: builder.value(),
  });

  let savedDeadline = initialDeadline;
  let snapshot = JSON.stringify(collect());
  const deadlineChanged = () => deadline.value !== savedDeadline;

  /** What the page can tell is wrong; `future` also asks for a deadline still ahead. */
  const check = ({ future = false } = {}) => {
    const problems = [];
    const body = collect();
    for (const [name, control] of [["reference", reference], ["title", title], ["buyer_name", buyer]]) {
      if (!body[name]) problems.push([control, t("off_errRequired")]);
    }
    if (!/^[A-Z]{3}$/.test(body.currency)) problems.push([currency, t("off_errCurrency")]);
    let ceilingOk = false;
    if (!body.ceiling_price) problems.push([ceiling, t("off_errRequired")]);
    else if (!MONEY.test(body.ceiling_price)) problems.push([ceiling, t("off_errMoney")]);
    else if (cents(body.ceiling_price) === 0n) problems.push([ceiling, t("off_errPositive")]);
    else ceilingOk = true;
    if (body.floor_price !== null) {
      if (!MONEY.test(body.floor_price)) problems.push([floor, t("off_errMoney")]);
      else if (ceilingOk && cents(body.floor_price) > cents(body.ceiling_price)) problems.push([floor, t("off_errFloor")]);
    }
    if (!body.bid_deadline) problems.push([deadline, t("off_errRequired")]);
    else if ((future || !tender || deadlineChanged()) && Date.parse(body.bid_deadline) <= serverNow()) {
      problems.push([deadline, t("off_errDeadline")]);
    }
    if (body.opening_mode === "bidder") {
      const minutes = body.decryption_window_minutes;
      if (typeof minutes !== "number" || minutes < 1 || minutes > 1440) problems.push([windowMinutes, t("off_errWindow")]);
    }
    if (typeof body.min_bids !== "number" || body.min_bids < 1 || body.min_bids > 1000) {
      problems.push([minBids, t("off_errMinBids")]);
    }
    return [...problems, ...scoring.check(), ...builder.check()];
  };

  const controlFor = (path) => {
    const parts = String(path).split(".");
    if (parts[0] === "scoring") {
      const rest = METHODS.includes(parts[1]) ? parts.slice(2) : parts.slice(1);
      return scoring.controlFor(rest[0] ?? "method") ?? scoring.controlFor("method");
    }
    if (parts[0] === "bid_fields") return builder.controlFor(parts.slice(1).join("."));
    return controls[parts[0]] ?? null;
  };

  return {
    element,
    collect,
    check,
    controlFor,
    deadlineChanged,
    dirty: () => JSON.stringify(collect()) !== snapshot,
    markSaved: () => {
      savedDeadline = deadline.value;
      snapshot = JSON.stringify(collect());
    },
  };
}

// --- pages of one tender -------------------------------------------------------------------

function heading(text) {
  return h("h2", { tabindex: "-1", class: "off-heading" }, text);
}

function statusLine(tender) {
  if (!tender) return null;
  return h(
    "p",
    { class: "off-status-line" },
    h("span", { class: `status ${tender.status}` }, t(`status_${tender.status}`)),
    " ",
    tender.status === "draft" ? null : h("a", { href: `#/tenders/${tender.id}` }, t("off_publicPage")),
    ["published", "opening", "opened", "failed"].includes(tender.status)
      ? [" · ", h("a", { href: `#/tenders/${tender.id}/hall` }, t("toHall"))]
      : null,
  );
}

/**
 * The tender's documents, with the officer's upload (and removal on a draft); after a change
 * the panel, and whatever else depends on the tender (onFresh), is drawn again from the API.
 */
function liveDocuments(tender, { manage, onFresh = () => {} }) {
  const holder = h("div", { class: "off-documents" });
  const drawPanel = (current) => {
    holder.replaceChildren(documentsPanel(current, { manage, changed: refresh }));
  };
  async function refresh() {
    const fresh = await loadTender(tender.id);
    drawPanel(fresh);
    onFresh(fresh);
  }
  drawPanel(tender);
  return holder;
}

/** Show the notice left for this page; a moment after drawing, so its live region speaks. */
function takeFlash(messages) {
  const text = flash;
  flash = null;
  if (text) setTimeout(() => messages.replaceChildren(notice(text, "ok")), 50);
  return Boolean(text);
}

/** The new-tender page and a draft's page: the whole form, publication, cancellation. */
function showDraftEditor(main, tender, user) {
  const messages = h("div", { class: "off-messages", "aria-live": "polite" });
  const problems = problemsArea();
  const form = tenderForm(tender, user);
  const saveButton = h("button", { type: "submit" }, t(tender ? "off_saveDraft" : "off_createDraft"));
  const title = heading(tender ? tender.title : t("off_newTender"));
  const element = h("form", { class: "off-form", novalidate: true }, ...form.element, h("div", { class: "actions" }, saveButton));

  /** Save the form (create or PATCH); the tender as saved, or null when refused. */
  const save = async () => {
    problems.clear();
    messages.replaceChildren();
    const found = form.check();
    if (found.length) {
      problems.show(found);
      return null;
    }
    const body = form.collect();
    busy([saveButton], true);
    try {
      if (!tender) return await api("/tenders", { method: "POST", json: body });
      if (!form.deadlineChanged()) delete body.bid_deadline; // as stored, to the second
      const saved = await api(`/tenders/${tender.id}`, { method: "PATCH", json: body });
      tender = saved;
      form.markSaved();
      return saved;
    } catch (error) {
      reportError(error, problems, messages, form.controlFor);
      return null;
    } finally {
      busy([saveButton], false);
    }
  };

  element.addEventListener("submit", async (event) => {
    event.preventDefault();
    const creating = !tender;
    const saved = await save();
    if (!saved) return;
    if (creating) {
      flash = t("off_created");
      location.hash = `#/officer/tenders/${saved.id}`;
      return;
    }
    title.textContent = saved.title;
    messages.replaceChildren(notice(t("off_saved"), "ok"));
  });

  const sections = [];
  if (tender) {
    const publishButton = h("button", { type: "button" }, t("off_publish"));
    publishButton.addEventListener("click", async () => {
      problems.clear();
      messages.replaceChildren();
      const found = form.check({ future: true });
      if (found.length) {
        problems.show(found);
        return;
      }
      const dirty = form.dirty();
      const confirmed = await confirmDialog(main, {
        title: t("off_publishTitle"),
        text: dirty ? [t("off_publishText"), t("off_savedFirst")] : t("off_publishText"),
        confirm: t("off_publishConfirm"),
      });
      if (!confirmed) return;
      if (dirty && !(await save())) return;
      busy([publishButton, saveButton], true);
      try {
        const published = await api(`/tenders/${tender.id}/publish`, { method: "POST" });
        flash = t("off_published");
        showTenderPage(main, published, user);
      } catch (error) {
        reportError(error, problems, messages, form.controlFor);
      } finally {
        busy([publishButton, saveButton], false);
      }
    });
    sections.push(
      h(
        "section",
        { class: "card", "aria-labelledby": "off-publish-title" },
        h("h3", { id: "off-publish-title" }, t("off_publishSection")),
        h("p", {}, t("off_publishHint")),
        h("div", { class: "actions" }, publishButton),
      ),
      liveDocuments(tender, { manage: true }),
      cancelSection(main, tender, user),
    );
  }
  place(
    main,
    h("a", { href: "#/officer" }, t("off_back")),
    title,
    statusLine(tender),
    messages,
    problems.summary,
    element,
    ...sections,
  );
  takeFlash(messages);
}

/** Cancelling, with a required reason and a confirmation. */
function cancelSection(main, tender, user) {
  const messages = h("div", {});
  const problems = problemsArea();
  const reason = h("textarea", { id: "off-cancel-reason", maxlength: 2000, rows: 3, required: true });
  const button = h("button", { type: "submit", class: "danger" }, t("off_cancelTender"));
  const form = h(
    "form",
    { class: "card off-cancel", novalidate: true, "aria-labelledby": "off-cancel-title" },
    h("h3", { id: "off-cancel-title" }, t("off_cancelSection")),
    messages,
    problems.summary,
    field(t("off_cancelReason"), reason, t("off_cancelReasonHint")),
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problems.clear();
    messages.replaceChildren();
    const why = reason.value.trim();
    if (!why) {
      problems.show([[reason, t("off_errRequired")]]);
      return;
    }
    const confirmed = await confirmDialog(main, {
      title: t("off_cancelTitle"),
      text: t("off_cancelText", { reason: why }),
      confirm: t("off_cancelConfirm"),
      danger: true,
    });
    if (!confirmed) return;
    busy([button], true);
    try {
      const cancelled = await api(`/tenders/${tender.id}/cancel`, { method: "POST", json: { reason: why } });
      flash = t("off_cancelledOk");
      showTenderPage(main, cancelled, user);
    } catch (error) {
      reportError(error, problems, messages, (path) => (path === "reason" ? reason : null));
    } finally {
      busy([button], false);
    }
  });
  return form;
}

/** A published tender's amendment: the description and a later deadline, with a reason. */
function amendSection(main, tender, user) {
  const messages = h("div", {});
  const problems = problemsArea();
  const description = h("textarea", { id: "off-amend-description", maxlength: 20000, rows: 6, value: tender.description });
  const current = toLocalInput(tender.bid_deadline);
  const deadline = h("input", { type: "datetime-local", id: "off-amend-deadline", value: current, min: current });
  const reason = h("textarea", { id: "off-amend-reason", maxlength: 2000, rows: 3, required: true });
  const button = h("button", { type: "submit" }, t("off_amendButton"));
  const form = h(
    "form",
    { class: "card off-form", novalidate: true, "aria-labelledby": "off-amend-title" },
    h("h3", { id: "off-amend-title" }, t("off_amendSection")),
    h("p", { class: "off-muted" }, t("off_amendHint")),
    messages,
    problems.summary,
    field(t("off_description"), description),
    field(t("off_deadline"), deadline, t("off_deadlineHint", { zone: zoneName() })),
    field(t("off_amendReason"), reason),
    h("div", { class: "actions" }, button),
  );
  const controls = { description, bid_deadline: deadline, reason };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problems.clear();
    messages.replaceChildren();
    const body = {};
    const found = [];
    if (description.value !== tender.description) body.description = description.value;
    if (deadline.value !== current) {
      const iso = fromLocalInput(deadline.value);
      if (!iso) found.push([deadline, t("off_errRequired")]);
      else if (Date.parse(iso) < Date.parse(tender.bid_deadline)) {
        found.push([deadline, t("off_errLater", { at: when(tender.bid_deadline) })]);
      } else if (Date.parse(iso) <= serverNow()) found.push([deadline, t("off_errDeadline")]);
      else body.bid_deadline = iso;
    }
    if (!reason.value.trim()) found.push([reason, t("off_errRequired")]);
    if (!found.length && !Object.keys(body).length) {
      messages.replaceChildren(notice(t("off_nothingChanged"), "error"));
      return;
    }
    if (found.length) {
      problems.show(found);
      return;
    }
    body.reason = reason.value.trim();
    busy([button], true);
    try {
      const amended = await api(`/tenders/${tender.id}`, { method: "PATCH", json: body });
      flash = t("off_amended");
      showTenderPage(main, amended, user);
    } catch (error) {
      reportError(error, problems, messages, (path) => controls[path] ?? null);
    } finally {
      busy([button], false);
    }
  });
  return form;
}

/** The amendments, newest last, each change with its before and after. */
function amendmentHistory(tender) {
  const items = tender.amendments.map((amendment) => {
    const changes = Object.entries(amendment.changes).map(([name, change]) => {
      const before = change.from ?? change.before;
      const after = change.to ?? change.after;
      if (name === "bid_deadline") {
        return h("li", {}, t("off_changeDeadline", { from: when(before), to: when(after) }));
      }
      if (name === "description") {
        return h(
          "li",
          {},
          h(
            "details",
            {},
            h("summary", {}, `${t("off_changeDescription")} — ${t("off_showChange")}`),
            h("p", { class: "off-muted" }, t("off_before")),
            h("div", { class: "description off-quote" }, before ?? ""),
            h("p", { class: "off-muted" }, t("off_after")),
            h("div", { class: "description off-quote" }, after ?? ""),
          ),
        );
      }
      if (name === "document_added" && after) {
        return h("li", {}, t("off_changeDocument", { name: after.name }), " ", h("code", {}, `${String(after.sha256).slice(0, 16)}…`));
      }
      return h("li", {}, `${name}: ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
    });
    return h(
      "li",
      {},
      h("strong", {}, t("off_amendmentN", { number: amendment.number, at: when(amendment.amended_at) })),
      h("ul", {}, ...changes),
      amendment.reason ? h("p", {}, t("off_reasonIs", { reason: amendment.reason })) : null,
    );
  });
  return h(
    "section",
    { class: "off-history", "aria-labelledby": "off-history-title" },
    h("h3", { id: "off-history-title" }, t("off_history")),
    items.length ? h("ol", { class: "off-amendments" }, ...items) : h("p", {}, t("off_noAmendments")),
  );
}

/** Everything about a tender that is no longer a draft, read-only. */
function tenderDetails(tender) {
  return [
    tenderFacts(tender),
    tender.description ? h("div", { class: "description off-quote" }, tender.description) : null,
    h("h3", {}, t("off_scoring")),
    scoringSummary(tender.scoring),
    h("h3", {}, t("off_bidForm")),
    bidFieldsTable(tender.bid_fields),
  ];
}

/** A tender's page for its officer, drawn for its status. */
function showTenderPage(main, tender, user) {
  document.title = `${tender.title} · ${t("title")}`;
  const manages = isOfficer(user) && user.organization?.id === tender.organization.id;
  if (tender.status === "draft" && manages) {
    showDraftEditor(main, tender, user);
    return;
  }
  const messages = h("div", { class: "off-messages", "aria-live": "polite" });
  const parts = [];
  if (!manages) {
    parts.push(notice(t("off_otherOrg", { org: tender.organization.name }), "info"));
  } else if (tender.status === "cancelled") {
    parts.push(notice(t("off_cancelledBecause", { reason: tender.cancel_reason ?? "" }), "error"));
  } else if (tender.status !== "published") {
    parts.push(notice(t("off_readOnly", { status: t(`status_${tender.status}`) }), "info"));
  }
  const amendable = manages && tender.status === "published";
  const history = h("div", {}, amendmentHistory(tender));
  parts.push(...tenderDetails(tender));
  // A document added to a published tender is an amendment: the history follows.
  parts.push(
    liveDocuments(tender, {
      manage: amendable,
      onFresh: (fresh) => history.replaceChildren(amendmentHistory(fresh)),
    }),
  );
  if (amendable) parts.push(amendSection(main, tender, user));
  parts.push(history);
  if (amendable) parts.push(cancelSection(main, tender, user));
  const title = heading(tender.title);
  place(main, h("a", { href: "#/officer" }, t("off_back")), title, statusLine(tender), messages, ...parts);
  if (takeFlash(messages)) focusSoon(title);
}

/** Focus now if the page is shown, else once the router shows it (autofocus). */
function focusSoon(element) {
  if (!element) return;
  element.setAttribute("autofocus", "");
  element.focus();
}

async function showNew({ main, user }) {
  if (!admitted(main, user)) return;
  if (!isOfficer(user)) {
    place(main, h("h2", {}, t("off_newTender")), notice(t("off_officersOnly"), "info"));
    return;
  }
  showDraftEditor(main, null, user);
}

async function showManage({ main, params, user }) {
  if (!admitted(main, user)) return;
  let tender;
  try {
    tender = await loadTender(params[0]);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    place(main, h("h2", {}, t("navOfficer")), notice(t("off_noTender"), "error"), h("a", { href: "#/officer" }, t("off_back")));
    return;
  }
  showTenderPage(main, tender, user);
  // After a draft is created the page moves here; focus the title so the reader knows where.
  if (document.activeElement === document.body) focusSoon(main.querySelector(".off-heading"));
}

export const routes = [
  [/^\/officer\/?$/, showConsole],
  [/^\/officer\/new$/, showNew],
  [/^\/officer\/tenders\/([0-9a-f-]{36})$/, showManage],
];
