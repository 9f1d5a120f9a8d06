// The live statistics table. Its <tr> elements live across refreshes: a refresh adds or removes
// only the rows whose count changed and rewrites only the cells whose text changed, so a table of
// 500+ rows costs a few milliseconds per poll and the browser re-lays-out little.

const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const intFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

// One formatter per number of decimals that `milliseconds` uses (0 to 3).
const msFormats = [0, 1, 2, 3].map(
  (digits) => new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }),
);

const text = (v) => (v == null ? "" : String(v));
const integer = (v) => (v == null ? "" : intFormat.format(v));
const decimal = (v) => (v == null ? "" : numberFormat.format(v));

/**
 * A time in ms to the HDR histograms' precision, three significant digits, and never finer than
 * a microsecond nor coarser than a millisecond: 0.031, 0.457, 1.25, 12.5, 125, 1,250. Every time
 * column uses it, so a sub-millisecond median never sits next to a p95 of "0".
 */
export function milliseconds(v) {
  if (v == null) return "";
  if (!(v > 0)) return "0";
  return msFormats[Math.min(3, Math.max(0, 2 - Math.floor(Math.log10(v))))].format(v);
}

// The row's precise time (the HDR histogram's, which horde adds) or Locust's own.
const precise = (key) => (row) => row[`precise_${key}`] ?? row[key];

// Locust 2.47's columns and titles, in its order; the times from the engine's HDR histograms.
export const COLUMNS = [
  { key: "method", title: "Type", format: text },
  { key: "name", title: "Name", format: text, className: "name" },
  { key: "num_requests", title: "# Requests", format: integer, numeric: true },
  { key: "num_failures", title: "# Fails", format: integer, numeric: true },
  { key: "median_response_time", title: "Median (ms)", format: milliseconds, numeric: true, value: precise },
  {
    key: "response_time_percentile_0.95",
    title: "95%ile (ms)",
    format: milliseconds,
    numeric: true,
    value: precise,
  },
  {
    key: "response_time_percentile_0.99",
    title: "99%ile (ms)",
    format: milliseconds,
    numeric: true,
    value: precise,
  },
  { key: "avg_response_time", title: "Average (ms)", format: milliseconds, numeric: true },
  { key: "min_response_time", title: "Min (ms)", format: milliseconds, numeric: true, value: precise },
  { key: "max_response_time", title: "Max (ms)", format: milliseconds, numeric: true, value: precise },
  { key: "avg_content_length", title: "Average size (bytes)", format: decimal, numeric: true },
  { key: "current_rps", title: "Current RPS", format: decimal, numeric: true },
  { key: "current_fail_per_sec", title: "Current Failures/s", format: decimal, numeric: true },
];

const FAILS = COLUMNS.findIndex((c) => c.key === "num_failures");
// Each column's reader of a row: its `value` for the key, else the row's field itself.
const READERS = COLUMNS.map((c) => (c.value ? c.value(c.key) : (row) => row[c.key]));
const READER = Object.fromEntries(COLUMNS.map((c, i) => [c.key, READERS[i]]));

/** The key a row is known by in the UI (selection, distribution): "METHOD name". */
export function rowKey(row) {
  return `${row.method || ""} ${row.name}`;
}

export class StatsTable {
  /**
   * @param {HTMLTableElement} table - with empty <thead><tr>, <tbody> and <tfoot>.
   * @param {{onSelect?: (row: object) => void}} options - called when a row is clicked.
   */
  constructor(table, { onSelect } = {}) {
    this.table = table;
    this.body = table.tBodies[0];
    this.foot = table.tFoot;
    this.bodyRows = [];
    this.footRows = [];
    this.sortKey = null;
    this.sortDir = 1;
    this.selected = "";
    this.data = [];
    this.onSelect = onSelect;

    const head = table.tHead.rows[0];
    for (const col of COLUMNS) {
      const th = document.createElement("th");
      th.textContent = col.title;
      th.dataset.key = col.key;
      th.title = "Sort";
      if (col.numeric) th.className = "num";
      head.append(th);
    }
    head.addEventListener("click", (e) => {
      const th = e.target.closest("th");
      if (th) this.sortBy(th.dataset.key);
    });
    // One listener for all rows: rows come and go; each <tr> carries its latest data as .stats.
    table.addEventListener("click", (e) => {
      const tr = e.target.closest("tr");
      if (!tr || tr.parentElement === table.tHead || !tr.stats) return;
      this.select(rowKey(tr.stats));
      this.onSelect?.(tr.stats);
    });

    // A template row cloned for new rows: cheaper than building cells one by one.
    this.template = document.createElement("tr");
    for (const col of COLUMNS) {
      const td = document.createElement("td");
      if (col.numeric) td.className = "num";
      if (col.className) td.className = col.className;
      td.append(document.createTextNode(""));
      this.template.append(td);
    }
  }

  sortBy(key) {
    if (this.sortKey === key) {
      // Third click goes back to the server's order.
      if (this.sortDir === -1) this.sortKey = null;
      else this.sortDir = -1;
    } else {
      this.sortKey = key;
      // Numbers read best largest first, names A to Z.
      this.sortDir = COLUMNS.find((c) => c.key === key)?.numeric ? -1 : 1;
    }
    for (const th of this.table.tHead.rows[0].cells) {
      th.classList.toggle("sorted-asc", th.dataset.key === this.sortKey && this.sortDir === 1);
      th.classList.toggle("sorted-desc", th.dataset.key === this.sortKey && this.sortDir === -1);
    }
    this.update(this.data);
  }

  select(key) {
    this.selected = key;
    for (const r of this.bodyRows.concat(this.footRows)) {
      r.tr.classList.toggle("selected", !!r.tr.stats && rowKey(r.tr.stats) === key);
    }
  }

  /** Shows `stats` (the /stats/requests rows, Aggregated last). */
  update(stats) {
    this.data = stats;
    let rows = stats;
    let total = [];
    if (rows.length && rows[rows.length - 1].name === "Aggregated") {
      total = rows.slice(-1);
      rows = rows.slice(0, -1);
    }
    if (this.sortKey) {
      const read = READER[this.sortKey];
      const dir = this.sortDir;
      rows = rows.slice().sort((a, b) => {
        const x = read(a) ?? -Infinity;
        const y = read(b) ?? -Infinity;
        if (typeof x === "string" || typeof y === "string") return dir * String(x).localeCompare(String(y));
        return dir * (x - y);
      });
    }
    this.sync(this.body, this.bodyRows, rows);
    this.sync(this.foot, this.footRows, total);
  }

  sync(section, pool, rows) {
    if (pool.length < rows.length) {
      const fragment = document.createDocumentFragment();
      while (pool.length < rows.length) {
        const tr = this.template.cloneNode(true);
        pool.push({ tr, texts: new Array(COLUMNS.length).fill(""), failing: false });
        fragment.append(tr);
      }
      section.append(fragment);
    }
    while (pool.length > rows.length) pool.pop().tr.remove();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      const r = pool[i];
      const cells = r.tr.cells;
      for (let c = 0; c < COLUMNS.length; c++) {
        const value = COLUMNS[c].format(READERS[c](row));
        if (r.texts[c] !== value) {
          cells[c].firstChild.nodeValue = value;
          r.texts[c] = value;
        }
      }
      const failing = row.num_failures > 0;
      if (failing !== r.failing) {
        cells[FAILS].classList.toggle("bad", failing);
        r.failing = failing;
      }
      const previous = r.tr.stats;
      r.tr.stats = row;
      if (this.selected && (!previous || rowKey(previous) !== rowKey(row))) {
        r.tr.classList.toggle("selected", rowKey(row) === this.selected);
      }
    }
  }
}
