// Charts drawn on <canvas> by hand: time series for the whole run's history (min/max-decimated to
// the plot's pixel columns, so hours of 1 s points cost the same to draw as a minute) and the latency
// histogram from the HDR histogram's bins on a log axis. No library: the UI must work offline and unbuilt.

const AXIS_COLOR = "#6b7280";
const GRID_COLOR = "#e5e7eb";
const FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const PAD = { top: 10, right: 14, bottom: 24 };
// A jump in time larger than this between two points is a pause (a stopped test), drawn as a gap.
const MAX_GAP_S = 10;

const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

/** "1.2k"-style labels for the y axis, plain numbers below 10,000. */
export function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return numberFormat.format(v);
}

/** 1-2-2.5-5 steps giving about `count` ticks from 0 to max. */
function niceTicks(max, count) {
  if (!(max > 0)) max = 1;
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  if (ticks[ticks.length - 1] < max) ticks.push(+(ticks[ticks.length - 1] + step).toPrecision(12));
  return ticks;
}

// A robust chart's scale covers the last RECENT_S seconds in full and the older points up to
// their ROBUST_QUANTILE: one early spike (a cold start, a pause) would otherwise flatten the rest
// of the run into the bottom pixels. Points above the scale are clipped at the top and counted.
const RECENT_S = 60;
const ROBUST_QUANTILE = 0.99;

/**
 * The top of the y scale for `columns` (arrays parallel to `times`, nulls skipped): their
 * maximum, or with `robust` the larger of the maximum over the last RECENT_S seconds and the
 * ROBUST_QUANTILE of all values.
 */
export function scaleMax(times, columns, robust = false) {
  const n = times.length;
  let max = 0;
  if (!robust) {
    for (const values of columns) for (let i = 0; i < n; i++) if (values[i] > max) max = values[i];
    return max;
  }
  const recentFrom = n ? times[n - 1] - RECENT_S : 0;
  const all = [];
  for (const values of columns) {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (v == null) continue;
      all.push(v);
      if (times[i] >= recentFrom && v > max) max = v;
    }
  }
  if (!all.length) return max;
  const sorted = Float64Array.from(all).sort();
  return Math.max(max, sorted[Math.min(sorted.length - 1, Math.floor(ROBUST_QUANTILE * sorted.length))]);
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

function pad2(n) {
  return n < 10 ? `0${n}` : `${n}`;
}

function clockLabel(t, withSeconds) {
  const d = new Date(t * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** A canvas sized to its box at the device's pixel ratio; returns null while the box is hidden. */
function prepareCanvas(canvas) {
  const rect = canvas.getBoundingClientRect();
  if (rect.width < 10 || rect.height < 10) return null;
  const dpr = window.devicePixelRatio || 1;
  const w = Math.round(rect.width * dpr);
  const h = Math.round(rect.height * dpr);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, rect.width, rect.height);
  ctx.font = FONT;
  return { ctx, width: rect.width, height: rect.height };
}

/** Common frame of a chart: legend row, canvas, hover line and tooltip. */
class ChartBase {
  constructor(container) {
    this.container = container;
    this.legend = document.createElement("div");
    this.legend.className = "chart-legend";
    this.box = document.createElement("div");
    this.box.className = "chart-box";
    this.canvas = document.createElement("canvas");
    this.hoverLine = document.createElement("div");
    this.hoverLine.className = "chart-hover-line";
    this.hoverLine.hidden = true;
    this.tooltip = document.createElement("div");
    this.tooltip.className = "chart-tooltip";
    this.tooltip.hidden = true;
    this.box.append(this.canvas, this.hoverLine, this.tooltip);
    container.append(this.legend, this.box);
    this.pending = false;
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => this.hideHover());
    new ResizeObserver(() => this.invalidate()).observe(this.box);
  }

  /** Schedules one redraw on the next frame, however many updates arrive before it. */
  invalidate() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  hideHover() {
    this.hoverLine.hidden = true;
    this.tooltip.hidden = true;
  }

  showTooltip(x, html) {
    this.hoverLine.style.left = `${x}px`;
    this.hoverLine.hidden = false;
    this.tooltip.innerHTML = html;
    this.tooltip.hidden = false;
    const boxWidth = this.box.clientWidth;
    const tipWidth = this.tooltip.offsetWidth;
    const left = x + 12 + tipWidth > boxWidth ? x - 12 - tipWidth : x + 12;
    this.tooltip.style.left = `${Math.max(0, left)}px`;
  }

  setLegend(items) {
    this.legend.replaceChildren(
      ...items.map(({ label, color, dashed }) => {
        const item = document.createElement("span");
        item.className = "legend-item";
        const swatch = document.createElement("i");
        swatch.style.borderColor = color;
        if (dashed) swatch.style.borderStyle = "dashed";
        item.append(swatch, label);
        return item;
      }),
    );
  }

  drawYAxis(ctx, plot, ticks, toY) {
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of ticks) {
      const y = Math.round(toY(v)) + 0.5;
      ctx.strokeStyle = GRID_COLOR;
      ctx.beginPath();
      ctx.moveTo(plot.left, y);
      ctx.lineTo(plot.right, y);
      ctx.stroke();
      ctx.fillStyle = AXIS_COLOR;
      ctx.fillText(compact(v), plot.left - 6, y);
    }
  }
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A line chart over time. `store` holds parallel arrays (`store.time` in epoch seconds plus one
 * array per series key) that the app appends to; the chart only reads them when it draws.
 */
export class TimeSeriesChart extends ChartBase {
  constructor(container, { store, series, unit = "", robust = false }) {
    super(container);
    this.store = store;
    this.series = series;
    this.unit = unit;
    this.robust = robust;
    this.setLegend(series);
    this.container.dataset.points = "0";
  }

  draw() {
    const { store, series } = this;
    const times = store.time;
    const n = times.length;
    this.container.dataset.points = String(n);
    const frame = prepareCanvas(this.canvas);
    if (!frame) return;
    const { ctx, width, height } = frame;

    let t0 = n ? times[0] : Date.now() / 1000 - 60;
    let t1 = n ? times[n - 1] : t0 + 60;
    // The first minute fills from the left instead of stretching two points across the chart.
    if (t1 - t0 < 60) t1 = t0 + 60;

    const columns = series.map((s) => store[s.key]);
    const yMax = scaleMax(times, columns, this.robust);
    const yTicks = niceTicks(yMax * 1.05, 4);
    const yTop = yTicks[yTicks.length - 1];
    const labelWidth = Math.max(...yTicks.map((v) => ctx.measureText(compact(v)).width));
    const plot = {
      left: Math.ceil(labelWidth) + 12,
      right: width - PAD.right,
      top: PAD.top,
      bottom: height - PAD.bottom,
    };
    const plotWidth = Math.max(1, plot.right - plot.left);
    const toX = (t) => plot.left + ((t - t0) / (t1 - t0)) * plotWidth;
    const toY = (v) => plot.bottom - (v / yTop) * (plot.bottom - plot.top);
    this.view = { t0, t1, plot, toX };

    this.drawYAxis(ctx, plot, yTicks, toY);
    this.drawTimeAxis(ctx, plot, t0, t1, toX);

    let drawn = 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(plot.left, plot.top - 2, plotWidth, plot.bottom - plot.top + 4);
    ctx.clip();
    ctx.lineWidth = 1.5;
    ctx.lineJoin = "round";
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.setLineDash(s.dashed ? [5, 3] : []);
      drawn += this.drawLine(ctx, times, store[s.key], toX, toY, plotWidth);
    }
    ctx.restore();
    this.container.dataset.drawn = String(drawn);
    this.container.dataset.yTop = String(yTop);

    let above = 0;
    let peak = 0;
    for (const values of columns) {
      for (let i = 0; i < n; i++) {
        if (values[i] > yTop) {
          above++;
          peak = Math.max(peak, values[i]);
        }
      }
    }
    this.container.dataset.clipped = String(above);
    if (above) {
      ctx.fillStyle = AXIS_COLOR;
      ctx.textAlign = "right";
      ctx.textBaseline = "top";
      ctx.fillText(`▲ ${above} off scale, up to ${numberFormat.format(peak)}${this.unit}`, plot.right - 4, plot.top + 2);
    }
  }

  drawTimeAxis(ctx, plot, t0, t1, toX) {
    const plotWidth = plot.right - plot.left;
    const span = t1 - t0;
    const step = TIME_STEPS.find((s) => (s / span) * plotWidth >= 80) || TIME_STEPS[TIME_STEPS.length - 1];
    ctx.strokeStyle = AXIS_COLOR;
    ctx.beginPath();
    ctx.moveTo(plot.left, Math.round(plot.bottom) + 0.5);
    ctx.lineTo(plot.right, Math.round(plot.bottom) + 0.5);
    ctx.stroke();
    ctx.fillStyle = AXIS_COLOR;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    // Ticks on multiples of the step in local time, so labels read 12:00, 12:05, ...
    const offset = new Date(t0 * 1000).getTimezoneOffset() * 60;
    for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) {
      const x = Math.round(toX(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, plot.bottom);
      ctx.lineTo(x, plot.bottom + 4);
      ctx.stroke();
      const label = clockLabel(t, step < 60);
      const half = ctx.measureText(label).width / 2;
      // A label that would be cut by the canvas edge is left out; its tick stays.
      if (x - half >= 0 && x + half <= plot.right + PAD.right) ctx.fillText(label, x, plot.bottom + 6);
    }
  }

  /**
   * Draws one series. With more points than pixel columns, each column keeps its first, min, max
   * and last point: peaks survive downsampling and the line stays continuous. Nulls and pauses
   * longer than MAX_GAP_S break the line. Returns the number of vertices drawn.
   */
  drawLine(ctx, times, values, toX, toY, plotWidth) {
    const n = times.length;
    const decimate = n > plotWidth * 2;
    let vertices = 0;
    let open = false;
    let prevT = -Infinity;
    ctx.beginPath();
    const lineTo = (x, v) => {
      const y = toY(v);
      if (open) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
      open = true;
      vertices++;
    };
    if (!decimate) {
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (v == null || times[i] - prevT > MAX_GAP_S) open = false;
        if (v != null) lineTo(toX(times[i]), v);
        prevT = times[i];
      }
    } else {
      let col = -1;
      let first = null;
      let min = null;
      let max = null;
      let last = null;
      const flush = () => {
        if (first === null) return;
        const x = col;
        // Emit in time order so the path doesn't zigzag backwards within a column.
        const pts = [first, min, max, last].sort((a, b) => a[0] - b[0]);
        let prevIndex = -1;
        for (const [index, v] of pts) {
          if (index !== prevIndex) lineTo(x, v);
          prevIndex = index;
        }
        first = min = max = last = null;
      };
      for (let i = 0; i < n; i++) {
        const v = values[i];
        const gap = v == null || times[i] - prevT > MAX_GAP_S;
        prevT = times[i];
        const x = Math.round(toX(times[i]));
        if (x !== col || gap) {
          flush();
          col = x;
        }
        if (gap) open = false;
        if (v == null) continue;
        const p = [i, v];
        if (first === null) first = min = max = p;
        if (v < min[1]) min = p;
        if (v > max[1]) max = p;
        last = p;
      }
      flush();
    }
    ctx.stroke();
    return vertices;
  }

  hover(event) {
    const times = this.store.time;
    if (!this.view || !times.length) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const { t0, t1, plot, toX } = this.view;
    if (x < plot.left || x > plot.right) return this.hideHover();
    const t = t0 + ((x - plot.left) / (plot.right - plot.left)) * (t1 - t0);
    // Nearest point by binary search: the store is sorted by time.
    let lo = 0;
    let hi = times.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && t - times[lo - 1] < times[lo] - t) lo--;
    const rows = this.series
      .map((s) => {
        const v = this.store[s.key][lo];
        const text = v == null ? "–" : `${numberFormat.format(v)}${this.unit}`;
        return `<div><i style="background:${s.color}"></i>${escapeHtml(s.label)}: <b>${text}</b></div>`;
      })
      .join("");
    this.showTooltip(toX(times[lo]), `<div class="tip-time">${clockLabel(times[lo], true)}</div>${rows}`);
  }
}

/** Locust's bucket width around a rounded response time (see stats.bucket_response_time). */
function bucketStep(ms) {
  if (ms < 100) return 1;
  if (ms < 1000) return 10;
  if (ms < 10000) return 100;
  return 1000;
}

// Smallest time the log axis shows (1 µs): a Locust bucket of 0 ms starts here.
const MIN_MS = 0.001;

/** 1-2-5 ticks of every decade between lo and hi (ms). */
function logTicks(lo, hi) {
  const ticks = [];
  for (let decade = 10 ** Math.floor(Math.log10(lo)); decade <= hi; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const v = +(m * decade).toPrecision(3);
      if (v >= lo && v <= hi) ticks.push(v);
    }
  }
  return ticks;
}

function msLabel(ms) {
  if (ms >= 1000) return `${+(ms / 1000).toPrecision(3)}s`;
  return `${+ms.toPrecision(3)}ms`;
}

const MARKERS = [
  { p: 0.5, label: "p50", color: "#16a34a" },
  { p: 0.95, label: "p95", color: "#d97706" },
  { p: 0.99, label: "p99", color: "#dc2626" },
];

/** The upper edge of the bin at which the ascending cumulative count reaches p of all requests. */
export function binPercentile(bins, total, p) {
  const target = total * p;
  let seen = 0;
  for (const [, high, count] of bins) {
    seen += count;
    if (seen >= target) return high;
  }
  return bins.length ? bins[bins.length - 1][1] : 0;
}

/** A histogram of request counts per response-time bin on a log axis, with p50/p95/p99 markers. */
export class HistogramChart extends ChartBase {
  constructor(container) {
    super(container);
    this.bins = [];
    this.total = 0;
    this.percentiles = {};
    this.setLegend([
      { label: "requests per bin", color: "#2563eb" },
      ...MARKERS.map((m) => ({ label: m.label, color: m.color, dashed: true })),
    ]);
    this.container.dataset.bars = "0";
  }

  /**
   * bins: [[low_ms, high_ms, count]] from the engine's HDR histogram (µs resolution); without
   * them, Locust's whole-ms buckets [[ms, count]] stand in. percentiles: {"0.5": ms, ...} exact.
   */
  setData(buckets, total, bins, percentiles) {
    if (bins && bins.length) {
      this.bins = bins.filter(([, , count]) => count > 0);
    } else {
      this.bins = buckets
        .filter(([, count]) => count > 0)
        .map(([ms, count]) => [Math.max(MIN_MS, ms - bucketStep(ms) / 2), ms + bucketStep(ms) / 2, count]);
    }
    this.bins.sort((a, b) => a[0] - b[0]);
    this.total = total ?? this.bins.reduce((sum, [, , c]) => sum + c, 0);
    this.percentiles = percentiles || {};
    this.invalidate();
  }

  draw() {
    const frame = prepareCanvas(this.canvas);
    const bins = this.bins;
    if (!frame) return;
    const { ctx, width, height } = frame;
    let maxCount = 0;
    for (const [, , c] of bins) maxCount = Math.max(maxCount, c);
    const yTicks = niceTicks(maxCount * 1.05, 4);
    const yTop = yTicks[yTicks.length - 1];
    const labelWidth = Math.max(...yTicks.map((v) => ctx.measureText(compact(v)).width));
    const plot = {
      left: Math.ceil(labelWidth) + 12,
      right: width - PAD.right,
      top: PAD.top + 14, // room for the marker labels
      bottom: height - PAD.bottom,
    };
    const toY = (v) => plot.bottom - (v / yTop) * (plot.bottom - plot.top);
    this.drawYAxis(ctx, plot, yTicks, toY);

    let lo = Math.log10(bins.length ? Math.max(MIN_MS, bins[0][0]) : 0.1);
    let hi = Math.log10(bins.length ? bins[bins.length - 1][1] : 100);
    // Keep a narrow distribution readable: at least one decade around it.
    if (hi - lo < 1) {
      const mid = (lo + hi) / 2;
      lo = mid - 0.5;
      hi = mid + 0.5;
    }
    const toX = (ms) => plot.left + ((Math.log10(Math.max(ms, MIN_MS)) - lo) / (hi - lo)) * (plot.right - plot.left);
    this.view = { plot, toX };

    // x axis: 1-2-5 ticks of each decade inside the range
    ctx.strokeStyle = AXIS_COLOR;
    ctx.beginPath();
    ctx.moveTo(plot.left, Math.round(plot.bottom) + 0.5);
    ctx.lineTo(plot.right, Math.round(plot.bottom) + 0.5);
    ctx.stroke();
    ctx.fillStyle = AXIS_COLOR;
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    let lastLabelEnd = -Infinity;
    for (const ms of logTicks(10 ** lo, 10 ** hi)) {
      const x = Math.round(toX(ms)) + 0.5;
      const text = msLabel(ms);
      const w = ctx.measureText(text).width;
      ctx.beginPath();
      ctx.moveTo(x, plot.bottom);
      ctx.lineTo(x, plot.bottom + 4);
      ctx.stroke();
      if (x - w / 2 > lastLabelEnd + 6 && x + w / 2 <= width) {
        ctx.fillText(text, x, plot.bottom + 6);
        lastLabelEnd = x + w / 2;
      }
    }

    // Bars span their bin's real range; at least one pixel wide so no bin disappears.
    ctx.fillStyle = "#2563eb";
    const bars = [];
    for (const [low, high, count] of bins) {
      const x0 = toX(low);
      const x1 = toX(high);
      const y = toY(count);
      const w = Math.max(1, x1 - x0 - 0.5);
      ctx.fillRect(x0, y, w, plot.bottom - y);
      bars.push([x0, x0 + w, low, high, count]);
    }
    this.bars = bars;
    this.container.dataset.bars = String(bars.length);

    if (!this.total) {
      ctx.fillStyle = AXIS_COLOR;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("No requests yet", (plot.left + plot.right) / 2, (plot.top + plot.bottom) / 2);
      return;
    }
    ctx.setLineDash([4, 3]);
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    // Percentiles at the same spot share one line and one label ("p95/p99 4 ms").
    const groups = [];
    for (const m of MARKERS) {
      const exact = this.percentiles[String(m.p)];
      const ms = exact ?? binPercentile(bins, this.total, m.p);
      const last = groups[groups.length - 1];
      if (last && Math.abs(toX(last.ms) - toX(ms)) < 1) {
        last.label += `/${m.label}`;
        last.color = m.color;
      } else groups.push({ ms, label: m.label, color: m.color });
    }
    const rowRight = [-Infinity, -Infinity];
    for (const g of groups) {
      const x = Math.round(toX(g.ms)) + 0.5;
      ctx.strokeStyle = g.color;
      ctx.beginPath();
      ctx.moveTo(x, plot.top - 2);
      ctx.lineTo(x, plot.bottom);
      ctx.stroke();
      ctx.fillStyle = g.color;
      const text = `${g.label} ${msLabel(g.ms)}`;
      const textWidth = ctx.measureText(text).width;
      // Labels close together move right, or down a row, instead of overprinting; none runs off the canvas.
      const place = (row) => Math.min(Math.max(x - 4, rowRight[row] + 6), width - textWidth - 2);
      const row = place(0) >= rowRight[0] + 6 ? 0 : 1;
      const lx = place(row);
      ctx.fillText(text, lx, plot.top - 3 + row * 13);
      rowRight[row] = lx + textWidth;
    }
    ctx.setLineDash([]);
  }

  hover(event) {
    if (!this.bars || !this.bars.length) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    // The bar under the cursor, else the nearest one.
    let best = null;
    let bestDist = Infinity;
    for (const bar of this.bars) {
      const d = x < bar[0] ? bar[0] - x : x > bar[1] ? x - bar[1] : 0;
      if (d < bestDist) {
        bestDist = d;
        best = bar;
      }
    }
    if (!best || bestDist > 20) return this.hideHover();
    let below = 0;
    for (const [low, , count] of this.bins) if (low <= best[2]) below += count;
    const share = this.total ? ((100 * below) / this.total).toFixed(2) : "0";
    this.showTooltip(
      (best[0] + best[1]) / 2,
      `<div class="tip-time">${msLabel(best[2])} – ${msLabel(best[3])}</div>` +
        `<div>${numberFormat.format(best[4])} requests</div><div class="muted">${share}% at or below</div>`,
    );
  }
}
