// Accounts: sign in (a cookie session with a CSRF token), bidder registration and its
// activation by the link mailed to the registrant, sign out.
import { API, api, csrfToken } from "./api.js";
import { field, h, notice } from "./dom.js";
import { addTexts, has, t } from "./i18n.js";

addTexts({
  "zh-CN": {
    email: "电子邮箱",
    password: "密码",
    passwordHint: "至少 10 个字符",
    displayName: "联系人姓名",
    organizationName: "单位名称",
    creditCode: "统一社会信用代码",
    creditCodeHint: "18 位，例如 91350100M000100Y43",
    signInTitle: "登录",
    registerTitle: "投标人注册",
    registerSent: "请查收邮件",
    registerSentText:
      "我们已向 {email} 发送了一封关于本次注册的邮件，请按邮件中的说明继续：新账号需打开邮件中的激活链接并输入密码后才能使用。没有收到？请检查垃圾邮件箱，或稍后重新注册。",
    activateTitle: "激活投标人账号",
    activateText: "请输入注册时设置的密码以激活账号。",
    activate: "激活并登录",
    account_error_activation_invalid: "该激活链接无效、已使用或已过期。请重新注册以获取新的链接。",
    account_error_invalid_credentials: "密码与注册时设置的不一致。",
    account_error_registration_unavailable: "本平台暂不开放自助注册（平台不发送邮件），请联系平台管理员开设账号。",
    noAccount: "还没有账号？注册投标人",
    haveAccount: "已有账号？登录",
    signedOut: "您已退出",
  },
  en: {
    email: "Email",
    password: "Password",
    passwordHint: "At least 10 characters",
    displayName: "Your name",
    organizationName: "Organization",
    creditCode: "Unified social credit code",
    creditCodeHint: "18 characters, such as 91350100M000100Y43",
    signInTitle: "Sign in",
    registerTitle: "Register as a bidder",
    registerSent: "Check your mailbox",
    registerSentText:
      "A message about this registration is on its way to {email}: follow it to go on. A new account is activated by the link in it, with your password. Nothing there? Look in the spam folder, or register again later.",
    activateTitle: "Activate your bidder account",
    activateText: "Enter the password you chose when you registered to activate the account.",
    activate: "Activate and sign in",
    account_error_activation_invalid:
      "This activation link is unknown, already used or expired. Register again for a fresh one.",
    account_error_invalid_credentials: "This is not the password chosen at registration.",
    account_error_registration_unavailable:
      "Self-registration is closed on this platform (it sends no email): ask the platform's administrator for an account.",
    noAccount: "No account yet? Register as a bidder",
    haveAccount: "Have an account? Sign in",
    signedOut: "You are signed out",
  },
});

let changed = () => {};

/** Who to tell when the signed-in user changes (the shell redraws). */
export function onChange(callback) {
  changed = callback;
}

async function signInWith(email, password) {
  const form = new URLSearchParams({ username: email, password, session: "cookie" });
  const response = await fetch(`${API}/auth/token`, {
    method: "POST",
    body: form,
    credentials: "same-origin",
  });
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    throw new Error(body?.detail ?? t("requestFailed", { status: response.status }));
  }
}

function input(name, type, attributes = {}) {
  return h("input", { name, type, required: true, ...attributes });
}

function formPage(main, title, controls, submitText, submit, footer) {
  const message = h("div", { "aria-live": "assertive" });
  const button = h("button", { type: "submit" }, submitText);
  const form = h("form", { class: "card narrow", novalidate: false }, ...controls, button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    message.replaceChildren();
    try {
      await submit(new FormData(form));
    } catch (error) {
      const explained = `account_error_${error.type}`;
      message.replaceChildren(notice(has(explained) ? t(explained) : error.message, "error"));
    } finally {
      button.disabled = false;
    }
  });
  form.querySelector("input")?.setAttribute("autofocus", "");
  main.replaceChildren(h("h2", {}, title), message, form, footer);
}

function showSignIn({ main }) {
  const back = new URLSearchParams(location.hash.split("?")[1] ?? "").get("next");
  formPage(
    main,
    t("signInTitle"),
    [
      field(t("email"), input("email", "email", { autocomplete: "username" })),
      field(t("password"), input("password", "password", { autocomplete: "current-password" })),
    ],
    t("signIn"),
    async (data) => {
      await signInWith(data.get("email"), data.get("password"));
      await changed(back && back.startsWith("/") ? `#${back}` : "#/");
    },
    h("p", {}, h("a", { href: "#/register" }, t("noAccount"))),
  );
}

function showRegister({ main }) {
  formPage(
    main,
    t("registerTitle"),
    [
      field(t("organizationName"), input("organization", "text", { maxlength: 200, autocomplete: "organization" })),
      field(
        t("creditCode"),
        input("code", "text", { maxlength: 18, autocapitalize: "characters" }),
        t("creditCodeHint"),
      ),
      field(t("displayName"), input("display_name", "text", { maxlength: 100, autocomplete: "name" })),
      field(t("email"), input("email", "email", { autocomplete: "email" })),
      field(
        t("password"),
        input("password", "password", { minlength: 10, autocomplete: "new-password" }),
        t("passwordHint"),
      ),
    ],
    t("register"),
    async (data) => {
      await api("/auth/register", {
        method: "POST",
        json: {
          email: data.get("email"),
          password: data.get("password"),
          display_name: data.get("display_name"),
          organization: { name: data.get("organization"), code: data.get("code").trim().toUpperCase() },
        },
      });
      // The same answer whatever came of it: what did goes to the mailbox.
      main.replaceChildren(
        h("h2", {}, t("registerSent")),
        notice(t("registerSentText", { email: data.get("email").trim() }), "ok"),
        h("p", {}, h("a", { href: "#/sign-in" }, t("haveAccount"))),
      );
    },
    h("p", {}, h("a", { href: "#/sign-in" }, t("haveAccount"))),
  );
}

function showActivate({ main, params: [token] }) {
  formPage(
    main,
    t("activateTitle"),
    [
      h("p", {}, t("activateText")),
      field(t("password"), input("password", "password", { autocomplete: "current-password" })),
    ],
    t("activate"),
    async (data) => {
      const user = await api("/auth/activate", { method: "POST", json: { token, password: data.get("password") } });
      await signInWith(user.email, data.get("password"));
      await changed("#/");
    },
    h("p", {}, h("a", { href: "#/sign-in" }, t("haveAccount"))),
  );
}

/** Revoke the session on the server, then forget it here. */
export async function signOut() {
  const headers = {};
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  await fetch(`${API}/auth/logout`, { method: "POST", headers, credentials: "same-origin" }).catch(() => null);
  await changed("#/");
}

export const routes = [
  [/^\/sign-in(?:\?.*)?$/, showSignIn],
  [/^\/register$/, showRegister],
  [/^\/activate\/([A-Za-z0-9_-]+)$/, showActivate],
];
