// The public pages: the tender list and a tender's detail with a countdown that follows the
// server's clock (server_time), not the viewer's.
import { currentLanguage, t, toggleLanguage } from "./i18n.js";

const API = "/api/v1";
const main = document.getElementById("app");
let timer = null;

function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

async function load(path) {
  const response = await fetch(`${API}${path}`);
  if (!response.ok) throw new Error(t("loadFailed", { status: response.status }));
  return { body: await response.json(), received: Date.now() };
}

function when(iso) {
  return new Date(iso).toLocaleString(currentLanguage());
}

function left(milliseconds) {
  if (milliseconds <= 0) return t("closed");
  const seconds = Math.floor(milliseconds / 1000);
  const [d, h, m, s] = [86400, 3600, 60, 1].map((unit, i, all) =>
    Math.floor((i ? seconds % all[i - 1] : seconds) / unit),
  );
  const clock = [h, m, s].map((n) => String(n).padStart(2, "0")).join(":");
  return d ? `${d}d ${clock}` : clock;
}

async function showList() {
  const { body } = await load("/tenders?page_size=50");
  const table = element("table");
  const head = table.createTHead().insertRow();
  for (const key of ["reference", "name", "deadline", "status"]) head.append(element("th", t(key)));
  const rows = table.createTBody();
  for (const tender of body.items) {
    const row = rows.insertRow();
    row.insertCell().append(element("a", tender.reference, { href: `#/tenders/${tender.id}` }));
    row.insertCell().textContent = tender.title;
    row.insertCell().textContent = when(tender.bid_deadline);
    row.insertCell().textContent = t(`status_${tender.status}`);
  }
  main.replaceChildren(element("h2", t("tenders")), table);
}

async function showTender(id) {
  const { body: tender, received } = await load(`/tenders/${id}`);
  // How far the viewer's clock is from the server's, measured when the answer arrived.
  const offset = Date.parse(tender.server_time) - received;
  const countdown = element("output", "", { "aria-live": "off" });
  const tick = () => {
    countdown.textContent = left(Date.parse(tender.bid_deadline) - (Date.now() + offset));
  };
  tick();
  timer = setInterval(tick, 1000);
  const facts = element("dl");
  for (const [key, value] of [
    ["reference", tender.reference],
    ["status", t(`status_${tender.status}`)],
    ["deadline", when(tender.bid_deadline)],
    ["recipient", tender.opening_recipient ?? "—"],
    ["commitment", tender.coefficient_commitment ?? "—"],
  ]) {
    facts.append(element("dt", t(key)), element("dd", value));
  }
  facts.append(element("dt", t("countdown")), element("dd").appendChild(countdown).parentNode);
  main.replaceChildren(
    element("a", t("back"), { href: "#/" }),
    element("h2", tender.title),
    facts,
    element("p", tender.description),
  );
}

async function route() {
  clearInterval(timer);
  document.title = t("title");
  document.getElementById("language").textContent = t("language");
  const match = location.hash.match(/^#\/tenders\/([0-9a-f-]{36})$/);
  try {
    await (match ? showTender(match[1]) : showList());
  } catch (error) {
    main.replaceChildren(element("p", error.message, { role: "alert" }));
  }
}

document.getElementById("language").addEventListener("click", () => {
  toggleLanguage();
  route();
});
window.addEventListener("hashchange", route);
route();
