// Sizes for a reader and hex to bytes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatSize, hexToBytes } from "../src/bytes.js";

test("sizes are in bytes below 1 KB, then in KB, MB and GB of 1024", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(1023), "1023 B");
  assert.equal(formatSize(1024), "1.0 KB");
  assert.equal(formatSize(1536), "1.5 KB");
  assert.equal(formatSize(1024 * 1024 - 1), "1024.0 KB");
  assert.equal(formatSize(1024 * 1024), "1.0 MB");
  assert.equal(formatSize(Math.round(4.5 * 1024 * 1024)), "4.5 MB");
  assert.equal(formatSize(1024 ** 3), "1.00 GB");
  assert.equal(formatSize(1.25 * 1024 ** 3), "1.25 GB");
});

test("hex becomes the bytes it spells", () => {
  assert.deepEqual(hexToBytes(""), new Uint8Array());
  assert.deepEqual(hexToBytes("00ff10a5"), Uint8Array.of(0, 255, 16, 165));
});

test("anything but lowercase hex pairs is refused", () => {
  for (const bad of ["0", "abc", "0g", "00FF", " 00", "00\n", null, 12]) {
    assert.throws(() => hexToBytes(bad), TypeError, String(bad));
  }
});
