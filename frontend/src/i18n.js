// The two languages of the pages; the choice is kept in localStorage. The texts live in one
// file per language under i18n/, the same keys in each.
import en from "./i18n/en.js";
import zhCN from "./i18n/zh-CN.js";

const TEXTS = { "zh-CN": zhCN, en };

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
