// The opening's events as they happen, over the live room's WebSocket. Every event is folded in
// once, in seq order: a reconnection resumes after the last seq held, what is at or below it is
// ignored, and a gap is filled from the REST list before going on. What the page should say
// about the connection comes out as text keys; the page puts them in words.
import { api, syncClock } from "../api.js";
import { fold, placement } from "./state.js";

const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MOST_MS = 15_000;
// Ticks come every 5 seconds: this long without any message means the connection is dead.
const SILENCE_MS = 20_000;
const REST_PAGE = 1000;
// The room's refusals, for good: the page says why and stops.
const REFUSALS = new Map([
  [4401, "hall_signInNeeded"],
  [4403, "hall_notParticipant"],
  [4404, "hall_noTender"],
  [4400, "hall_badRequest"],
]);
// The room dropped a watcher that fell behind: resume at once, without alarming anyone.
const FELL_BEHIND = 4008;

/** The live room's address for this page, resuming after `after`. */
function liveUrl(id, after) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}/api/v1/tenders/${id}/opening/live?after=${after}`;
}

/** Close a socket, also one still connecting (closing that would log an error). */
function closeSocket(socket, code, why) {
  if (socket.readyState === WebSocket.CONNECTING) {
    socket.addEventListener("open", () => socket.close(code, why));
  } else {
    socket.close(code, why);
  }
}

/**
 * Follow a tender's opening from `initial` (see state.js). The view is told:
 * applied(event, state, replayed) after each event folded in (replayed: it was history when
 * the page came); settled(state) after each batch; status(key, values) for the connection
 * line; lost(key) when the connection is lost; resumed(after) and calm() as it comes back;
 * refused(key) when the room refuses the page for good.
 * Returns receive(event), for the events the participants' actions answer with, and leave().
 */
export function followOpening(tenderId, initial, view) {
  let state = initial;
  let replayUntil = 0; // events up to this seq were history when the page came

  // Events from the socket and from the actions' answers wait here and are folded in order.
  const incoming = [];
  let draining = false;

  function apply(event) {
    state = fold(state, event);
    view.applied(event, state, event.seq <= replayUntil);
  }

  /** The events after the last one held, from the REST list, until `upTo` (or the end). */
  async function fillGap(upTo) {
    while (state.last < upTo) {
      const page = await api(`/tenders/${tenderId}/opening/events?after=${state.last}&limit=${REST_PAGE}`);
      for (const event of page.events) {
        if (placement(state, event) === "next") apply(event);
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
        const where = placement(state, event);
        if (where === "seen") continue;
        if (where === "gap") {
          try {
            await fillGap(event.seq - 1);
          } catch {
            // The socket resumes from the last seq held: nothing is lost, nothing doubled.
            incoming.length = 0;
            restart("hall_gapFailed");
            return;
          }
          if (placement(state, event) !== "next") continue; // the list went further, or cannot fill
        }
        apply(event);
      }
    } finally {
      draining = false;
      view.settled(state);
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
  let dropped = false; // the view was told the connection is lost
  let welcomed = false;

  function watchSilence() {
    clearTimeout(silenceTimer);
    silenceTimer = setTimeout(() => restart("hall_lost"), SILENCE_MS);
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (leaving) return;
    view.status(dropped ? "hall_lost" : "hall_connecting");
    const opened = new WebSocket(liveUrl(tenderId, state.last));
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
        if (welcomed) view.status("hall_live", { seq: Math.max(state.last, body.seq) });
        return;
      }
      if (body.server_time) syncClock(body.server_time);
      if (body.type === "welcome") {
        if (!welcomed && replayUntil === 0) replayUntil = body.last_seq ?? 0;
        welcomed = true;
        backoff = BACKOFF_FIRST_MS;
        if (body.last_seq) view.status("hall_live", { seq: body.last_seq });
        else view.status("hall_liveNone");
        if (dropped) {
          dropped = false;
          view.resumed(body.after);
          setTimeout(() => {
            if (!dropped) view.calm();
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

  function closed(code) {
    if (REFUSALS.has(code)) {
      view.status("hall_closed");
      view.calm();
      view.refused(REFUSALS.get(code));
    } else if (code === FELL_BEHIND) {
      connect();
    } else {
      retry();
    }
  }

  function retry() {
    if (leaving || retryTimer) return;
    if (!dropped) {
      dropped = true;
      view.lost("hall_lost");
    }
    if (!navigator.onLine) {
      view.status("hall_offline");
      return; // "online" reconnects
    }
    const wait = backoff * (0.8 + Math.random() * 0.4);
    backoff = Math.min(backoff * 2, BACKOFF_MOST_MS);
    view.status("hall_retrying", { seconds: Math.ceil(wait / 1000) });
    retryTimer = setTimeout(connect, wait);
  }

  /** Drop the connection we have (dead, or behind a gap we could not fill) and resume. */
  function restart(key) {
    const current = socket;
    socket = null;
    clearTimeout(silenceTimer);
    welcomed = false;
    if (current) closeSocket(current, 4000, "resuming");
    if (!dropped) {
      dropped = true;
      view.lost(key);
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
    if (socket) restart("hall_lost");
  };
  window.addEventListener("online", online);
  window.addEventListener("offline", offline);
  connect();

  return {
    receive,
    leave() {
      leaving = true;
      clearTimeout(retryTimer);
      clearTimeout(silenceTimer);
      window.removeEventListener("online", online);
      window.removeEventListener("offline", offline);
      if (socket) closeSocket(socket, 1000, "leaving");
      socket = null;
    },
  };
}
