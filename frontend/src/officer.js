// The officer console: the organization's tenders, one form to create and edit a draft
// (its scoring and bid form included), publication, amendments and cancellation.
import "./officer.css";
import { ApiError, api, serverNow } from "./api.js";
import { field, h, money, notice, when } from "./dom.js";
import { addTexts, t } from "./i18n.js";
import { loadTender, tenderFacts } from "./public.js";
import { documentsPanel } from "./documents.js";
import { bidFieldsEditor, bidFieldsTable } from "./formbuilder.js";
import { METHODS, scoringEditor, scoringSummary } from "./scoring.js";

addTexts({
  "zh-CN": {
    off_console: "本单位的招标项目",
    off_consoleOf: "{org} 的招标项目",
    off_newTender: "新建招标项目",
    off_noneYet: "本单位还没有招标项目。",
    off_noneMatch: "没有符合条件的项目。",
    off_counts: "共 {total} 个项目",
    off_filterText: "筛选",
    off_filterTextHint: "项目名称或编号中的文字",
    off_signInNeeded: "招标管理需要以招标人身份登录。",
    off_signInLink: "以招标人身份登录",
    off_notForYou: "此页面供招标人使用；您当前的身份是{role}。",
    off_toPublicList: "查看公开的招标项目",
    off_adminNote: "管理员可以查看；新建和修改招标项目须由招标人操作。",
    off_officersOnly: "只有招标人可以新建招标项目。",
    off_publicPage: "公开页面",
    off_back: "返回本单位项目",
    off_noTender: "找不到该项目，或您无权查看。",
    off_secTender: "项目信息",
    off_secPrices: "限价",
    off_secOpening: "截止与开标",
    off_reference: "项目编号",
    off_referenceHint: "不可重复，例如 ZB-2026-014",
    off_title: "项目名称",
    off_buyer: "招标人（采购单位）",
    off_description: "项目说明",
    off_currency: "币种",
    off_currencyHint: "三个大写字母，例如 CNY",
    off_ceiling: "最高投标限价",
    off_moneyHint: "金额，最多两位小数，例如 5000000.00",
    off_floor: "最低限价",
    off_floorHint: "可不填；不得高于最高投标限价",
    off_deadline: "投标截止时间",
    off_deadlineHint: "按您所在时区（{zone}）",
    off_openingMode: "解密方式",
    off_window: "解密时限（分钟）",
    off_windowHint: "截标后投标人在线解密的时间，1–1440 分钟",
    off_backup: "平台备份解密",
    off_backupHint: "投标文件同时加密给本项目公钥；时限结束仍未解密的由平台解密",
    off_minBids: "最少有效投标数",
    off_minBidsHint: "有效投标少于此数即流标（1–1000）",
    off_publicOpening: "公开直播开标（任何人可观看）",
    off_createDraft: "保存为草稿",
    off_saveDraft: "保存草稿",
    off_publishSection: "发布",
    off_publishHint: "发布后生成开标公钥和系数承诺，投标人即可加密投标；此后只能变更项目说明和推迟截止时间。",
    off_publish: "发布…",
    off_publishTitle: "确认发布此项目？",
    off_publishText: "发布后将生成本项目的开标公钥和下浮系数承诺，投标人即可加密递交投标。此后只能修改项目说明或推迟截止时间，每次变更都会公示。",
    off_savedFirst: "未保存的修改会先保存。",
    off_publishConfirm: "确认发布",
    off_goBack: "返回",
    off_cancelSection: "取消招标",
    off_cancelReason: "取消原因",
    off_cancelReasonHint: "原因将随项目公示",
    off_cancelTender: "取消招标",
    off_cancelTitle: "确认取消此项目？",
    off_cancelText: "项目取消后不可恢复，原因将公示：“{reason}”。",
    off_cancelConfirm: "确认取消",
    off_amendSection: "变更公告",
    off_amendHint: "已发布的项目只能修改项目说明或推迟截止时间；每次变更都会记录并公示。",
    off_amendReason: "变更原因",
    off_amendButton: "发布变更",
    off_history: "变更记录",
    off_noAmendments: "暂无变更。",
    off_amendmentN: "第 {number} 次变更 · {at}",
    off_changeDeadline: "投标截止时间：{from} → {to}",
    off_changeDescription: "项目说明已修改",
    off_changeDocument: "新增文件：{name}",
    off_showChange: "查看修改内容",
    off_before: "修改前",
    off_after: "修改后",
    off_reasonIs: "原因：{reason}",
    off_created: "草稿已保存。",
    off_saved: "草稿已保存。",
    off_published: "已发布，投标人现在可以加密递交投标。",
    off_amended: "变更已发布。",
    off_cancelledOk: "项目已取消。",
    off_nothingChanged: "没有修改：请修改项目说明或推迟截止时间。",
    off_readOnly: "此项目状态为“{status}”，不能再修改。",
    off_otherOrg: "此项目属于{org}，只有该单位的招标人可以管理。",
    off_cancelledBecause: "已取消，原因：{reason}",
    off_summary: "请修改以下 {n} 处：",
    off_problemAt: "{what}：{text}",
    off_errRequired: "必填",
    off_errMoney: "填写金额，例如 1234.50（最多两位小数）",
    off_errPositive: "必须大于 0",
    off_errFloor: "最低限价不能高于最高投标限价",
    off_errDeadline: "请选择将来的时间",
    off_errLater: "截止时间只能推迟，当前为 {at}",
    off_errCurrency: "三个大写字母，例如 CNY",
    off_errWindow: "填写 1 到 1440 之间的整数",
    off_errMinBids: "填写 1 到 1000 之间的整数",
    off_colActions: "操作",
  },
  en: {
    off_console: "Your organization's tenders",
    off_consoleOf: "Tenders of {org}",
    off_newTender: "New tender",
    off_noneYet: "Your organization has no tenders yet.",
    off_noneMatch: "No tender matches.",
    off_counts: "{total} tenders",
    off_filterText: "Filter",
    off_filterTextHint: "Words in the title or reference",
    off_signInNeeded: "Managing tenders needs a procurement officer's account.",
    off_signInLink: "Sign in as an officer",
    off_notForYou: "This console is for procurement officers; you are signed in as {role}.",
    off_toPublicList: "See the public tenders",
    off_adminNote: "Administrators can look; procurement officers create and change tenders.",
    off_officersOnly: "Only procurement officers create tenders.",
    off_publicPage: "Public page",
    off_back: "Back to my organization's tenders",
    off_noTender: "No such tender, or not one you may see.",
    off_secTender: "The tender",
    off_secPrices: "Prices",
    off_secOpening: "Deadline and opening",
    off_reference: "Reference",
    off_referenceHint: "Unique, such as ZB-2026-014",
    off_title: "Title",
    off_buyer: "Buyer",
    off_description: "Description",
    off_currency: "Currency",
    off_currencyHint: "Three capital letters, such as CNY",
    off_ceiling: "Ceiling price",
    off_moneyHint: "An amount with at most two decimals, such as 5000000.00",
    off_floor: "Floor price",
    off_floorHint: "Optional; not above the ceiling price",
    off_deadline: "Bid deadline",
    off_deadlineHint: "In your time zone ({zone})",
    off_openingMode: "Decryption",
    off_window: "Decryption window (minutes)",
    off_windowHint: "Time after the deadline for bidders to decrypt online, 1–1440 minutes",
    off_backup: "Platform backup decryption",
    off_backupHint: "Bids are sealed to the tender's key too; the platform opens those still sealed when the window closes",
    off_minBids: "Fewest valid bids",
    off_minBidsHint: "With fewer valid bids the opening fails (1–1000)",
    off_publicOpening: "Public opening: anyone may watch",
    off_createDraft: "Create draft",
    off_saveDraft: "Save draft",
    off_publishSection: "Publish",
    off_publishHint: "Publishing creates the opening key and the coefficient commitment, and bidders can seal their bids; afterwards only the description and a later deadline can change.",
    off_publish: "Publish…",
    off_publishTitle: "Publish this tender?",
    off_publishText: "Publishing creates the tender's opening key and coefficient commitment, and bidders can seal their bids from then on. Afterwards only the description and a later deadline can change, each as a recorded amendment.",
    off_savedFirst: "Your unsaved changes are saved first.",
    off_publishConfirm: "Yes, publish",
    off_goBack: "Go back",
    off_cancelSection: "Cancel the tender",
    off_cancelReason: "Reason for cancelling",
    off_cancelReasonHint: "Published with the tender",
    off_cancelTender: "Cancel tender",
    off_cancelTitle: "Cancel this tender?",
    off_cancelText: "A cancelled tender cannot be restored. The reason is published: “{reason}”.",
    off_cancelConfirm: "Yes, cancel it",
    off_amendSection: "Amend the tender",
    off_amendHint: "Once published, only the description and a later deadline can change; every amendment is recorded and shown to everyone.",
    off_amendReason: "Reason for the amendment",
    off_amendButton: "Publish amendment",
    off_history: "Amendment history",
    off_noAmendments: "No amendments yet.",
    off_amendmentN: "Amendment {number} · {at}",
    off_changeDeadline: "Bid deadline: {from} → {to}",
    off_changeDescription: "Description changed",
    off_changeDocument: "Document added: {name}",
    off_showChange: "Show the change",
    off_before: "Before",
    off_after: "After",
    off_reasonIs: "Reason: {reason}",
    off_created: "Draft created.",
    off_saved: "Draft saved.",
    off_published: "Published: bidders can now seal their bids.",
    off_amended: "Amendment published.",
    off_cancelledOk: "The tender is cancelled.",
    off_nothingChanged: "Nothing changed: change the description or move the deadline later.",
    off_readOnly: "This tender is {status}: it can no longer be changed.",
    off_otherOrg: "This tender belongs to {org}; only its officers can manage it.",
    off_cancelledBecause: "Cancelled: {reason}",
    off_summary: "Please correct the following ({n}):",
    off_problemAt: "{what}: {text}",
    off_errRequired: "Required",
    off_errMoney: "Write an amount such as 1234.50, with at most two decimals",
    off_errPositive: "Must be above 0",
    off_errFloor: "The floor price must not be above the ceiling price",
    off_errDeadline: "Choose a time in the future",
    off_errLater: "The deadline may only move later than {at}",
    off_errCurrency: "Three capital letters, such as CNY",
    off_errWindow: "A whole number from 1 to 1440",
    off_errMinBids: "A whole number from 1 to 1000",
    off_colActions: "Actions",
  },
});

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
