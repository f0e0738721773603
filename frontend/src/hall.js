// The opening hall (开标大厅): the opening drawn as it happens. hall/live.js brings the events
// in seq order and hall/state.js folds them into what they have told; this page draws that
// state, redrawing the parts whose state changed. The participants act here too: check-in,
// objections and their answers, confirming the record.
import "./hall.css";
import { bytesToHex } from "@noble/hashes/utils.js";
import { ApiError, api, serverNow } from "./api.js";
import { hexToBytes } from "./bytes.js";
import { priceChart } from "./chart.js";
import { download, field, h, money, notice, put, when } from "./dom.js";
import { currentLanguage, has, t } from "./i18n.js";
import { countdown, loadTender, tenderFacts } from "./public.js";
import { followOpening } from "./hall/live.js";
import {
  checkDraw,
  checkedIn,
  confirmedBy,
  decryptedCount,
  finished,
  initialState,
  listedBidOf,
  lowestPrice,
  validPrices,
} from "./hall/state.js";

// Screen readers hear new events at most this often, as one sentence.
const ANNOUNCE_EVERY_MS = 4000;

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

async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/** A reason code in words; a code this page does not know yet is shown as it is. */
function reason(code) {
  return has(`hall_reason_${code}`) ? t(`hall_reason_${code}`) : String(code);
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

  // What the events have told: `state` is the latest, `drawn` the one the page last drew.
  let state = initialState(tender.status);
  let drawn = state;
  const myListedBid = () => listedBidOf(state, myOrganization);

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
    const isCheckedIn = !!user && checkedIn(state, user.id);
    if (participant) {
      checkInButton.hidden = isCheckedIn;
      const early = user.role === "bidder" && !passed;
      // The API takes check-ins while the tender is published or opening, never after.
      const cancelled = state.status === "cancelled";
      const closed = finished(state) || !["published", "opening"].includes(state.status);
      checkInButton.disabled = early || closed || checkInButton.dataset.busy === "1";
      if (isCheckedIn) {
        checkInResult.replaceChildren(notice(t("hall_checkedIn"), "ok"));
        checkInNote.textContent = "";
      } else if (closed) {
        checkInNote.textContent = t(cancelled ? "hall_checkInCancelled" : "hall_checkInClosed");
      } else {
        checkInNote.textContent = early ? t("hall_checkInAfterDeadline") : "";
      }
    }
    // A bidder whose bid is being opened objects while the opening runs.
    const mine = myListedBid();
    objectionForm.hidden = !(user?.role === "bidder" && mine && state.status === "opening" && !finished(state));
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
    put(
      windowLine,
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
    const seed = hexToBytes(d.seed);
    const root = hexToBytes(d.root_hash);
    const committed = bytesToHex(await sha256(seed)) === tender.coefficient_commitment;
    const joined = new Uint8Array(seed.length + root.length);
    joined.set(seed);
    joined.set(root, seed.length);
    const choices = d.choices ?? [];
    const { index, ok: drawOk } = checkDraw(d, bytesToHex(await sha256(joined)));
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
    const valid = validPrices(state);
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
      const lowest = lowestPrice(scores);
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
    const valid = decryptedCount(state);
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
    const confirmed = confirmedBy(state, myOrganization);
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
          live.receive(answered);
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

  function drawObjections(was, now) {
    for (const [objectionId, objection] of now) {
      const before = was.get(objectionId);
      if (!before) drawObjection(objection.raised);
      if (objection.answered && objection.answered !== before?.answered) drawAnswer(objection.answered);
    }
  }

  /** Redraw the parts whose state is no longer the one drawn. */
  function redraw() {
    const was = drawn;
    drawn = state;
    const changed = (name) => was[name] !== state[name];
    if (changed("status")) drawStatus();
    if (changed("attendance")) drawAttendance();
    if (["listed", "outcomes", "windowOpened", "windowClosed"].some(changed)) drawBids();
    if (changed("coefficient")) {
      drawCoefficient().catch((error) => {
        coefficientBox.querySelector(".verdict")?.replaceChildren(notice(error.message, "error"));
      });
    }
    if (changed("outcomes") || changed("scores")) drawResults();
    if (changed("failed")) drawFailed();
    if (changed("record")) drawRecord();
    if (changed("confirmations")) drawConfirmations();
    if (changed("objections")) drawObjections(was.objections, state.objections);
    if (["status", "listed", "record", "failed", "completed", "attendance"].some(changed)) drawActions();
  }

  // --- the timeline, and what screen readers hear ------------------------------------------
  let announceQueue = [];
  let announceTimer = null;

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

  function applied(event, next, replayed) {
    state = next;
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
    if (!replayed) announce(text);
  }

  // --- the connection ----------------------------------------------------------------------
  function refused(key) {
    const text = t(key);
    if (key === "hall_signInNeeded") {
      const link = h("a", { href: `#/sign-in?next=${encodeURIComponent(`/tenders/${id}/hall`)}` }, t("hall_signInLink"));
      stopped.replaceChildren(h("p", { class: "notice error", role: "alert" }, text, " ", link));
    } else {
      stopped.replaceChildren(notice(text, "error"));
    }
  }

  const connectionView = {
    applied,
    settled: redraw,
    status: (key, values) => {
      connection.textContent = t(key, values);
    },
    lost: (key) => banner.replaceChildren(h("p", { class: "notice error banner", role: "alert" }, t(key))),
    resumed: (after) => banner.replaceChildren(h("p", { class: "notice ok", role: "status" }, t("hall_resumed", { seq: after }))),
    calm: () => banner.replaceChildren(),
    refused,
  };

  // --- the participants' actions -----------------------------------------------------------
  checkInButton.addEventListener("click", async () => {
    checkInButton.dataset.busy = "1";
    checkInButton.disabled = true;
    checkInResult.replaceChildren();
    try {
      live.receive(await api(`/tenders/${id}/opening/check-in`, { method: "POST" }));
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
      live.receive(raised);
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
      live.receive(await api(`/tenders/${id}/opening/record/confirm`, { method: "POST" }));
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
  const live = followOpening(id, state, connectionView);

  return () => {
    live.leave();
    clearInterval(clockTimer);
    clearTimeout(announceTimer);
    stopCountdown();
  };
}

export const routes = [[/^\/tenders\/([0-9a-f-]{36})\/hall$/, showHall]];
