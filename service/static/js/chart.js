// A small SVG line chart: one line per series (trial), axes with round ticks, a legend.
// Each line is a <path class="series" data-series=NAME data-points=N> so it can be inspected.

import { number } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const WIDTH = 640;
const HEIGHT = 300;
const PAD = { left: 62, right: 16, top: 14, bottom: 44 };

function svg(tag, attrs = {}, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

/** About `count` round tick values (1, 2 or 5 times a power of ten) covering [low, high]. */
export function ticks(low, high, count = 5) {
  const span = high - low || Math.abs(high) || 1;
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const values = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) {
    values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  }
  return values;
}

export class LineChart {
  constructor(container, { xLabel, yLabel }) {
    this.xLabel = xLabel;
    this.yLabel = yLabel;
    this.series = new Map();
    this.svg = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img" });
    this.empty = document.createElement("p");
    this.empty.className = "muted chart-empty";
    this.empty.textContent = "No points yet.";
    container.append(this.svg, this.empty);
    this.pending = false;
    this.draw();
  }

  /** Add one point to a series; redraws at most once per animation frame. */
  add(name, x, y) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    if (!this.series.has(name)) this.series.set(name, []);
    this.series.get(name).push([x, y]);
    this.schedule();
  }

  clear() {
    this.series.clear();
    this.schedule();
  }

  setLabels({ xLabel = this.xLabel, yLabel = this.yLabel }) {
    Object.assign(this, { xLabel, yLabel });
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  bounds() {
    const points = [...this.series.values()].flat();
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    let [yLow, yHigh] = [Math.min(...ys), Math.max(...ys)];
    if (yLow === yHigh) [yLow, yHigh] = [yLow - 1, yHigh + 1];
    const margin = (yHigh - yLow) * 0.05;
    return { xLow: Math.min(...xs), xHigh: Math.max(...xs, Math.min(...xs) + 1),
      yLow: yLow - margin, yHigh: yHigh + margin };
  }

  draw() {
    const count = [...this.series.values()].reduce((n, s) => n + s.length, 0);
    this.empty.hidden = count > 0;
    this.svg.replaceChildren();
    if (!count) return;
    const b = this.bounds();
    const plotW = WIDTH - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const sx = (x) => PAD.left + ((x - b.xLow) / (b.xHigh - b.xLow)) * plotW;
    const sy = (y) => PAD.top + (1 - (y - b.yLow) / (b.yHigh - b.yLow)) * plotH;
    this.drawAxes(b, sx, sy, plotW, plotH);
    let index = 0;
    for (const [name, points] of this.series) {
      const color = COLORS[index++ % COLORS.length];
      const d = points.map(([x, y], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`);
      const path = svg("path", { class: "series", d: d.join(""), stroke: color,
        "data-series": name, "data-points": points.length });
      path.append(svg("title", {}, name));
      this.svg.append(path);
      if (points.length === 1) {
        const [x, y] = points[0];
        this.svg.append(svg("circle", { cx: sx(x), cy: sy(y), r: 3, fill: color }));
      }
    }
    this.drawLegend();
  }

  drawAxes(b, sx, sy, plotW, plotH) {
    const grid = svg("g", { class: "grid" });
    for (const y of ticks(b.yLow, b.yHigh)) {
      grid.append(svg("line", { x1: PAD.left, x2: PAD.left + plotW, y1: sy(y), y2: sy(y) }));
      grid.append(svg("text", { x: PAD.left - 6, y: sy(y) + 4, "text-anchor": "end" }, number(y)));
    }
    for (const x of ticks(b.xLow, b.xHigh)) {
      grid.append(svg("line", { x1: sx(x), x2: sx(x), y1: PAD.top, y2: PAD.top + plotH }));
      grid.append(svg("text", { x: sx(x), y: PAD.top + plotH + 16, "text-anchor": "middle" },
        number(x)));
    }
    grid.append(svg("text", { x: PAD.left + plotW / 2, y: HEIGHT - 6, "text-anchor": "middle",
      class: "label" }, this.xLabel));
    grid.append(svg("text", { x: 12, y: PAD.top + plotH / 2, "text-anchor": "middle",
      class: "label", transform: `rotate(-90 12 ${PAD.top + plotH / 2})` }, this.yLabel));
    this.svg.append(grid);
  }

  drawLegend() {
    if (this.series.size < 2) return;
    const legend = svg("g", { class: "legend" });
    [...this.series.keys()].forEach((name, i) => {
      const y = PAD.top + 10 + i * 14;
      legend.append(svg("rect", { x: WIDTH - PAD.right - 120, y: y - 8, width: 10, height: 10,
        fill: COLORS[i % COLORS.length] }));
      legend.append(svg("text", { x: WIDTH - PAD.right - 106, y: y + 1 }, name));
    });
    this.svg.append(legend);
  }
}
