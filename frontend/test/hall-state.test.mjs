// The opening hall's state: events folded once each, in seq order, into what the page draws.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import {
  checkDraw,
  checkedIn,
  confirmedBy,
  decryptedCount,
  finished,
  fold,
  initialState,
  listedBidOf,
  lowestPrice,
  placement,
  validPrices,
} from "../src/hall/state.js";

const ACME = "org-acme";
const BETA = "org-beta";
const GAMMA = "org-gamma";

const listed = [
  { bid_id: "bid-a", bidder_id: ACME, bidder_name: "Acme", sha256: "aa".repeat(32), received_at: "2026-01-01T09:00:00Z" },
  { bid_id: "bid-b", bidder_id: BETA, bidder_name: "Beta", sha256: "bb".repeat(32), received_at: "2026-01-01T09:05:00Z" },
  { bid_id: "bid-c", bidder_id: GAMMA, bidder_name: "Gamma", sha256: "cc".repeat(32), received_at: "2026-01-01T09:10:00Z" },
];

/** Events numbered from 1 in the order given, as the room sends them. */
function numbered(...events) {
  return events.map(([type, data], index) => ({ seq: index + 1, type, at: `2026-01-02T10:00:0${index % 10}Z`, data }));
}

const foldAll = (events, state = initialState("published")) => events.reduce(fold, state);

const opening = numbered(
  ["opening.started", { bid_deadline: "2026-01-02T10:00:00Z" }],
  ["log.sealed", { tree_head: { tree_size: 3, root_hash: "ab".repeat(32) } }],
  ["attendance.checked_in", { user_id: "user-1", display_name: "Officer", role: "officer" }],
  ["bids.listed", { count: 3, bids: listed }],
  ["bid.decrypted", { bid_id: "bid-b", bidder_name: "Beta", price: "950000.00", via: "backup" }],
  ["bid.rejected", { bid_id: "bid-a", bidder_name: "Acme", reason: "above_ceiling" }],
  ["bid.decrypted", { bid_id: "bid-c", bidder_name: "Gamma", price: "900000.00" }],
  [
    "scores.computed",
    {
      method: "lowest_price",
      ranking: [
        { rank: 1, bid_id: "bid-c", bidder_id: GAMMA, bidder_name: "Gamma", price: "900000.00", score: null },
        { rank: 2, bid_id: "bid-b", bidder_id: BETA, bidder_name: "Beta", price: "950000.00", score: null },
      ],
      working: {},
    },
  ],
  ["objection.raised", { objection_id: "obj-1", bidder_name: "Acme", text: "Our price was within the ceiling" }],
  ["objection.answered", { objection_id: "obj-1", answered_by: "Officer", text: "The ceiling is 920000.00" }],
  ["record.published", { sha256: "cd".repeat(32), key_id: "k1", signature: "sig" }],
  ["opening.completed", { status: "opened" }],
  ["record.confirmed", { bidder_id: GAMMA, bidder_name: "Gamma" }],
);

describe("folding events in order", () => {
  test("a whole opening leaves the outcomes, ranking, record and status it told", () => {
    const state = foldAll(opening);
    assert.equal(state.last, 13);
    assert.equal(state.status, "opened");
    assert.equal(state.sealedRoot, "ab".repeat(32));
    assert.deepEqual(state.listed, listed);
    assert.deepEqual(
      [...state.outcomes].map(([bidId, event]) => [bidId, event.type]),
      [
        ["bid-b", "bid.decrypted"],
        ["bid-a", "bid.rejected"],
        ["bid-c", "bid.decrypted"],
      ],
    );
    assert.deepEqual(
      state.scores.data.ranking.map((place) => [place.rank, place.bidder_name]),
      [
        [1, "Gamma"],
        [2, "Beta"],
      ],
    );
    assert.equal(state.record.data.sha256, "cd".repeat(32));
    assert.equal(state.completed, true);
    assert.ok(finished(state));
    assert.ok(confirmedBy(state, GAMMA));
    assert.ok(!confirmedBy(state, BETA));
    assert.ok(checkedIn(state, "user-1"));
    assert.ok(!checkedIn(state, "user-2"));
    const objection = state.objections.get("obj-1");
    assert.equal(objection.raised.seq, 9);
    assert.equal(objection.answered.data.text, "The ceiling is 920000.00");
  });

  test("the valid prices are the decrypted bids', in the listed order, and counted", () => {
    const state = foldAll(opening);
    assert.deepEqual(validPrices(state), [
      { label: "Beta", value: "950000.00" },
      { label: "Gamma", value: "900000.00" },
    ]);
    assert.equal(decryptedCount(state), 2);
  });

  test("a later outcome of the same bid replaces the earlier one", () => {
    const state = foldAll(
      numbered(
        ["bids.listed", { count: 3, bids: listed }],
        ["bid.decrypted", { bid_id: "bid-a", bidder_name: "Acme", price: "1000.00" }],
        ["bid.rejected", { bid_id: "bid-a", bidder_name: "Acme", reason: "above_ceiling" }],
      ),
    );
    assert.equal(state.outcomes.get("bid-a").type, "bid.rejected");
    assert.deepEqual(validPrices(state), []);
  });

  test("a failed opening is finished, with its reason, and its status is failed", () => {
    const state = foldAll(
      numbered(
        ["opening.started", {}],
        ["bids.listed", { count: 1, bids: listed.slice(0, 1) }],
        ["opening.failed", { reason: "too_few_bids", detail: "1 bids were handed in" }],
      ),
      initialState("published"),
    );
    assert.equal(state.status, "failed");
    assert.equal(state.failed.data.reason, "too_few_bids");
    assert.ok(finished(state));
  });

  test("an opening that has only started is not finished", () => {
    const state = foldAll(opening.slice(0, 4));
    assert.equal(state.status, "opening");
    assert.ok(!finished(state));
    assert.equal(listedBidOf(state, BETA).bid_id, "bid-b");
    assert.equal(listedBidOf(state, "org-elsewhere"), null);
  });

  test("an answer to an objection not raised changes nothing but the last seq", () => {
    const state = foldAll(numbered(["objection.answered", { objection_id: "obj-9", text: "?" }]));
    assert.equal(state.last, 1);
    assert.equal(state.objections.size, 0);
  });

  test("an event of a type the page does not know is still counted", () => {
    const before = initialState("opening");
    const state = fold(before, { seq: 1, type: "something.new", data: {} });
    assert.equal(state.last, 1);
    assert.deepEqual({ ...state, last: 0 }, before);
  });

  test("folding leaves the earlier state as it was", () => {
    const before = foldAll(opening.slice(0, 4));
    const snapshot = structuredClone(before);
    const after = fold(before, opening[4]);
    assert.deepEqual(before, snapshot);
    assert.notEqual(after.outcomes, before.outcomes);
    assert.equal(after.listed, before.listed); // unchanged parts stay the same objects
  });
});

describe("duplicates and gaps", () => {
  test("an event at or below the last seq is seen, and folding it changes nothing", () => {
    const state = foldAll(opening.slice(0, 5));
    for (const replayed of [opening[0], opening[4], { ...opening[4], data: { bid_id: "bid-b", price: "1.00" } }]) {
      assert.equal(placement(state, replayed), "seen");
      assert.equal(fold(state, replayed), state);
    }
    assert.equal(state.outcomes.get("bid-b").data.price, "950000.00");
  });

  test("the same events twice over fold to what they fold to once", () => {
    assert.deepEqual(foldAll([...opening, ...opening]), foldAll(opening));
  });

  test("an event past the next seq is a gap, and is not folded until the gap is filled", () => {
    const state = foldAll(opening.slice(0, 3));
    const ahead = opening[5];
    assert.equal(placement(state, ahead), "gap");
    assert.equal(fold(state, ahead), state);
    const filled = foldAll(opening.slice(3, 5), state);
    assert.equal(placement(filled, ahead), "next");
    assert.equal(fold(filled, ahead).outcomes.get("bid-a").type, "bid.rejected");
  });

  test("the next event is the one right after the last seq held", () => {
    assert.equal(placement(initialState("opening"), { seq: 1 }), "next");
    assert.equal(placement(initialState("opening"), { seq: 2 }), "gap");
    assert.equal(placement(initialState("opening"), { seq: 0 }), "seen");
  });
});

describe("the coefficient draw and the reference prices", () => {
  // The platform's draw_coefficient gives index 2 (K = 0.03) for this seed and root.
  const seed = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
  const root = Buffer.from("6465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f80818283", "hex");
  const digest = createHash("sha256").update(Buffer.concat([seed, root])).digest("hex");
  const choices = ["0.01", "0.02", "0.03", "0.04", "0.05", "0.06", "0.07"];

  test("the index is the digest of seed ‖ root modulo the count of choices", () => {
    assert.deepEqual(checkDraw({ choices, index: 2, coefficient: "0.03" }, digest), { index: 2, ok: true });
  });

  test("a draw that names another index or coefficient is refused", () => {
    assert.equal(checkDraw({ choices, index: 3, coefficient: "0.04" }, digest).ok, false);
    assert.equal(checkDraw({ choices, index: 2, coefficient: "0.05" }, digest).ok, false);
  });

  test("a draw without choices has no index", () => {
    assert.deepEqual(checkDraw({ choices: [], index: 0, coefficient: "0.03" }, digest), { index: -1, ok: false });
  });

  test("the lowest price is the working's, else the lowest in the ranking by value", () => {
    assert.equal(lowestPrice({ working: { lowest_price: "800.00" }, ranking: [] }), "800.00");
    const ranking = [{ price: "1000.00" }, { price: "950.50" }, { price: "9999.00" }];
    assert.equal(lowestPrice({ working: {}, ranking }), "950.50");
    assert.equal(lowestPrice({ ranking }), "950.50");
  });
});
