// The two languages of the pages; the choice is kept in localStorage. Each page module adds
// its own texts with addTexts, so a page and its words live in one file.
const TEXTS = {
  "zh-CN": {
    title: "不见面开标",
    language: "English",
    loading: "加载中…",
    requestFailed: "请求失败（HTTP {status}）",
    networkFailed: "网络连接失败，请稍后重试",
    uploadAborted: "上传已取消",
    notFound: "页面不存在",
    closed: "已截止",
    status_published: "投标中",
    status_opening: "开标中",
    status_opened: "已开标",
    status_failed: "流标",
    status_cancelled: "已取消",
    status_draft: "草稿",
    role_admin: "管理员",
    role_officer: "招标人",
    role_supervisor: "监督人",
    role_bidder: "投标人",
    mode_platform: "平台解密",
    mode_bidder: "投标人在线解密",
    nav: "主导航",
    navTenders: "招标项目",
    navOfficer: "招标管理",
    navKeys: "我的解密密钥",
    signIn: "登录",
    signOut: "退出",
    register: "注册投标人",
    skip: "跳到正文",
  },
  en: {
    title: "Contactless bidding",
    language: "中文",
    loading: "Loading…",
    requestFailed: "The request failed (HTTP {status})",
    networkFailed: "Could not reach the platform; try again shortly",
    uploadAborted: "The upload was cancelled",
    notFound: "No such page",
    closed: "Closed",
    status_published: "Taking bids",
    status_opening: "Opening",
    status_opened: "Opened",
    status_failed: "Failed (流标)",
    status_cancelled: "Cancelled",
    status_draft: "Draft",
    role_admin: "Administrator",
    role_officer: "Procurement officer",
    role_supervisor: "Supervisor",
    role_bidder: "Bidder",
    mode_platform: "Platform decryption",
    mode_bidder: "Bidders decrypt online",
    nav: "Main navigation",
    navTenders: "Tenders",
    navOfficer: "Manage tenders",
    navKeys: "My decryption key",
    signIn: "Sign in",
    signOut: "Sign out",
    register: "Register as a bidder",
    skip: "Skip to the content",
  },
};

export const LANGUAGES = Object.keys(TEXTS);

/** Add a page's texts: {"zh-CN": {...}, en: {...}}; a key missing in one language is a bug. */
export function addTexts(texts) {
  for (const language of LANGUAGES) Object.assign(TEXTS[language], texts[language]);
}

const stored = localStorage.getItem("language");
let language = stored in TEXTS ? stored : navigator.language?.startsWith("en") ? "en" : "zh-CN";
document.documentElement.lang = language;

export function t(key, values = {}) {
  const text = TEXTS[language][key] ?? TEXTS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** Whether a key has a text (for optional texts such as an error type's explanation). */
export function has(key) {
  return key in TEXTS[language];
}

export function currentLanguage() {
  return language;
}

export function toggleLanguage() {
  language = language === "zh-CN" ? "en" : "zh-CN";
  localStorage.setItem("language", language);
  document.documentElement.lang = language;
}
