// A line chart as inline SVG: no library, nothing fetched.
import { h, svg } from "/ui/common.js";

const W = 1200, H = 280, LEFT = 64, RIGHT = 28, TOP = 10, BOTTOM = 32;

function extent(values) {
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) { lo -= Math.abs(lo) * 0.05 || 1; hi += Math.abs(hi) * 0.05 || 1; }
  return [lo, hi];
}

export function number(v) {
  const abs = Math.abs(v);
  if (abs >= 1e6) return `${(v / 1e6).toFixed(abs >= 1e7 ? 0 : 1)}M`;
  if (abs >= 1e4) return `${(v / 1e3).toFixed(abs >= 1e5 ? 0 : 1)}k`;
  if (abs >= 100) return v.toFixed(0);
  return Number(v.toPrecision(3)).toString();
}

// series: [{name, points: [[x, y], ...]}]; points whose y is not a number are left out.
export function lineChart(series, { xLabel = "", yLabel = "" } = {}) {
  const drawn = series
    .map((s) => ({ ...s, points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)) }))
    .filter((s) => s.points.length);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": yLabel, class: "chart-svg" });
  if (!drawn.length) return h("p", { class: "muted", text: "no points yet" });
  const all = drawn.flatMap((s) => s.points);
  const [x0, x1] = extent(all.map(([x]) => x));
  const [y0, y1] = extent(all.map(([, y]) => y));
  const px = (x) => LEFT + ((x - x0) / (x1 - x0)) * (W - LEFT - RIGHT);
  const py = (y) => TOP + (1 - (y - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
  for (let i = 0; i <= 4; i += 1) {
    const y = y0 + ((y1 - y0) * i) / 4;
    root.append(svg("line", { class: "grid-line", x1: LEFT, x2: W - RIGHT, y1: py(y), y2: py(y) }));
    const label = svg("text", { class: "tick", x: LEFT - 6, y: py(y) + 4, "text-anchor": "end" });
    label.textContent = number(y);
    root.append(label);
  }
  const whole = all.every(([x]) => Number.isInteger(x));
  for (const x of [x0, whole ? Math.round((x0 + x1) / 2) : (x0 + x1) / 2, x1]) {
    const label = svg("text", { class: "tick", x: px(x), y: H - BOTTOM + 16, "text-anchor": "middle" });
    label.textContent = number(x);
    root.append(label);
  }
  const axis = svg("text", { class: "axis-label", x: W - RIGHT, y: H - 4, "text-anchor": "end" });
  axis.textContent = xLabel;
  root.append(axis);
  drawn.forEach((s, i) => {
    const points = s.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    root.append(svg("polyline", { class: `line line-${i}`, points, "data-series": s.name }));
    if (s.points.length <= 60) {
      for (const [x, y] of s.points) {
        root.append(svg("circle", { class: `dot line-${i}`, cx: px(x).toFixed(1), cy: py(y).toFixed(1), r: 2.5 }));
      }
    }
  });
  const legend = h("div", { class: "legend" },
    drawn.map((s, i) => h("span", { class: `key line-${i}` }, h("i"), ` ${s.name} (${s.points.length})`)));
  return h("figure", { class: "chart-figure" }, root, legend);
}
