// What an opening's events have told, folded one at a time in seq order: pure functions of
// the state and an event, with no page and no network. Each fold returns a new state and
// leaves the old one as it was, so the page redraws what is no longer the same object.

/** The state before any event, for a tender in `status`. */
export function initialState(status) {
  return {
    last: 0, // the seq of the last event folded in
    status,
    listed: [], // bids.listed: the bids, in their order
    outcomes: new Map(), // bid_id -> its bid.decrypted, bid.rejected or bid.withdrawn event
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
}

/**
 * Where an event stands against the state: "seen" (at or below the last seq held: a replay, or
 * the answer to our own action), "next", or "gap" (events before it are missing).
 */
export function placement(state, event) {
  if (event.seq <= state.last) return "seen";
  return event.seq === state.last + 1 ? "next" : "gap";
}

/** The state with the event folded in; one that is not the next in seq order changes nothing. */
export function fold(state, event) {
  if (placement(state, event) !== "next") return state;
  const next = { ...state, last: event.seq };
  const d = event.data ?? {};
  switch (event.type) {
    case "opening.started":
      next.status = "opening";
      break;
    case "log.sealed":
      next.sealedRoot = d.tree_head?.root_hash ?? null;
      break;
    case "bids.listed":
      next.listed = d.bids ?? [];
      break;
    case "bid.decrypted":
    case "bid.rejected":
    case "bid.withdrawn":
      next.outcomes = new Map(state.outcomes).set(d.bid_id, event);
      break;
    case "decryption.window_opened":
      next.windowOpened = event;
      break;
    case "decryption.window_closed":
      next.windowClosed = event;
      break;
    case "coefficient.drawn":
      next.coefficient = event;
      break;
    case "scores.computed":
      next.scores = event;
      break;
    case "record.published":
      next.record = event;
      break;
    case "opening.failed":
      next.failed = event;
      next.status = "failed";
      break;
    case "opening.completed":
      next.completed = true;
      next.status = d.status ?? "opened";
      break;
    case "attendance.checked_in":
      next.attendance = [...state.attendance, event];
      break;
    case "objection.raised":
      next.objections = new Map(state.objections).set(d.objection_id, { raised: event, answered: null });
      break;
    case "objection.answered": {
      const objection = state.objections.get(d.objection_id);
      if (objection) next.objections = new Map(state.objections).set(d.objection_id, { ...objection, answered: event });
      break;
    }
    case "record.confirmed":
      next.confirmations = [...state.confirmations, event];
      break;
    default:
      break;
  }
  return next;
}

/** Whether the opening has ended: its record published, failed, or completed. */
export function finished(state) {
  return state.record !== null || state.failed !== null || state.completed;
}

/** The listed bid of an organization, or null. */
export function listedBidOf(state, organizationId) {
  return state.listed.find((bid) => bid.bidder_id === organizationId) ?? null;
}

/** Whether a user has checked in. */
export function checkedIn(state, userId) {
  return state.attendance.some((event) => event.data.user_id === userId);
}

/** Whether an organization has confirmed the record. */
export function confirmedBy(state, organizationId) {
  return state.confirmations.some((event) => event.data.bidder_id === organizationId);
}

/** The decrypted bids' prices, in the listed order, as chart points {label, value}. */
export function validPrices(state) {
  return state.listed
    .map((bid) => state.outcomes.get(bid.bid_id))
    .filter((outcome) => outcome?.type === "bid.decrypted")
    .map((outcome) => ({ label: outcome.data.bidder_name, value: outcome.data.price }));
}

/** How many bids were decrypted (the valid ones a failed opening counts). */
export function decryptedCount(state) {
  return [...state.outcomes.values()].filter((outcome) => outcome.type === "bid.decrypted").length;
}

/**
 * The draw's index and whether the coefficient drawn is the one it names, from the digest of
 * seed ‖ root (hex): the index is that digest, as a number, modulo the count of choices.
 */
export function checkDraw(drawn, digestHex) {
  const choices = drawn.choices ?? [];
  const index = choices.length ? Number(BigInt(`0x${digestHex}`) % BigInt(choices.length)) : -1;
  return { index, ok: index === drawn.index && choices[index] === drawn.coefficient };
}

/** The lowest price of a scores.computed event's data: its working's, else the ranking's. */
export function lowestPrice(scores) {
  return scores.working?.lowest_price ?? scores.ranking.map((place) => place.price).sort((a, b) => Number(a) - Number(b))[0];
}
