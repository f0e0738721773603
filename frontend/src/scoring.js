// The scoring method of a tender: the officer's editor for its parameters, and the formula
// in words (docs/architecture.md, Scoring), in the reader's language, redrawn as the parameters change.
import { field, h } from "./dom.js";
import { t } from "./i18n.js";

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
