// The opening hall (开标大厅): the opening as it happens, over the live room's WebSocket.
// Every event is applied once, in seq order: a reconnection resumes after the last seq held,
// what is at or below it is ignored, and a gap is filled from the REST list before going on.
// The participants act here too: check-in, objections and their answers, confirming the record.
import "./hall.css";
import { ApiError, api, serverNow, syncClock } from "./api.js";
import { download, field, h, money, notice, when } from "./dom.js";
import { currentLanguage, has, t } from "./i18n.js";
import { countdown, loadTender, tenderFacts } from "./public.js";
import { priceChart } from "./chart.js";

const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MOST_MS = 15_000;
// Ticks come every 5 seconds: this long without any message means the connection is dead.
const SILENCE_MS = 20_000;
// Screen readers hear new events at most this often, as one sentence.
const ANNOUNCE_EVERY_MS = 4000;
const REST_PAGE = 1000;

/** A digest shortened for the eye, whole for a screen reader. */
function digest(hex) {
  return h(
    "code",
    { class: "digest" },
    h("span", { "aria-hidden": "true" }, `${hex.slice(0, 16)}…`),
    h("span", { class: "sr-only" }, hex),
  );
}

function clockTime(milliseconds) {
  return new Date(milliseconds).toLocaleTimeString(currentLanguage(), { hour12: false });
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

function bytes(hexText) {
  const out = new Uint8Array(hexText.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = Number.parseInt(hexText.slice(i * 2, i * 2 + 2), 16);
  return out;
}

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/** A reason code in words; a code this page does not know yet is shown as it is. */
function reason(code) {
  return has(`hall_reason_${code}`) ? t(`hall_reason_${code}`) : String(code);
}

/** Close a socket, also one still connecting (closing that would log an error). */
function closeSocket(socket, code, why) {
  if (socket.readyState === WebSocket.CONNECTING) {
    socket.addEventListener("open", () => socket.close(code, why));
  } else {
    socket.close(code, why);
  }
}

/** What the page says about an event, in the reader's language. */
function describeEvent(event, tender) {
  const d = event.data ?? {};
  const currency = tender.currency;
  switch (event.type) {
    case "opening.started":
      return t("hall_event_opening_started", { deadline: when(d.bid_deadline) });
    case "log.sealed":
      return t("hall_event_log_sealed", { size: d.tree_head?.tree_size ?? "?", root: `${(d.tree_head?.root_hash ?? "").slice(0, 12)}…` });
    case "bids.listed":
      return t("hall_event_bids_listed", { count: d.count });
    case "bid.decrypted":
      return t("hall_event_bid_decrypted", { bidder: d.bidder_name, price: money(d.price, currency) });
    case "bid.rejected":
      return t("hall_event_bid_rejected", { bidder: d.bidder_name, reason: reason(d.reason) });
    case "bid.withdrawn":
      return t("hall_event_bid_withdrawn", { bidder: d.bidder_name, reason: reason(d.reason) });
    case "decryption.window_opened":
      return t("hall_event_decryption_window_opened", { at: when(d.closes_at) });
    case "decryption.window_closed":
      return t("hall_event_decryption_window_closed", { opened: d.opened, sealed: d.still_sealed });
    case "coefficient.drawn":
      return t("hall_event_coefficient_drawn", { k: d.coefficient });
    case "scores.computed":
      return t("hall_event_scores_computed", { n: d.ranking?.length ?? 0 });
    case "record.published":
      return t("hall_event_record_published");
    case "opening.failed":
      return t("hall_event_opening_failed");
    case "opening.completed":
      return t("hall_event_opening_completed");
    case "attendance.checked_in":
      return t("hall_event_attendance_checked_in", { name: d.display_name, organization: d.organization_name ?? "—" });
    case "objection.raised":
      return t("hall_event_objection_raised", { bidder: d.bidder_name });
    case "objection.answered":
      return t("hall_event_objection_answered", { name: d.answered_by });
    case "record.confirmed":
      return t("hall_event_record_confirmed", { bidder: d.bidder_name });
    default:
      return t("hall_event_unknown", { type: event.type });
  }
}

/** The live room's address for this page, resuming after `after`. */
function liveUrl(id, after) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/api/v1/tenders/${id}/opening/live?after=${after}`;
}

async function showHall({ main, params, user }) {
  const tender = await loadTender(params[0]);
  const id = tender.id;
  const myOrganization = user?.organization?.id ?? null;
  const isOfficer =
    !!user && (user.role === "officer" || user.role === "supervisor") && myOrganization === tender.organization?.id;
  const canAnswer = isOfficer && user.role === "officer";
  let hasBid = false;
  if (user?.role === "bidder") {
    try {
      const mine = await api(`/tenders/${id}/bids/mine`);
      hasBid = mine.bid !== null || (mine.receipts ?? []).length > 0;
    } catch {
      hasBid = false;
    }
  }
  const participant = isOfficer || hasBid;

  // --- what the events have told -----------------------------------------------------------
  const state = {
    last: 0,
    status: tender.status,
    listed: [], // bids.listed
    outcomes: new Map(), // bid_id -> event
    windowOpened: null,
    windowClosed: null,
    coefficient: null,
    scores: null,
    record: null,
    failed: null,
    completed: false,
    attendance: [],
    confirmations: [],
    objections: new Map(), // objection_id -> {raised, answered}
    sealedRoot: null,
  };
  const finished = () => state.record !== null || state.failed !== null || state.completed;
  const myListedBid = () => state.listed.find((bid) => bid.bidder_id === myOrganization) ?? null;

  // --- the page's parts, built once and updated in place -----------------------------------
  const clockOut = h("output", { class: "clock", "aria-live": "off" });
  const [deadlineOut, stopCountdown] = countdown(tender.bid_deadline);
  const deadlineLine = h("p", { class: "deadline-line" }, `${t("hall_untilDeadline")}: `, deadlineOut);
  const statusBadge = h("span", { class: `status ${state.status}` }, t(`status_${state.status}`));
  const connection = h("p", { class: "connection", id: "hall-connection" }, t("hall_connecting"));
  const banner = h("div", { class: "banner-slot" });
  const announcer = h("div", { class: "sr-only", role: "status", "aria-live": "polite", "aria-atomic": "true" });
  const stopped = h("div", { class: "stopped" });

  // Check-in and attendance.
  const checkInButton = h("button", { type: "button", class: "check-in" }, t("hall_checkIn"));
  const checkInNote = h("p", { class: "hint" });
  const checkInResult = h("div", { "aria-live": "polite" });
  const attendanceList = h("ul", { class: "attendance" });
  const checkInBox = participant ? h("div", { class: "actions check-in-box" }, checkInButton, checkInResult) : null;

  // Bids.
  const windowLine = h("div", { class: "window" });
  const bidRows = h("tbody", {});
  const bidTable = h(
    "div",
    { class: "scroll", tabindex: "0", role: "region", "aria-label": t("hall_bidsCaption") },
    h(
      "table",
      { class: "bids" },
      h("caption", {}, t("hall_bidsCaption")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("hall_colNumber")),
          h("th", { scope: "col" }, t("hall_colBidder")),
          h("th", { scope: "col" }, t("hall_colStatus")),
          h("th", { scope: "col", class: "number" }, `${t("hall_colPrice")} (${tender.currency})`),
          h("th", { scope: "col" }, t("hall_colFields")),
          h("th", { scope: "col" }, t("hall_colReceived")),
          h("th", { scope: "col" }, t("hall_colDigest")),
        ),
      ),
      bidRows,
    ),
  );
  const bidsWaiting = h("p", { class: "hint" }, t("hall_bidsWaiting"));
  bidTable.hidden = true;

  // Coefficient, results, failure, record.
  const coefficientBox = h("section", { class: "card coefficient", "aria-labelledby": "hall-coefficient" });
  coefficientBox.hidden = true;
  const resultsBox = h("section", { class: "card results", "aria-labelledby": "hall-results" });
  resultsBox.hidden = true;
  const failedBox = h("div", { class: "failed" });
  const recordBox = h("section", { class: "card record", "aria-labelledby": "hall-record" });
  recordBox.hidden = true;
  const confirmationList = h("ul", { class: "confirmations" });
  const confirmButton = h("button", { type: "button" }, t("hall_confirmRecord"));
  const confirmResult = h("div", { "aria-live": "polite" });

  // Objections.
  const objectionList = h("ol", { class: "objections" });
  const noObjections = h("p", { class: "hint" }, t("hall_noObjections"));
  const objectionText = h("textarea", { name: "objection", required: true, maxlength: 2000, rows: 3 });
  const objectionButton = h("button", { type: "submit" }, t("hall_raise"));
  const objectionResult = h("div", { "aria-live": "polite" });
  const objectionForm = h("form", { class: "raise" }, field(t("hall_yourObjection"), objectionText), objectionButton, objectionResult);
  objectionForm.hidden = true;
  const objectionItems = new Map(); // objection_id -> {item, answerSlot, form}

  // Timeline.
  // Focusable, so that a keyboard scrolls it; newest first, so the latest is in view.
  const timeline = h("ol", { class: "timeline", reversed: true, tabindex: "0", "aria-labelledby": "hall-timeline" });
  const timelineEmpty = h("p", { class: "hint" }, t("hall_timelineEmpty"));

  main.replaceChildren(
    h(
      "div",
      { class: "hall" },
      h(
        "div",
        { class: "hall-head" },
        h("a", { href: `#/tenders/${id}` }, t("hall_backToTender")),
        h("h2", {}, `${t("hall_title")} · ${tender.title}`),
        h("p", { class: "reference" }, `${t("reference")}: ${tender.reference} `, statusBadge),
        h("p", { class: "clock-line" }, `${t("hall_serverTime")}: `, clockOut),
        deadlineLine,
        connection,
        banner,
        stopped,
        announcer,
        user ? null : notice(t("hall_readOnly"), "info"),
        h("details", { class: "facts-box" }, h("summary", {}, t("hall_facts")), tenderFacts(tender)),
      ),
      h(
        "div",
        { class: "hall-main" },
        failedBox,
        h(
          "section",
          { class: "card", "aria-labelledby": "hall-attendance" },
          h("h3", { id: "hall-attendance" }, t("hall_attendance")),
          checkInBox,
          checkInNote,
          attendanceList,
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "hall-bids" },
          h("h3", { id: "hall-bids" }, t("hall_bids")),
          windowLine,
          bidsWaiting,
          bidTable,
        ),
        coefficientBox,
        resultsBox,
        h(
          "section",
          { class: "card", "aria-labelledby": "hall-objections" },
          h("h3", { id: "hall-objections" }, t("hall_objections")),
          noObjections,
          objectionList,
          objectionForm,
        ),
        recordBox,
      ),
      h(
        "section",
        { class: "hall-timeline card", "aria-labelledby": "hall-timeline" },
        h("h3", { id: "hall-timeline" }, t("hall_timeline")),
        timelineEmpty,
        timeline,
      ),
    ),
  );

  // --- drawing from the state --------------------------------------------------------------
  function drawClock() {
    const now = serverNow();
    clockOut.textContent = clockTime(now);
    const passed = now >= Date.parse(tender.bid_deadline);
    if (passed && !deadlineLine.dataset.passed) {
      deadlineLine.dataset.passed = "1";
      deadlineLine.replaceChildren(t("hall_deadlinePassed", { at: when(tender.bid_deadline) }));
      drawActions();
    }
    if (state.windowOpened && !state.windowClosed) drawWindow();
  }

  function drawStatus() {
    statusBadge.className = `status ${state.status}`;
    statusBadge.textContent = t(`status_${state.status}`);
  }

  function drawActions() {
    const passed = serverNow() >= Date.parse(tender.bid_deadline);
    const checkedIn = !!user && state.attendance.some((event) => event.data.user_id === user.id);
    if (participant) {
      checkInButton.hidden = checkedIn;
      const early = user.role === "bidder" && !passed;
      checkInButton.disabled = early || finished() || checkInButton.dataset.busy === "1";
      if (checkedIn) {
        checkInResult.replaceChildren(notice(t("hall_checkedIn"), "ok"));
        checkInNote.textContent = "";
      } else if (finished()) {
        checkInNote.textContent = t("hall_checkInClosed");
      } else {
        checkInNote.textContent = early ? t("hall_checkInAfterDeadline") : "";
      }
    }
    // A bidder whose bid is being opened objects while the opening runs.
    const mine = myListedBid();
    objectionForm.hidden = !(user?.role === "bidder" && mine && state.status === "opening" && !finished());
    drawRecordActions();
  }

  function drawAttendance() {
    attendanceList.replaceChildren(
      ...(state.attendance.length
        ? state.attendance.map((event) =>
            h(
              "li",
              {},
              t("hall_attendee", {
                name: event.data.display_name,
                organization: event.data.organization_name ?? "—",
                role: t(`role_${event.data.role}`),
                at: clockTime(Date.parse(event.at)),
              }),
            ),
          )
        : [h("li", { class: "hint" }, t("hall_nobodyYet"))]),
    );
  }

  function bidStatus(outcome) {
    if (!outcome) return h("span", { class: "bid-status sealed" }, t("hall_sealed"));
    const d = outcome.data;
    if (outcome.type === "bid.decrypted") {
      const key = ["bidder", "backup"].includes(d.via) ? `hall_decryptedBy_${d.via}` : "hall_decrypted";
      return h("span", { class: "bid-status decrypted" }, t(key));
    }
    if (outcome.type === "bid.rejected") {
      return h(
        "span",
        { class: "bid-status rejected" },
        t("hall_rejected", { reason: reason(d.reason) }),
        d.detail ? h("small", { class: "detail" }, d.detail) : null,
      );
    }
    return h("span", { class: "bid-status withdrawn" }, t("hall_withdrawn", { reason: reason(d.reason) }));
  }

  function otherFields(outcome) {
    if (outcome?.type !== "bid.decrypted") return "";
    const entries = Object.entries(outcome.data.fields ?? {}).filter(([name]) => name !== "price");
    if (!entries.length) return "—";
    // Each field under the label the tender gave it; the name when it gave none.
    const labels = new Map(tender.bid_fields.map((field) => [field.name, field.label || field.name]));
    return h(
      "dl",
      { class: "bid-fields" },
      ...entries.flatMap(([name, value]) => [h("dt", {}, labels.get(name) ?? name), h("dd", {}, String(value))]),
    );
  }

  function drawBids() {
    bidsWaiting.hidden = state.listed.length > 0;
    bidTable.hidden = state.listed.length === 0;
    bidRows.replaceChildren(
      ...state.listed.map((bid, index) => {
        const outcome = state.outcomes.get(bid.bid_id);
        const price = outcome?.type === "bid.decrypted" ? money(outcome.data.price) : "—";
        return h(
          "tr",
          { "data-bidder": bid.bidder_name, class: bid.bidder_id === myOrganization ? "mine" : null },
          h("td", {}, String(index + 1)),
          h("th", { scope: "row" }, bid.bidder_name),
          h("td", {}, bidStatus(outcome)),
          h("td", { class: "number price" }, price),
          h("td", {}, otherFields(outcome)),
          h("td", {}, when(bid.received_at)),
          h("td", {}, digest(bid.sha256)),
        );
      }),
    );
    drawWindow();
  }

  function drawWindow() {
    if (tender.opening_mode !== "bidder" || !state.windowOpened) {
      windowLine.replaceChildren();
      return;
    }
    const opened = state.windowOpened.data;
    if (state.windowClosed) {
      const closed = state.windowClosed.data;
      windowLine.replaceChildren(notice(t("hall_windowClosed", { opened: closed.opened, sealed: closed.still_sealed }), "info"));
      return;
    }
    const left = Math.max(0, Date.parse(opened.closes_at) - serverNow());
    const seconds = Math.floor(left / 1000);
    const leftText = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
    const mine = myListedBid();
    const reveal =
      user?.role === "bidder" && mine && !state.outcomes.has(mine.bid_id) && left > 0
        ? h("a", { class: "button reveal", href: `#/tenders/${id}/bid` }, t("hall_reveal"))
        : null;
    const text = t("hall_windowOpen", { at: when(opened.closes_at), left: leftText });
    const line = windowLine.querySelector(".window-text");
    if (line && !!windowLine.querySelector(".reveal") === !!reveal) {
      line.textContent = text; // each second: only the time left changes
      return;
    }
    windowLine.replaceChildren(
      h("p", { class: "window-text" }, text),
      h("p", { class: "hint" }, t(opened.backup_decryption ? "hall_windowBackup" : "hall_windowNoBackup")),
      reveal,
    );
  }

  async function drawCoefficient() {
    const d = state.coefficient.data;
    const verdict = h("div", { class: "verdict", role: "status" }, t("hall_verifying"));
    coefficientBox.hidden = false;
    coefficientBox.replaceChildren(
      h("h3", { id: "hall-coefficient" }, t("hall_coefficient")),
      h(
        "dl",
        {},
        h("dt", {}, t("hall_k")),
        h("dd", { class: "k" }, h("strong", {}, d.coefficient)),
        h("dt", {}, t("hall_choices")),
        h("dd", {}, (d.choices ?? []).join(", ")),
        h("dt", {}, t("hall_seed")),
        h("dd", {}, h("code", {}, d.seed)),
        h("dt", {}, t("hall_commitmentShown")),
        h("dd", {}, h("code", {}, tender.coefficient_commitment ?? "—")),
        h("dt", {}, t("hall_rootHash")),
        h("dd", {}, h("code", {}, d.root_hash)),
      ),
      verdict,
    );
    if (!globalThis.crypto?.subtle) {
      verdict.replaceChildren(notice(t("hall_cannotVerify"), "info"));
      return;
    }
    const seed = bytes(d.seed);
    const root = bytes(d.root_hash);
    const committed = hex(await sha256(seed)) === tender.coefficient_commitment;
    const joined = new Uint8Array(seed.length + root.length);
    joined.set(seed);
    joined.set(root, seed.length);
    const drawn = BigInt(`0x${hex(await sha256(joined))}`);
    const choices = d.choices ?? [];
    const index = choices.length ? Number(drawn % BigInt(choices.length)) : -1;
    const drawOk = index === d.index && choices[index] === d.coefficient;
    const rootOk = state.sealedRoot === null || state.sealedRoot === d.root_hash;
    const lines = [];
    if (committed) {
      lines.push(h("p", { class: "notice ok verified" }, h("strong", {}, t("hall_commitmentVerified")), " — ", t("hall_commitmentVerifiedWhy")));
    } else {
      lines.push(h("p", { class: "notice error" }, t("hall_commitmentMismatch")));
    }
    lines.push(
      drawOk
        ? h("p", { class: "notice ok" }, t("hall_drawVerified", { n: choices.length, index, k: d.coefficient }))
        : h("p", { class: "notice error" }, t("hall_drawMismatch")),
    );
    if (!rootOk) lines.push(h("p", { class: "notice error" }, t("hall_rootMismatch")));
    verdict.replaceChildren(...lines);
  }

  function formatPrice(value) {
    return typeof value === "number" ? money(Math.round(value).toString()) : money(value);
  }

  function drawResults() {
    const valid = state.listed
      .map((bid) => state.outcomes.get(bid.bid_id))
      .filter((outcome) => outcome?.type === "bid.decrypted")
      .map((outcome) => ({ label: outcome.data.bidder_name, value: outcome.data.price }));
    if (!valid.length) {
      resultsBox.hidden = true;
      return;
    }
    const scores = state.scores?.data ?? null;
    const working = scores?.working ?? null;
    const lines = [
      { label: t("hall_ceilingLine"), value: tender.ceiling_price, kind: "ceiling" },
      { label: t("hall_floorLine"), value: tender.floor_price, kind: "floor" },
    ];
    if (working?.benchmark_price) {
      lines.push({ label: t("hall_benchmarkLine"), value: working.benchmark_price, kind: "benchmark" });
    } else if (scores) {
      const lowest = working?.lowest_price ?? scores.ranking.map((place) => place.price).sort((a, b) => Number(a) - Number(b))[0];
      if (lowest) lines.push({ label: t("hall_lowestLine"), value: lowest, kind: "lowest" });
    }
    const prices = valid.map((point) => Number(point.value));
    const described = lines
      .filter((line) => line.value)
      .map((line) => `${line.label} ${money(line.value, tender.currency)}`)
      .join("; ");
    const chart = priceChart({
      title: t("hall_chartTitle"),
      description: t("hall_chartDescription", {
        n: valid.length,
        low: money(valid.find((p) => Number(p.value) === Math.min(...prices)).value, tender.currency),
        high: money(valid.find((p) => Number(p.value) === Math.max(...prices)).value, tender.currency),
        lines: described,
      }),
      points: valid,
      lines,
      format: formatPrice,
      headings: { name: t("hall_colBidder"), value: `${t("hall_colPrice")} (${tender.currency})` },
      tableCaption: t("hall_chartData"),
      // The card's inner width (its padding and border off), as the chart will be shown.
      width: Math.min(720, (resultsBox.parentElement?.clientWidth || 520) - 34),
    });
    const parts = [h("h3", { id: "hall-results" }, t("hall_results")), chart];
    if (scores) {
      const facts = [[t("hall_method"), t(`hall_method_${scores.method}`)]];
      if (working?.average) {
        facts.push([t("hall_average"), money(working.average, tender.currency)]);
        if (working.excluded_prices?.length) {
          facts.push([t("hall_excluded"), working.excluded_prices.map((p) => money(p, tender.currency)).join(", ")]);
        }
        facts.push([t("hall_k"), working.coefficient]);
        facts.push([t("hall_benchmark"), money(working.benchmark_price, tender.currency)]);
      } else if (working?.lowest_price) {
        facts.push([t("hall_lowestPrice"), money(working.lowest_price, tender.currency)]);
      }
      parts.push(
        h("dl", { class: "working" }, ...facts.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)])),
        h(
          "div",
          { class: "scroll", tabindex: "0", role: "region", "aria-label": t("hall_ranking") },
          h(
            "table",
            { class: "ranking" },
            h("caption", {}, t("hall_ranking")),
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col", class: "number" }, t("hall_rank")),
                h("th", { scope: "col" }, t("hall_colBidder")),
                h("th", { scope: "col", class: "number" }, `${t("hall_price")} (${tender.currency})`),
                h("th", { scope: "col", class: "number" }, t("hall_score")),
              ),
            ),
            h(
              "tbody",
              {},
              ...scores.ranking.map((place) =>
                h(
                  "tr",
                  { class: place.bidder_id === myOrganization ? "mine" : null },
                  h("td", { class: "number" }, String(place.rank)),
                  h("th", { scope: "row" }, place.bidder_name),
                  h("td", { class: "number" }, money(place.price)),
                  h("td", { class: "number" }, place.score ?? "—"),
                ),
              ),
            ),
          ),
        ),
      );
    }
    resultsBox.hidden = false;
    resultsBox.replaceChildren(...parts);
  }

  function drawFailed() {
    if (!state.failed) return;
    const d = state.failed.data;
    const valid = [...state.outcomes.values()].filter((outcome) => outcome.type === "bid.decrypted").length;
    let text;
    if (d.reason === "too_few_bids") {
      text = t("hall_failedTooFewBids", { count: state.listed.length, min: tender.min_bids });
    } else if (d.reason === "too_few_valid_bids") {
      text = t("hall_failedTooFewValid", { valid, listed: state.listed.length, min: tender.min_bids });
    } else {
      text = t("hall_failedOther", { detail: d.detail ?? d.reason });
    }
    failedBox.replaceChildren(
      h("section", { class: "notice error failed-opening", role: "alert" }, h("h3", {}, t("hall_failed")), h("p", {}, text)),
    );
  }

  function drawRecord() {
    if (!state.record) return;
    const d = state.record.data;
    recordBox.hidden = false;
    const downloadButton = h("button", { type: "button", class: "secondary" }, t("hall_downloadRecord"));
    const downloadResult = h("div", { "aria-live": "polite" });
    downloadButton.addEventListener("click", async () => {
      downloadButton.disabled = true;
      downloadResult.replaceChildren();
      try {
        const signed = await api(`/tenders/${id}/opening/record`);
        download(`opening-record-${tender.reference}.json`, `${JSON.stringify(signed, null, 2)}\n`, "application/json");
      } catch (error) {
        downloadResult.replaceChildren(notice(error.message, "error"));
      } finally {
        downloadButton.disabled = false;
      }
    });
    recordBox.replaceChildren(
      h("h3", { id: "hall-record" }, t("hall_record")),
      h(
        "dl",
        {},
        h("dt", {}, t("hall_recordDigest")),
        h("dd", {}, h("code", { class: "record-digest" }, d.sha256)),
        h("dt", {}, t("hall_recordKey")),
        h("dd", {}, h("code", {}, d.key_id)),
        h("dt", {}, t("hall_recordSignature")),
        h("dd", {}, h("code", {}, d.signature)),
      ),
      h("div", { class: "actions" }, downloadButton, user?.role === "bidder" ? confirmButton : null),
      downloadResult,
      confirmResult,
      h("h4", {}, t("hall_confirmations")),
      confirmationList,
    );
    drawConfirmations();
  }

  function drawConfirmations() {
    confirmationList.replaceChildren(
      ...(state.confirmations.length
        ? state.confirmations.map((event) =>
            h("li", {}, t("hall_confirmedBy", { bidder: event.data.bidder_name, at: when(event.at) })),
          )
        : [h("li", { class: "hint" }, t("hall_noConfirmations"))]),
    );
    drawRecordActions();
  }

  function drawRecordActions() {
    const mine = myListedBid();
    const confirmed = state.confirmations.some((event) => event.data.bidder_id === myOrganization);
    confirmButton.hidden = !(state.record && user?.role === "bidder" && mine && !confirmed);
    if (confirmed && user?.role === "bidder") confirmResult.replaceChildren(notice(t("hall_confirmedYou"), "ok"));
  }

  function drawObjection(event) {
    const d = event.data;
    const answerSlot = h("div", { class: "answer" }, h("p", { class: "hint" }, t("hall_awaitingAnswer")));
    let form = null;
    if (canAnswer) {
      const text = h("textarea", { name: "answer", required: true, maxlength: 2000, rows: 3 });
      const button = h("button", { type: "submit" }, t("hall_sendAnswer"));
      const result = h("div", { "aria-live": "polite" });
      form = h("form", { class: "answer-form" }, field(t("hall_yourAnswer"), text), button, result);
      form.addEventListener("submit", async (submitted) => {
        submitted.preventDefault();
        button.disabled = true;
        result.replaceChildren();
        try {
          const answered = await api(`/tenders/${id}/opening/objections/${d.objection_id}/answer`, {
            method: "POST",
            json: { text: text.value },
          });
          receive(answered);
        } catch (error) {
          result.replaceChildren(notice(error.message, "error"));
          button.disabled = false;
        }
      });
    }
    const item = h(
      "li",
      { class: "objection", "data-objection": d.objection_id },
      h("p", { class: "meta" }, t("hall_objectionBy", { bidder: d.bidder_name, at: when(event.at) })),
      h("blockquote", { class: "said" }, d.text),
      answerSlot,
      form,
    );
    objectionItems.set(d.objection_id, { item, answerSlot, form });
    objectionList.append(item);
    noObjections.hidden = true;
  }

  function drawAnswer(event) {
    const entry = objectionItems.get(event.data.objection_id);
    if (!entry) return;
    entry.form?.remove();
    entry.answerSlot.replaceChildren(
      h("p", { class: "meta" }, t("hall_answeredBy", { name: event.data.answered_by, at: when(event.at) })),
      h("blockquote", { class: "said answer-text" }, event.data.text),
    );
  }

  // --- applying events, once each and in order ---------------------------------------------
  const dirty = new Set();
  let announceQueue = [];
  let announceTimer = null;
  let replayUntil = 0; // events up to this seq were history when the page came: not announced

  function announce(text) {
    announceQueue.push(text);
    if (announceTimer) return;
    announceTimer = setTimeout(() => {
      announceTimer = null;
      const waiting = announceQueue;
      announceQueue = [];
      announcer.textContent =
        waiting.length === 1 ? waiting[0] : t("hall_newEvents", { n: waiting.length, text: waiting[waiting.length - 1] });
    }, ANNOUNCE_EVERY_MS);
  }

  function apply(event) {
    state.last = event.seq;
    const text = describeEvent(event, tender);
    timelineEmpty.hidden = true;
    timeline.prepend(
      h(
        "li",
        { "data-seq": event.seq, "data-type": event.type },
        h("span", { class: "seq" }, `#${event.seq}`),
        " ",
        h("time", { datetime: event.at, title: when(event.at) }, clockTime(Date.parse(event.at))),
        " ",
        h("span", { class: "what" }, text),
      ),
    );
    if (event.seq > replayUntil) announce(text);
    const d = event.data ?? {};
    switch (event.type) {
      case "opening.started":
        state.status = "opening";
        dirty.add("status").add("actions");
        break;
      case "log.sealed":
        state.sealedRoot = d.tree_head?.root_hash ?? null;
        break;
      case "bids.listed":
        state.listed = d.bids ?? [];
        dirty.add("bids").add("actions");
        break;
      case "bid.decrypted":
      case "bid.rejected":
      case "bid.withdrawn":
        state.outcomes.set(d.bid_id, event);
        dirty.add("bids").add("results");
        break;
      case "decryption.window_opened":
        state.windowOpened = event;
        dirty.add("bids");
        break;
      case "decryption.window_closed":
        state.windowClosed = event;
        dirty.add("bids");
        break;
      case "coefficient.drawn":
        state.coefficient = event;
        dirty.add("coefficient");
        break;
      case "scores.computed":
        state.scores = event;
        dirty.add("results");
        break;
      case "record.published":
        state.record = event;
        dirty.add("record").add("actions");
        break;
      case "opening.failed":
        state.failed = event;
        state.status = "failed";
        dirty.add("failed").add("status").add("actions");
        break;
      case "opening.completed":
        state.completed = true;
        state.status = d.status ?? "opened";
        dirty.add("status").add("actions");
        break;
      case "attendance.checked_in":
        state.attendance.push(event);
        dirty.add("attendance").add("actions");
        break;
      case "objection.raised":
        state.objections.set(d.objection_id, { raised: event, answered: null });
        drawObjection(event);
        break;
      case "objection.answered":
        if (state.objections.has(d.objection_id)) state.objections.get(d.objection_id).answered = event;
        drawAnswer(event);
        break;
      case "record.confirmed":
        state.confirmations.push(event);
        dirty.add("confirmations");
        break;
      default:
        break;
    }
  }

  function redraw() {
    if (dirty.has("status")) drawStatus();
    if (dirty.has("attendance")) drawAttendance();
    if (dirty.has("bids")) drawBids();
    if (dirty.has("coefficient")) {
      drawCoefficient().catch((error) => {
        coefficientBox.querySelector(".verdict")?.replaceChildren(notice(error.message, "error"));
      });
    }
    if (dirty.has("results")) drawResults();
    if (dirty.has("failed")) drawFailed();
    if (dirty.has("record")) drawRecord();
    if (dirty.has("confirmations")) drawConfirmations();
    if (dirty.has("actions")) drawActions();
    dirty.clear();
  }

  // Events from the socket and from the actions' answers wait here and are applied in order.
  const incoming = [];
  let draining = false;

  /** The events after the last one held, from the REST list, until `upTo` (or the end). */
  async function fillGap(upTo) {
    while (state.last < upTo) {
      const page = await api(`/tenders/${id}/opening/events?after=${state.last}&limit=${REST_PAGE}`);
      for (const event of page.events) {
        if (event.seq === state.last + 1) apply(event);
      }
      if (!page.has_more || !page.events.length) break;
    }
  }

  async function drain() {
    if (draining) return;
    draining = true;
    try {
      while (incoming.length) {
        const event = incoming.shift();
        if (event.seq <= state.last) continue; // seen already: a replay or our own action
        if (event.seq > state.last + 1) {
          try {
            await fillGap(event.seq - 1);
          } catch {
            // The socket resumes from the last seq held: nothing is lost, nothing doubled.
            incoming.length = 0;
            restart(t("hall_gapFailed"));
            return;
          }
          if (event.seq !== state.last + 1) continue; // the list went further, or cannot fill
        }
        apply(event);
      }
    } finally {
      draining = false;
      redraw();
    }
  }

  function receive(event) {
    if (!event || typeof event.seq !== "number") return;
    incoming.push(event);
    drain();
  }

  // --- the live room -----------------------------------------------------------------------
  let socket = null;
  let leaving = false;
  let retryTimer = null;
  let silenceTimer = null;
  let backoff = BACKOFF_FIRST_MS;
  let dropped = false; // a banner is up for a lost connection
  let welcomed = false;

  function setConnection(text) {
    connection.textContent = text;
  }

  function showBanner(text) {
    banner.replaceChildren(h("p", { class: "notice error banner", role: "alert" }, text));
  }

  function watchSilence() {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => restart(t("hall_lost")), SILENCE_MS);
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (leaving) return;
    setConnection(dropped ? t("hall_lost") : t("hall_connecting"));
    const opened = new WebSocket(liveUrl(id, state.last));
    socket = opened;
    opened.addEventListener("open", () => {
      if (opened !== socket) return; // given up on already
      // A first message at once: an unsigned watcher of a closed opening is refused now
      // (4401) instead of after the room's wait for a token.
      opened.send(JSON.stringify({ type: "ping" }));
      watchSilence();
    });
    opened.addEventListener("message", (message) => {
      if (opened !== socket) return;
      watchSilence();
      let body;
      try {
        body = JSON.parse(message.data);
      } catch {
        return;
      }
      if (typeof body.seq === "number") {
        receive(body);
        if (welcomed) setConnection(t("hall_live", { seq: Math.max(state.last, body.seq) }));
        return;
      }
      if (body.server_time) syncClock(body.server_time);
      if (body.type === "welcome") {
        if (!welcomed && replayUntil === 0) replayUntil = body.last_seq ?? 0;
        welcomed = true;
        backoff = BACKOFF_FIRST_MS;
        setConnection(body.last_seq ? t("hall_live", { seq: body.last_seq }) : t("hall_liveNone"));
        if (dropped) {
          dropped = false;
          banner.replaceChildren(h("p", { class: "notice ok", role: "status" }, t("hall_resumed", { seq: body.after })));
          setTimeout(() => {
            if (!dropped) banner.replaceChildren();
          }, 5000);
        }
      }
    });
    opened.addEventListener("close", (closing) => {
      if (opened !== socket) return;
      socket = null;
      clearTimeout(silenceTimer);
      welcomed = false;
      if (leaving) return;
      closed(closing.code);
    });
  }

  function stop(message) {
    setConnection(t("hall_closed"));
    banner.replaceChildren();
    stopped.replaceChildren(message);
  }

  function closed(code) {
    if (code === 4401) {
      const link = h("a", { href: `#/sign-in?next=${encodeURIComponent(`/tenders/${id}/hall`)}` }, t("hall_signInLink"));
      stop(h("p", { class: "notice error", role: "alert" }, t("hall_signInNeeded"), " ", link));
      return;
    }
    if (code === 4403) return stop(notice(t("hall_notParticipant"), "error"));
    if (code === 4404) return stop(notice(t("hall_noTender"), "error"));
    if (code === 4400) return stop(notice(t("hall_badRequest"), "error"));
    if (code === 4008) {
      // Fell behind: resume at once from the last seq held, without alarming anyone.
      connect();
      return;
    }
    retry();
  }

  function retry() {
    if (leaving || retryTimer) return;
    if (!dropped) {
      dropped = true;
      showBanner(t("hall_lost"));
    }
    if (!navigator.onLine) {
      setConnection(t("hall_offline"));
      return; // "online" reconnects
    }
    const wait = backoff * (0.8 + Math.random() * 0.4);
    backoff = Math.min(backoff * 2, BACKOFF_MOST_MS);
    setConnection(t("hall_retrying", { seconds: Math.ceil(wait / 1000) }));
    retryTimer = setTimeout(connect, wait);
  }

  /** Drop the connection we have (dead, or behind a gap we could not fill) and resume. */
  function restart(text) {
    const current = socket;
    socket = null;
    clearTimeout(silenceTimer);
    welcomed = false;
    if (current) closeSocket(current, 4000, "resuming");
    if (!dropped) {
      dropped = true;
      showBanner(text);
    }
    retry();
  }

  const online = () => {
    if (dropped && !socket) {
      backoff = BACKOFF_FIRST_MS;
      connect();
    }
  };
  const offline = () => {
    if (socket) restart(t("hall_lost"));
  };
  window.addEventListener("online", online);
  window.addEventListener("offline", offline);

  // --- the participants' actions -----------------------------------------------------------
  checkInButton.addEventListener("click", async () => {
    checkInButton.dataset.busy = "1";
    checkInButton.disabled = true;
    checkInResult.replaceChildren();
    try {
      receive(await api(`/tenders/${id}/opening/check-in`, { method: "POST" }));
    } catch (error) {
      checkInResult.replaceChildren(notice(error.message, "error"));
    } finally {
      delete checkInButton.dataset.busy;
      drawActions();
    }
  });

  objectionForm.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    objectionButton.disabled = true;
    objectionResult.replaceChildren();
    try {
      const raised = await api(`/tenders/${id}/opening/objections`, { method: "POST", json: { text: objectionText.value } });
      objectionText.value = "";
      objectionResult.replaceChildren(notice(t("hall_raised"), "ok"));
      receive(raised);
    } catch (error) {
      objectionResult.replaceChildren(notice(error.message, "error"));
    } finally {
      objectionButton.disabled = false;
    }
  });

  confirmButton.addEventListener("click", async () => {
    confirmButton.disabled = true;
    confirmResult.replaceChildren();
    try {
      receive(await api(`/tenders/${id}/opening/record/confirm`, { method: "POST" }));
    } catch (error) {
      const text = error instanceof ApiError && error.type === "already_confirmed" ? t("hall_confirmedYou") : error.message;
      confirmResult.replaceChildren(notice(text, error.type === "already_confirmed" ? "ok" : "error"));
    } finally {
      confirmButton.disabled = false;
    }
  });

  // --- start -------------------------------------------------------------------------------
  // The hall speaks through its own status region, a sentence at a time.
  drawStatus();
  drawAttendance();
  drawActions();
  drawClock();
  const clockTimer = setInterval(drawClock, 1000);
  connect();

  return () => {
    leaving = true;
    clearInterval(clockTimer);
    clearTimeout(retryTimer);
    clearTimeout(silenceTimer);
    clearTimeout(announceTimer);
    stopCountdown();
    window.removeEventListener("online", online);
    window.removeEventListener("offline", offline);
    if (socket) closeSocket(socket, 1000, "leaving");
    socket = null;
  };
}

export const routes = [[/^\/tenders\/([0-9a-f-]{36})\/hall$/, showHall]];
