// The page shell: navigation by role, the language switch and the hash router. Each page
// module exports routes: [pattern, show] pairs; show({main, params, user}) draws the page
// and may return a function that stops its timers and sockets when the reader leaves.
import "./app.css";
import { forgetMe, me } from "./api.js";
import { h, notice } from "./dom.js";
import { t, toggleLanguage } from "./i18n.js";
import * as accounts from "./accounts.js";
import * as bidder from "./bidder.js";
import * as hall from "./hall.js";
import * as officer from "./officer.js";
import * as publicPages from "./public.js";

const ROUTES = [
  ...accounts.routes,
  ...officer.routes,
  ...bidder.routes,
  ...hall.routes,
  ...publicPages.routes,
];

const main = document.getElementById("app");
const navigation = document.getElementById("navigation");
let leave = null;

function drawNavigation(user) {
  const links = [h("a", { href: "#/" }, t("navTenders"))];
  if (user && (user.role === "officer" || user.role === "admin")) {
    links.push(h("a", { href: "#/officer" }, t("navOfficer")));
  }
  if (user && user.role === "bidder") links.push(h("a", { href: "#/keys" }, t("navKeys")));
  const account = user
    ? [
        h("span", { class: "who" }, `${user.display_name} · ${t(`role_${user.role}`)}`),
        h("button", { type: "button", id: "sign-out", onclick: accounts.signOut }, t("signOut")),
      ]
    : [h("a", { href: "#/sign-in" }, t("signIn")), h("a", { href: "#/register" }, t("register"))];
  navigation.setAttribute("aria-label", t("nav"));
  navigation.replaceChildren(...links, h("span", { class: "spacer" }), ...account);
}

let drawing = 0;

export async function route() {
  // A slow page must not draw over the one the reader has moved on to: each page is drawn
  // aside and shown only if it is still the one wanted.
  const mine = ++drawing;
  if (leave) {
    try {
      leave();
    } catch {
      // a page that cannot clean up must not stop the next one from showing
    }
    leave = null;
  }
  document.title = t("title");
  document.getElementById("language").textContent = t("language");
  document.getElementById("skip").textContent = t("skip");
  const path = location.hash.replace(/^#/, "") || "/";
  main.replaceChildren(h("p", {}, t("loading")));
  const page = h("div", { class: "page" });
  try {
    const user = await me();
    if (mine !== drawing) return;
    drawNavigation(user);
    const found = ROUTES.find(([pattern]) => pattern.test(path));
    if (found) {
      const [pattern, show] = found;
      const stop = (await show({ main: page, params: path.match(pattern).slice(1), user })) ?? null;
      if (mine !== drawing) {
        stop?.();
        return;
      }
      leave = stop;
    } else {
      page.replaceChildren(h("h2", {}, t("notFound")));
    }
  } catch (error) {
    if (mine !== drawing) return;
    page.replaceChildren(notice(error.message, "error"));
  }
  main.replaceChildren(page);
  page.querySelector("[autofocus]")?.focus();
}

/** After signing in or out: forget who we were and draw the page again. */
export async function refresh(hash) {
  forgetMe();
  if (hash !== undefined && location.hash !== hash) {
    location.hash = hash; // hashchange draws the page
  } else {
    await route();
  }
}

document.getElementById("language").addEventListener("click", () => {
  toggleLanguage();
  route();
});
window.addEventListener("hashchange", route);
accounts.onChange(refresh);
route();
document.getElementById("skip").addEventListener("click", (event) => {
  event.preventDefault(); // the hash is the router's: move the focus instead
  main.focus();
});
