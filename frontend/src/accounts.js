// Accounts: sign in (a cookie session with a CSRF token), bidder registration and its
// activation by the link mailed to the registrant, sign out.
import { API, api, csrfToken } from "./api.js";
import { field, h, notice } from "./dom.js";
import { has, t } from "./i18n.js";

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
