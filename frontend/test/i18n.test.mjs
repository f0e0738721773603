// Both languages have a text for every key, with the same {placeholders}.
import assert from "node:assert/strict";
import { test } from "node:test";
import en from "../src/i18n/en.js";
import zhCN from "../src/i18n/zh-CN.js";

const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort();

test("every key in one language is in the other", () => {
  assert.deepEqual(Object.keys(zhCN).filter((key) => !(key in en)), []);
  assert.deepEqual(Object.keys(en).filter((key) => !(key in zhCN)), []);
});

test("every text is a non-empty string", () => {
  for (const texts of [en, zhCN]) {
    for (const [key, text] of Object.entries(texts)) assert.ok(typeof text === "string" && text.length > 0, key);
  }
});

test("a key's text takes the same placeholders in both languages", () => {
  const differing = Object.keys(en).filter(
    (key) => key in zhCN && placeholders(en[key]).join() !== placeholders(zhCN[key]).join(),
  );
  assert.deepEqual(differing, []);
});
