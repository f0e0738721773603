// The bid form of a tender: the officer adds, removes and orders its fields, and sees the
// form that bidders will fill in. `price` is always there, a required decimal.
import { field, h } from "./dom.js";
import { t } from "./i18n.js";

export const TYPES = ["decimal", "integer", "text", "boolean"];
const MAX_FIELDS = 50;
const NAME = /^[a-z][a-z0-9_]{0,39}$/;
const NUMBER = /^-?\d+(\.\d+)?$/;
const PRICE = "price";
let rowNumber = 0;

function bounded(type) {
  return type === "decimal" || type === "integer";
}

/** The field's allowed range in words, or null. */
function rangeText(spec) {
  if (!bounded(spec.type)) return null;
  const min = spec.min ?? "";
  const max = spec.max ?? "";
  if (min !== "" && max !== "") return t("off_between", { min, max });
  if (min !== "") return t("off_atLeast", { min });
  if (max !== "") return t("off_atMost", { max });
  return null;
}

/** A control like the one a bidder gets for the field; disabled, this is only a preview. */
function previewControl(spec) {
  if (spec.type === "boolean") return h("input", { type: "checkbox" });
  if (spec.type === "text") return h("input", { type: "text" });
  return h("input", { type: "text", inputmode: spec.type === "integer" ? "numeric" : "decimal" });
}

/** The bid form as bidders will see it, drawn from field specs. */
export function bidFormPreview(fields) {
  return h(
    "fieldset",
    { class: "off-preview", disabled: true },
    h("legend", {}, t("off_preview")),
    ...fields.map((spec) => {
      const label = `${spec.label || spec.name || "…"}${spec.required ? ` ${t("off_required")}` : ""}`;
      const control = previewControl(spec);
      const hint = rangeText(spec);
      return spec.type === "boolean"
        ? h("label", { class: "off-choice" }, control, ` ${label}`)
        : field(label, control, hint);
    }),
  );
}

/** A stored bid form, read-only, as a table. */
export function bidFieldsTable(fields) {
  const heads = ["off_fieldName", "off_fieldLabel", "off_fieldType", "off_fieldRequired", "off_fieldMin", "off_fieldMax"];
  return h(
    "div",
    { class: "off-scroll" },
    h(
      "table",
      { class: "off-fields-table" },
      h(
        "thead",
        {},
        h("tr", {}, ...heads.map((key) => h("th", { scope: "col", class: key.endsWith("Min") || key.endsWith("Max") ? "number" : null }, t(key)))),
      ),
      h(
        "tbody",
        {},
        ...fields.map((spec) =>
          h(
            "tr",
            {},
            h("td", {}, h("code", {}, spec.name)),
            h("td", {}, spec.label),
            h("td", {}, t(`off_type_${spec.type}`)),
            h("td", {}, spec.required ? "✓" : "—"),
            h("td", { class: "number" }, spec.min ?? "—"),
            h("td", { class: "number" }, spec.max ?? "—"),
          ),
        ),
      ),
    ),
  );
}

/**
 * The editor: one fieldset per field, buttons to add, remove and move them, and a live
 * preview. Returns {element, value(), check(), controlFor(path)}; paths are the API's,
 * such as "3.name" for the fourth field's name.
 */
export function bidFieldsEditor(initial = [], onChange = () => {}) {
  const list = h("div", { class: "off-field-list" });
  const status = h("p", { class: "off-visually-hidden", role: "status" });
  const preview = h("div", {});
  const addButton = h("button", { type: "button", class: "secondary" }, t("off_addField"));
  let rows = [];

  const changed = () => {
    renumber();
    preview.replaceChildren(bidFormPreview(rows.map((row) => row.spec())));
    onChange();
  };

  function makeRow(spec) {
    const id = `off-bf-${++rowNumber}`;
    const isPrice = spec.name === PRICE;
    const name = h("input", {
      type: "text",
      id: `${id}-name`,
      value: spec.name ?? "",
      maxlength: 40,
      autocomplete: "off",
      spellcheck: "false",
      autocapitalize: "off",
      readonly: isPrice,
    });
    const label = h("input", { type: "text", id: `${id}-label`, value: spec.label ?? "", maxlength: 200 });
    const type = h(
      "select",
      { id: `${id}-type`, disabled: isPrice },
      ...TYPES.map((kind) => h("option", { value: kind, selected: (spec.type ?? "decimal") === kind }, t(`off_type_${kind}`))),
    );
    const required = h("input", { type: "checkbox", id: `${id}-required`, checked: spec.required ?? true, disabled: isPrice });
    const min = h("input", { type: "text", id: `${id}-min`, inputmode: "decimal", autocomplete: "off", value: spec.min ?? "" });
    const max = h("input", { type: "text", id: `${id}-max`, inputmode: "decimal", autocomplete: "off", value: spec.max ?? "" });
    const bounds = h(
      "div",
      { class: "off-bounds" },
      field(t("off_fieldMin"), min, t("off_boundHint")),
      field(t("off_fieldMax"), max, t("off_boundHint")),
    );
    const legend = h("legend", {});
    const up = h("button", { type: "button", class: "secondary" }, t("off_moveUp"));
    const down = h("button", { type: "button", class: "secondary" }, t("off_moveDown"));
    const remove = isPrice ? null : h("button", { type: "button", class: "secondary off-danger-text" }, t("off_remove"));
    const element = h(
      "fieldset",
      { class: "off-bid-field", id },
      legend,
      h(
        "div",
        { class: "off-row-grid" },
        field(t("off_fieldName"), name, isPrice ? t("off_priceFixed") : t("off_fieldNameHint")),
        field(t("off_fieldLabel"), label),
        field(t("off_fieldType"), type),
        h("div", { class: "field inline off-required" }, required, h("label", { for: required.id }, t("off_fieldRequired"))),
      ),
      bounds,
      h("div", { class: "actions off-row-actions" }, up, down, remove),
    );
    const row = {
      element,
      legend,
      up,
      down,
      remove,
      isPrice,
      controls: { name, label, type, required, min, max },
      displayName: () => name.value.trim() || t("off_newField"),
      spec: () => {
        const kind = isPrice ? "decimal" : type.value;
        const result = {
          name: isPrice ? PRICE : name.value.trim(),
          label: label.value.trim(),
          type: kind,
          required: isPrice ? true : required.checked,
        };
        if (bounded(kind)) {
          if (min.value.trim() !== "") result.min = min.value.trim();
          if (max.value.trim() !== "") result.max = max.value.trim();
        }
        return result;
      },
    };
    const showBounds = () => {
      bounds.hidden = !bounded(isPrice ? "decimal" : type.value);
    };
    showBounds();
    type.addEventListener("change", () => {
      showBounds();
      changed();
    });
    for (const control of [name, label, min, max]) control.addEventListener("input", changed);
    required.addEventListener("change", changed);
    up.addEventListener("click", () => move(row, -1));
    down.addEventListener("click", () => move(row, +1));
    remove?.addEventListener("click", () => drop(row));
    return row;
  }

  function renumber() {
    rows.forEach((row, index) => {
      const shownName = row.displayName();
      row.legend.textContent = t("off_fieldNumber", { n: index + 1, name: shownName });
      row.up.disabled = index === 0;
      row.down.disabled = index === rows.length - 1;
      row.up.setAttribute("aria-label", t("off_moveUpField", { name: shownName }));
      row.down.setAttribute("aria-label", t("off_moveDownField", { name: shownName }));
      row.remove?.setAttribute("aria-label", t("off_removeField", { name: shownName }));
    });
    addButton.disabled = rows.length >= MAX_FIELDS;
  }

  function layout() {
    list.replaceChildren(...rows.map((row) => row.element));
    changed();
  }

  function move(row, step) {
    const from = rows.indexOf(row);
    const to = from + step;
    if (to < 0 || to >= rows.length) return;
    rows.splice(from, 1);
    rows.splice(to, 0, row);
    layout();
    // Keep the keyboard where it was; at either end that button is now disabled.
    const button = step < 0 ? row.up : row.down;
    (button.disabled ? (step < 0 ? row.down : row.up) : button).focus();
    status.textContent = t("off_moved", { name: row.displayName(), n: to + 1 });
  }

  function drop(row) {
    const index = rows.indexOf(row);
    rows.splice(index, 1);
    layout();
    const next = rows[Math.min(index, rows.length - 1)];
    (next?.remove ?? next?.controls.label ?? addButton).focus();
    status.textContent = t("off_removed", { name: row.displayName() });
  }

  addButton.addEventListener("click", () => {
    if (rows.length >= MAX_FIELDS) return;
    const row = makeRow({ name: "", label: "", type: "decimal", required: true });
    rows.push(row);
    layout();
    row.controls.name.focus();
    status.textContent = t("off_added", { n: rows.length });
  });

  const start = initial.some((spec) => spec.name === PRICE)
    ? initial
    : [{ name: PRICE, label: t("off_priceLabel"), type: "decimal", required: true }, ...initial];
  rows = start.map(makeRow);
  layout();

  const value = () => rows.map((row) => row.spec());
  const check = () => {
    const problems = [];
    const seen = new Set();
    if (rows.length > MAX_FIELDS) problems.push([addButton, t("off_errTooMany", { n: MAX_FIELDS })]);
    for (const row of rows) {
      const spec = row.spec();
      const { name, min, max } = row.controls;
      if (!NAME.test(spec.name)) problems.push([name, t("off_errName")]);
      else if (seen.has(spec.name)) problems.push([name, t("off_errNameTaken", { name: spec.name })]);
      seen.add(spec.name);
      if (!bounded(spec.type)) continue;
      const whole = spec.type === "integer";
      const bad = (text) => !NUMBER.test(text) ? t("off_errBound") : whole && text.includes(".") ? t("off_errWhole") : null;
      const minProblem = spec.min === undefined ? null : bad(spec.min);
      const maxProblem = spec.max === undefined ? null : bad(spec.max);
      if (minProblem) problems.push([min, minProblem]);
      if (maxProblem) problems.push([max, maxProblem]);
      if (!minProblem && !maxProblem && spec.min !== undefined && spec.max !== undefined && Number(spec.max) < Number(spec.min)) {
        problems.push([max, t("off_errMinMax")]);
      }
    }
    return problems;
  };
  const controlFor = (path) => {
    if (!path) return rows[0]?.controls.name ?? addButton;
    const [index, key] = String(path).split(".");
    const row = rows[Number(index)];
    return row ? (row.controls[key] ?? row.controls.name) : null;
  };
  const element = h(
    "div",
    { class: "off-builder" },
    h("p", { class: "off-muted" }, t("off_bidFormHint")),
    list,
    h("div", { class: "actions" }, addButton),
    status,
    preview,
  );
  return { element, value, check, controlFor };
}
