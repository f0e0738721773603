// The scoring method of a tender: the officer's editor for its parameters, and the formula
// in words (docs/architecture.md, Scoring), in the reader's language, redrawn as the parameters change.
import { field, h } from "./dom.js";
import { addTexts, t } from "./i18n.js";

addTexts({
  "zh-CN": {
    off_scoring: "评标办法",
    off_method: "评分方法",
    off_method_lowest_price: "最低价法",
    off_method_comprehensive: "综合评分法（价格分）",
    off_method_benchmark: "基准价法",
    off_priceWeight: "价格分权重",
    off_priceWeightHint: "价格分满分，大于 0、不超过 100，例如 60",
    off_choices: "下浮系数 K 的备选值",
    off_choicesHint: "用逗号分隔，每个不小于 0 且小于 1，例如 0.02, 0.03",
    off_trimThreshold: "去掉最高最低价的最少有效投标数",
    off_trimThresholdHint: "有效投标达到此数时去掉一个最高价和一个最低价（3–1000，默认 5）",
    off_deductAbove: "高于基准价的扣分系数 E",
    off_deductBelow: "低于基准价的扣分系数 E",
    off_deductHint: "非负小数，每偏离基准价 1% 扣 E 分",
    off_formula: "计算公式",
    off_validBids: "有效投标：已解密、表单有效，且最低限价 ≤ 报价 ≤ 最高投标限价。",
    off_f_lowest: "按投标报价 P 由低到高排序；报价相同时，先递交者在前。",
    off_f_compScore: "价格分 = 最低有效报价 P_min ÷ 投标报价 P × {weight}（满分 {weight} 分，四舍五入保留两位小数）。",
    off_f_compRank: "按价格分由高到低排序；相同时先递交者在前。技术分另行评定后计入。",
    off_f_benchA: "基准价计算：A = 有效报价的算术平均值；有效投标不少于 {n} 家时，去掉一个最高价和一个最低价后再平均。",
    off_f_benchK: "下浮系数 K 从 {choices} 中抽取：sha256(系数种子‖密封根哈希) 作为整数对 {count} 取余，得到所选序号；系数种子在发布时已承诺（SHA-256 公开），根哈希为截标时签名的投标日志根。",
    off_f_benchKOne: "下浮系数 K = {k}（只有一个备选值）。",
    off_f_benchB: "基准价 B = A × (1 − K)。",
    off_f_benchScore: "得分 = max(0, 100 − |P − B| ÷ B × 100 × E)；报价高于基准价 B 时 E = {above}，不高于 B 时 E = {below}。",
    off_f_benchRank: "按得分由高到低排序；得分相同时报价低者在前，再相同时先递交者在前。",
    off_f_rounding: "金额和得分均四舍五入保留两位小数。",
    off_errWeight: "填写大于 0、不超过 100 的数，例如 60",
    off_errChoices: "填写至少一个系数，每个不小于 0 且小于 1，例如 0.02, 0.03",
    off_errChoicesRepeat: "系数不能重复：{value}",
    off_errTrim: "填写 3 到 1000 之间的整数",
    off_errDeduct: "填写非负小数，例如 0.5",
  },
  en: {
    off_scoring: "Scoring",
    off_method: "Scoring method",
    off_method_lowest_price: "Lowest price",
    off_method_comprehensive: "Comprehensive (price part)",
    off_method_benchmark: "Benchmark price (基准价法)",
    off_priceWeight: "Price weight",
    off_priceWeightHint: "Points for the price part, above 0 and at most 100, such as 60",
    off_choices: "Choices for the coefficient K",
    off_choicesHint: "Separated by commas, each at least 0 and below 1, such as 0.02, 0.03",
    off_trimThreshold: "Valid bids needed to drop the highest and lowest",
    off_trimThresholdHint: "From this many valid bids, the highest and the lowest price are left out (3–1000, usually 5)",
    off_deductAbove: "Deduction E above the benchmark",
    off_deductBelow: "Deduction E below the benchmark",
    off_deductHint: "A decimal of at least 0: points lost per 1 % away from the benchmark",
    off_formula: "Formula",
    off_validBids: "Valid bids: decrypted, with a valid form, and floor ≤ price ≤ ceiling.",
    off_f_lowest: "Bids are ranked by price P, lowest first; equal prices rank by the earlier bid.",
    off_f_compScore: "Price score = P_min / P × {weight}, where P_min is the lowest valid price (out of {weight} points).",
    off_f_compRank: "Ranked by price score, highest first, then the earlier bid. Technical scores are added later.",
    off_f_benchA: "A = mean of the valid prices, dropping the highest and the lowest when there are at least {n}.",
    off_f_benchK: "K drawn from {choices} by sha256(seed ‖ root): the hash as a number, modulo {count}, picks the choice; the seed is committed at publication (its SHA-256 is public) and root is the bid log's root hash sealed at the deadline.",
    off_f_benchKOne: "K = {k} (the only choice).",
    off_f_benchB: "B = A × (1 − K).",
    off_f_benchScore: "score = max(0, 100 − |P − B| / B × 100 × E), E = {above} above B, {below} below B.",
    off_f_benchRank: "Ranked by score, highest first, then the lower price, then the earlier bid.",
    off_f_rounding: "Amounts and scores are rounded to 0.01 (half up).",
    off_errWeight: "Write a number above 0 and at most 100, such as 60",
    off_errChoices: "Write at least one coefficient, each at least 0 and below 1, such as 0.02, 0.03",
    off_errChoicesRepeat: "Each coefficient only once: {value} is repeated",
    off_errTrim: "Write a whole number from 3 to 1000",
    off_errDeduct: "Write a decimal of at least 0, such as 0.5",
  },
});

export const METHODS = ["lowest_price", "comprehensive", "benchmark"];
const DEFAULTS = {
  price_weight: "60",
  coefficient_choices: ["0.02", "0.03"],
  trim_threshold: 5,
  deduct_above: "1",
  deduct_below: "0.5",
};
const DECIMAL = /^\d+(\.\d+)?$/;
const INTEGER = /^\d+$/;

/** The coefficients typed in one box: commas (either width), semicolons or spaces apart. */
export function splitChoices(text) {
  return String(text).split(/[\s,，、;；]+/).filter(Boolean);
}

function shown(value, symbol) {
  return DECIMAL.test(String(value ?? "").trim()) ? String(value).trim() : symbol;
}

/** The formula of a scoring method as sentences in the current language. */
export function formulaLines(scoring) {
  const lines = [];
  if (scoring.method === "lowest_price") {
    lines.push(t("off_f_lowest"));
  } else if (scoring.method === "comprehensive") {
    const weight = shown(scoring.price_weight, "w");
    lines.push(t("off_f_compScore", { weight }), t("off_f_compRank"));
  } else if (scoring.method === "benchmark") {
    const choices = (scoring.coefficient_choices ?? []).filter((c) => DECIMAL.test(c));
    const n = INTEGER.test(String(scoring.trim_threshold ?? "")) ? scoring.trim_threshold : 5;
    lines.push(t("off_f_benchA", { n }));
    lines.push(
      choices.length === 1
        ? t("off_f_benchKOne", { k: choices[0] })
        : t("off_f_benchK", { choices: `{${choices.join(", ") || "…"}}`, count: choices.length || "n" }),
    );
    lines.push(
      t("off_f_benchB"),
      t("off_f_benchScore", {
        above: shown(scoring.deduct_above ?? "1", "E₊"),
        below: shown(scoring.deduct_below ?? "0.5", "E₋"),
      }),
      t("off_f_benchRank"),
    );
  }
  lines.push(t("off_validBids"), t("off_f_rounding"));
  return lines;
}

function formulaList(scoring) {
  return h("ul", { class: "off-formula-lines" }, ...formulaLines(scoring).map((line) => h("li", {}, line)));
}

/** A stored tender's scoring, read-only: the method, its parameters and the formula. */
export function scoringSummary(scoring) {
  return h(
    "section",
    { class: "off-formula", "aria-label": t("off_formula") },
    h("p", {}, h("strong", {}, t(`off_method_${scoring.method}`))),
    formulaList(scoring),
  );
}

/**
 * The editor: a method to choose and its parameters, with the formula redrawn as they change.
 * Returns {element, value(), check(), controlFor(path)}; check() gives [control, message]
 * pairs for what the page can see is wrong.
 */
export function scoringEditor(initial = { method: "lowest_price" }, onChange = () => {}) {
  const start = { ...DEFAULTS, ...initial };
  const radios = METHODS.map((method) =>
    h("input", { type: "radio", name: "off-scoring-method", value: method, checked: start.method === method }),
  );
  const methodGroup = h(
    "fieldset",
    { class: "off-choices" },
    h("legend", {}, t("off_method")),
    ...radios.map((radio) =>
      h("label", { class: "off-choice" }, radio, ` ${t(`off_method_${radio.value}`)}`),
    ),
  );
  const weight = h("input", { type: "text", inputmode: "decimal", autocomplete: "off", value: start.price_weight });
  const choices = h("input", {
    type: "text",
    inputmode: "decimal",
    autocomplete: "off",
    value: (start.coefficient_choices ?? []).join(", "),
  });
  const trim = h("input", { type: "number", min: 3, max: 1000, step: 1, value: String(start.trim_threshold) });
  const above = h("input", { type: "text", inputmode: "decimal", autocomplete: "off", value: String(start.deduct_above) });
  const below = h("input", { type: "text", inputmode: "decimal", autocomplete: "off", value: String(start.deduct_below) });
  const comprehensive = h("div", { class: "off-params" }, field(t("off_priceWeight"), weight, t("off_priceWeightHint")));
  const benchmark = h(
    "div",
    { class: "off-params" },
    field(t("off_choices"), choices, t("off_choicesHint")),
    field(t("off_trimThreshold"), trim, t("off_trimThresholdHint")),
    field(t("off_deductAbove"), above, t("off_deductHint")),
    field(t("off_deductBelow"), below, t("off_deductHint")),
  );
  const formula = h("div", { class: "off-formula-body" });
  const formulaBox = h(
    "section",
    { class: "off-formula", "aria-labelledby": "off-formula-title" },
    h("h4", { id: "off-formula-title" }, t("off_formula")),
    // Polite, so a screen reader hears the new formula after typing stops, not each key.
    h("div", { "aria-live": "polite" }, formula),
  );

  const method = () => radios.find((radio) => radio.checked)?.value ?? "lowest_price";
  const value = () => {
    const chosen = method();
    if (chosen === "comprehensive") return { method: chosen, price_weight: weight.value.trim() };
    if (chosen === "benchmark") {
      const threshold = trim.value.trim();
      return {
        method: chosen,
        coefficient_choices: splitChoices(choices.value),
        trim_threshold: INTEGER.test(threshold) ? Number(threshold) : threshold,
        deduct_above: above.value.trim(),
        deduct_below: below.value.trim(),
      };
    }
    return { method: chosen };
  };
  const redraw = () => {
    comprehensive.hidden = method() !== "comprehensive";
    benchmark.hidden = method() !== "benchmark";
    formula.replaceChildren(formulaList(value()));
  };
  for (const control of [...radios, weight, choices, trim, above, below]) {
    control.addEventListener(control.type === "radio" ? "change" : "input", () => {
      redraw();
      onChange();
    });
  }
  redraw();

  const check = () => {
    const problems = [];
    const scoring = value();
    if (scoring.method === "comprehensive") {
      const w = scoring.price_weight;
      if (!DECIMAL.test(w) || Number(w) <= 0 || Number(w) > 100) problems.push([weight, t("off_errWeight")]);
    }
    if (scoring.method === "benchmark") {
      const list = scoring.coefficient_choices;
      if (!list.length || list.some((c) => !DECIMAL.test(c) || Number(c) >= 1) || list.length > 100) {
        problems.push([choices, t("off_errChoices")]);
      } else {
        const seen = new Set();
        const repeated = list.find((c) => {
          const key = String(Number(c));
          if (seen.has(key)) return true;
          seen.add(key);
          return false;
        });
        if (repeated !== undefined) problems.push([choices, t("off_errChoicesRepeat", { value: repeated })]);
      }
      const n = scoring.trim_threshold;
      if (typeof n !== "number" || n < 3 || n > 1000) problems.push([trim, t("off_errTrim")]);
      if (!DECIMAL.test(scoring.deduct_above)) problems.push([above, t("off_errDeduct")]);
      if (!DECIMAL.test(scoring.deduct_below)) problems.push([below, t("off_errDeduct")]);
    }
    return problems;
  };
  const controls = {
    method: radios[0],
    price_weight: weight,
    coefficient_choices: choices,
    trim_threshold: trim,
    deduct_above: above,
    deduct_below: below,
  };
  const element = h("div", { class: "off-scoring" }, methodGroup, comprehensive, benchmark, formulaBox);
  return { element, value, check, controlFor: (name) => controls[name] ?? null };
}
