// A price chart drawn as SVG, without a library: one row per bid, a dot at its price, and
// vertical lines for the reference prices (ceiling, floor, benchmark or lowest price). The
// SVG is an image with a spoken summary; the same numbers follow as a table.
import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

// Geometry in viewBox units, drawn for the width the chart will have on screen (the SVG
// scales to its box, so on a phone the text stays as large as on a desk).
const RIGHT = 16;
const TOP = 44; // room for the reference lines' labels
const ROW = 30;
const AXIS = 34;
// Below this width the prices are not written beside the dots (the table has them).
const PRICES_FROM = 440;

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function shortened(text, characters) {
  return text.length > characters ? `${text.slice(0, characters - 1)}…` : text;
}

/** The scale's ends: every value in view with a little room, never an empty range. */
function domain(values) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  const room = high > low ? (high - low) * 0.08 : Math.max(Math.abs(high) * 0.02, 1);
  low -= room;
  high += room;
  return [low, high];
}

/**
 * A chart of prices: {title, description, points: [{label, value}], lines: [{label, value,
 * kind}], format(value) -> text, headings: {name, value}, tableCaption, width}. Values are
 * decimal strings; they are drawn as numbers but shown as given. Returns a <figure>.
 */
export function priceChart({ title, description, points, lines = [], format = String, headings, tableCaption, width = 520 }) {
  const WIDTH = Math.max(280, Math.round(width));
  const LABELS = Math.round(Math.min(170, Math.max(90, WIDTH * 0.27))); // the bidders' names
  const nameCharacters = Math.floor(LABELS / 8.5);
  const withPrices = WIDTH >= PRICES_FROM;
  const shown = lines.filter((line) => line.value !== null && line.value !== undefined);
  const values = [...points, ...shown].map((item) => Number(item.value)).filter(Number.isFinite);
  const [low, high] = values.length ? domain(values) : [0, 1];
  const plotLeft = LABELS;
  const plotRight = WIDTH - RIGHT;
  const x = (value) => plotLeft + ((Number(value) - low) / (high - low)) * (plotRight - plotLeft);
  const height = TOP + Math.max(points.length, 1) * ROW + AXIS;
  const bottom = TOP + Math.max(points.length, 1) * ROW;

  const parts = [svg("title", {}, title), svg("desc", {}, description)];
  // The plot's frame and the axis with its ends and middle.
  parts.push(svg("line", { class: "axis", x1: plotLeft, y1: bottom, x2: plotRight, y2: bottom }));
  for (const [fraction, anchor] of [[0, "start"], [0.5, "middle"], [1, "end"]]) {
    const at = plotLeft + fraction * (plotRight - plotLeft);
    parts.push(
      svg("line", { class: "tick", x1: at, y1: bottom, x2: at, y2: bottom + 5 }),
      svg("text", { class: "tick-label", x: at, y: bottom + 20, "text-anchor": anchor }, format(low + fraction * (high - low))),
    );
  }
  // Reference lines, their labels staggered on two levels so that close ones stay legible.
  shown
    .slice()
    .sort((a, b) => Number(a.value) - Number(b.value))
    .forEach((line, index) => {
      const at = x(line.value);
      const level = index % 2 === 0 ? 16 : 34;
      const anchor = at < plotLeft + 60 ? "start" : at > plotRight - 60 ? "end" : "middle";
      parts.push(
        svg(
          "g",
          { class: `reference ${line.kind}` },
          svg("title", {}, `${line.label}: ${format(line.value)}`),
          svg("line", { x1: at, y1: level + 4, x2: at, y2: bottom }),
          svg("text", { x: at, y: level, "text-anchor": anchor }, line.label),
        ),
      );
    });
  // One row per bid: its name, a guide from the plot's edge and a dot at its price.
  points.forEach((point, index) => {
    const y = TOP + index * ROW + ROW / 2;
    const at = x(point.value);
    const labelRight = at > plotRight - 110;
    parts.push(
      svg(
        "g",
        { class: "bid" },
        svg("title", {}, `${point.label}: ${format(point.value)}`),
        svg("text", { class: "name", x: plotLeft - 8, y: y + 4, "text-anchor": "end" }, shortened(point.label, nameCharacters)),
        svg("line", { class: "guide", x1: plotLeft, y1: y, x2: at, y2: y }),
        svg("circle", { class: "dot", cx: at, cy: y, r: 6 }),
        withPrices
          ? svg(
              "text",
              { class: "price", x: labelRight ? at - 10 : at + 10, y: y + 4, "text-anchor": labelRight ? "end" : "start" },
              format(point.value),
            )
          : null,
      ),
    );
  });

  const picture = svg(
    "svg",
    { viewBox: `0 0 ${WIDTH} ${height}`, role: "img", "aria-label": `${title}. ${description}`, class: "chart" },
    ...parts,
  );
  const table = h(
    "div",
    { class: "scroll" },
    h(
      "table",
      { class: "chart-data" },
      h("caption", {}, tableCaption),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, headings.name), h("th", { scope: "col", class: "number" }, headings.value))),
      h(
        "tbody",
        {},
        ...points.map((point) =>
          h("tr", {}, h("th", { scope: "row" }, point.label), h("td", { class: "number" }, format(point.value))),
        ),
        ...shown.map((line) =>
          h("tr", { class: "reference-row" }, h("th", { scope: "row" }, line.label), h("td", { class: "number" }, format(line.value))),
        ),
      ),
    ),
  );
  return h("figure", { class: "price-chart" }, picture, h("figcaption", {}, title), h("details", {}, h("summary", {}, tableCaption), table));
}
