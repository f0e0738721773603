// The two languages of the pages; the choice is kept in localStorage.
const TEXTS = {
  "zh-CN": {
    title: "不见面开标",
    tenders: "招标项目",
    reference: "编号",
    name: "项目名称",
    deadline: "投标截止",
    status: "状态",
    countdown: "距截止",
    closed: "已截止",
    back: "返回列表",
    loadFailed: "无法加载（HTTP {status}）",
    language: "English",
    recipient: "开标公钥（age）",
    commitment: "系数承诺",
    status_published: "投标中",
    status_opening: "开标中",
    status_opened: "已开标",
    status_failed: "流标",
    status_cancelled: "已取消",
    status_draft: "草稿",
  },
  en: {
    title: "Contactless bidding",
    tenders: "Tenders",
    reference: "Reference",
    name: "Title",
    deadline: "Bid deadline",
    status: "Status",
    countdown: "Time left",
    closed: "Closed",
    back: "Back to the list",
    loadFailed: "Could not load (HTTP {status})",
    language: "中文",
    recipient: "Opening recipient (age)",
    commitment: "Coefficient commitment",
    status_published: "Taking bids",
    status_opening: "Opening",
    status_opened: "Opened",
    status_failed: "Failed (流标)",
    status_cancelled: "Cancelled",
    status_draft: "Draft",
  },
};

let language = localStorage.getItem("language") in TEXTS ? localStorage.getItem("language") : "zh-CN";

export function t(key, values = {}) {
  const text = TEXTS[language][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function currentLanguage() {
  return language;
}

export function toggleLanguage() {
  language = language === "zh-CN" ? "en" : "zh-CN";
  localStorage.setItem("language", language);
  document.documentElement.lang = language;
}
