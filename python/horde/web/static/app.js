// horde's web UI: page state, polling of the Locust-compatible endpoints, tabs and forms.
// The table lives in table.js, the charts in charts.js; no framework and no build step.

import { HistogramChart, TimeSeriesChart } from "./charts.js";
import { rowKey, StatsTable } from "./table.js";

const args = window.templateArgs || {};
const base = args.base_path || "";
const $ = (id) => document.getElementById(id);
const AGGREGATED = rowKey({ method: "", name: "Aggregated" });
const RUNNING = new Set(["spawning", "running"]);
// On a master (Locust's "distributed" mode) the page also shows the workers.
const DISTRIBUTED = !!args.is_distributed;
// The open model (an arrival rate) runs on a standalone runner without a LoadTestShape.
const OPEN_MODEL_FORM = !DISTRIBUTED && !args.is_shape;

// ---- requests -------------------------------------------------------------------------------

function request(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (args.auth_token) headers.set("Authorization", `Bearer ${args.auth_token}`);
  return fetch(base + path, { ...options, headers, cache: "no-store" });
}

async function getJSON(path) {
  const response = await request(path);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function post(path, form) {
  const response = await request(path, { method: "POST", body: form ? new URLSearchParams(form) : undefined });
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const message = (body && body.message) || (typeof body === "string" && body) || `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

/** A link target: downloads can't carry the Authorization header, so the token rides in the URL. */
function linkTo(path) {
  if (!args.auth_token) return base + path;
  return `${base}${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(args.auth_token)}`;
}

function escapeHtml(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const numberFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const msFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB"];

/** A byte count in powers of 1024, as Locust's Workers tab writes memory: "61.2 MB". */
function formatBytes(n) {
  if (!n) return "0 B";
  const power = Math.min(Math.floor(Math.log(n) / Math.log(1024)), BYTE_UNITS.length - 1);
  return `${numberFormat.format(n / 1024 ** power)} ${BYTE_UNITS[power]}`;
}

// ---- state ----------------------------------------------------------------------------------

const ui = {
  runnerState: args.state || "ready",
  formOpen: false,
  tab: "stats",
  stats: null,
  host: args.host || "",
  // Without -r the open model's pool starts at once (as the command line does), a user count at 1/s.
  spawnRate: args.spawn_rate ?? (args.arrival_rate ? Math.max(args.num_users ?? 1, 1) : 1),
  // The open model's last settings (the form's prefill), and whether the running test is in it.
  arrivalRate: args.arrival_rate ?? null,
  maxUsers: args.max_users ?? null,
  distribution: args.arrival_distribution || "even",
  openModel: false,
  arrivals: null,
  distKey: AGGREGATED,
  distOptionsKey: "",
  connectionError: null,
  workerCount: args.worker_count ?? 0,
  submitting: false,
};

// The charts' data: the whole run's history, appended to in place as /stats/history?since= answers.
const timeline = {
  time: [],
  user_count: [],
  current_rps: [],
  current_fail_per_sec: [],
  "response_time_percentile_0.5": [],
  "response_time_percentile_0.95": [],
  "response_time_percentile_0.99": [],
  avg_response_time: [],
  since: 0,
  resetAt: undefined,
};
const HISTORY_KEYS = Object.keys(timeline).filter((k) => Array.isArray(timeline[k]));

function clearHistory() {
  for (const k of HISTORY_KEYS) timeline[k].length = 0;
}

/** Forgets the charted points and asks for the server's whole history again. */
function startTimelineOver() {
  clearHistory();
  timeline.since = 0;
  for (const chart of charts) chart.invalidate();
  pollers.history.kick();
}

// ---- views ----------------------------------------------------------------------------------

const table = new StatsTable($("stats-table"), {
  onSelect: (row) => {
    setDistribution(rowKey(row));
  },
});

const charts = [
  new TimeSeriesChart($("chart-rps"), {
    store: timeline,
    series: [
      { key: "current_rps", label: "RPS", color: "#16a34a" },
      { key: "current_fail_per_sec", label: "Failures/s", color: "#dc2626" },
    ],
  }),
  new TimeSeriesChart($("chart-rt"), {
    store: timeline,
    unit: " ms",
    robust: true,
    series: [
      { key: "response_time_percentile_0.5", label: "50th percentile", color: "#16a34a" },
      { key: "response_time_percentile_0.95", label: "95th percentile", color: "#d97706" },
      { key: "response_time_percentile_0.99", label: "99th percentile", color: "#dc2626" },
      { key: "avg_response_time", label: "Average", color: "#6b7280", dashed: true },
    ],
  }),
  new TimeSeriesChart($("chart-users"), {
    store: timeline,
    series: [{ key: "user_count", label: "Users", color: "#2563eb" }],
  }),
];
const distChart = new HistogramChart($("chart-dist"));

function render() {
  const state = ui.runnerState;
  const running = RUNNING.has(state);
  const showForm = state === "ready" || ui.formOpen;
  $("start-view").hidden = !showForm;
  $("run-view").hidden = showForm;
  $("start-cancel").hidden = state === "ready";
  // As Locust's form: a master without workers has nobody to start users on.
  const noWorkers = DISTRIBUTED && !ui.workerCount;
  $("start-no-workers").hidden = !noWorkers;
  $("start-submit").disabled = ui.submitting || noWorkers;
  $("btn-new").hidden = running || state === "ready" || ui.formOpen;
  $("btn-edit").hidden = !running || !!args.is_shape;
  $("btn-stop").hidden = !(running || state === "cleanup");
  $("btn-reset").hidden = state === "ready" && !ui.stats?.stats?.some((r) => r.num_requests > 0);
  $("nav-state").textContent = state.toUpperCase();
  $("nav-state").className = `state state-${state}`;
  $("nav-host").textContent = ui.host;
  $("nav-host").title = ui.host;
  const footerError = $("footer-error");
  footerError.hidden = !ui.connectionError;
  footerError.textContent = ui.connectionError || "";
}

function showTab(tab) {
  if (!document.querySelector(`[data-panel="${tab}"]`)) tab = "stats";
  ui.tab = tab;
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== tab;
  if (tab === "charts") {
    // Hidden canvases have no size: draw now that they have one.
    for (const chart of charts) chart.invalidate();
    distChart.invalidate();
    pollers.dist.kick();
  }
  if (tab === "stats" && ui.stats) table.update(ui.stats.stats);
  if (tab === "failures" && ui.stats) renderFailures(ui.stats.errors);
  if (tab === "workers" && ui.stats) renderWorkers(ui.stats.workers);
  pollers.tab.kick();
}

function renderNavbar(data) {
  $("nav-users").textContent = numberFormat.format(data.user_count ?? 0);
  $("nav-dropped-item").hidden = !data.open_model;
  $("nav-dropped").textContent = numberFormat.format(data.dropped_iterations ?? 0);
  $("nav-dropped").classList.toggle("nav-bad", (data.dropped_iterations ?? 0) > 0);
  const rps = data.current_rps ?? data.total_rps ?? 0;
  $("nav-rps").textContent = numberFormat.format(rps);
  $("nav-fail").textContent = `${Math.round((data.fail_ratio ?? 0) * 100)}%`;
  if (DISTRIBUTED) $("nav-workers").textContent = numberFormat.format(data.worker_count ?? 0);
}

/** Above the table: what its response times measure and, in the open model, the total's service times. */
function renderMeasure(data) {
  const el = $("rt-measure");
  el.hidden = !data.response_time_measure;
  let text = `Response times: ${data.response_time_measure ?? ""}`;
  const service = data.open_model ? data.service_time_ms : null;
  if (service) {
    const ms = (v) => (v == null ? "–" : `${msFormat.format(v)} ms`);
    text += ` · Service times (${data.service_time_measure}) of all requests: p50 ${ms(service.p50)}, p99 ${ms(service.p99)}`;
  }
  if (el.textContent !== text) el.textContent = text;
}

function renderFailures(errors = []) {
  const badge = $("failures-count");
  badge.hidden = !errors.length;
  badge.textContent = String(errors.length);
  if (ui.tab !== "failures") return;
  $("failures-empty").hidden = errors.length > 0;
  $("failures-table").hidden = !errors.length;
  $("failures-table").tBodies[0].innerHTML = errors
    .map(
      (e) =>
        `<tr><td class="num">${e.occurrences}</td><td>${escapeHtml(e.method)}</td>` +
        `<td class="name">${escapeHtml(e.name)}</td><td class="message">${escapeHtml(e.error)}</td></tr>`,
    )
    .join("");
}

/** The Workers tab: every worker the master knows (missing ones too, until it forgets them), by id. */
function renderWorkers(workers = []) {
  if (ui.tab !== "workers") return;
  $("workers-empty").hidden = workers.length > 0;
  $("workers-table").hidden = !workers.length;
  const rows = workers.slice().sort((a, b) => String(a.id).localeCompare(String(b.id)));
  $("workers-table").tBodies[0].innerHTML = rows
    .map(
      (w) =>
        `<tr data-worker="${escapeHtml(w.id)}"><td class="name">${escapeHtml(w.id)}</td>` +
        `<td class="${w.state === "missing" ? "bad" : ""}">${escapeHtml(w.state)}</td>` +
        `<td class="num">${numberFormat.format(w.user_count ?? 0)}</td>` +
        `<td class="num">${numberFormat.format(w.cpu_usage ?? 0)}%</td>` +
        `<td class="num">${formatBytes(w.memory_usage)}</td></tr>`,
    )
    .join("");
}

function renderExceptions(exceptions = []) {
  const badge = $("exceptions-count");
  badge.hidden = !exceptions.length;
  badge.textContent = String(exceptions.length);
  $("exceptions-empty").hidden = exceptions.length > 0;
  $("exceptions-table").hidden = !exceptions.length;
  $("exceptions-table").tBodies[0].innerHTML = exceptions
    .map(
      (e) =>
        `<tr><td class="num">${e.count}</td><td class="message">${escapeHtml(e.msg)}</td>` +
        `<td><pre class="traceback">${escapeHtml(e.traceback)}</pre></td>` +
        `<td>${escapeHtml((e.nodes || []).join?.(", ") ?? e.nodes)}</td></tr>`,
    )
    .join("");
}

/** Locust's get_ratio tree: {Name: {ratio, tasks: {...}}} as nested lists with percentages. */
function ratioTree(node) {
  const entries = Object.entries(node || {});
  if (!entries.length) return "";
  const items = entries
    .map(([name, v]) => {
      const pct = `${((v.ratio ?? 0) * 100).toFixed(1)}%`;
      return `<li><span class="ratio">${pct}</span> ${escapeHtml(name)}${ratioTree(v.tasks)}</li>`;
    })
    .join("");
  return `<ul class="ratio-tree">${items}</ul>`;
}

function renderLogs(data) {
  const pre = $("logs-master");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  const text = (data.master || []).join("\n");
  if (pre.textContent !== text) {
    pre.textContent = text;
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }
  const workers = Object.entries(data.workers || {});
  $("logs-workers").innerHTML = workers
    .map(([id, lines]) => `<h3>Worker ${escapeHtml(id)}</h3><pre class="logs">${escapeHtml(lines.join("\n"))}</pre>`)
    .join("");
}

/** Keeps the distribution picker's options in step with the table's rows (rebuilt only when they change). */
function renderDistOptions(rows) {
  const keys = rows.map(rowKey);
  const joined = keys.join("\n");
  if (joined === ui.distOptionsKey) return;
  ui.distOptionsKey = joined;
  const select = $("dist-select");
  const options = rows.map((row, i) => {
    const option = document.createElement("option");
    option.value = keys[i];
    option.textContent = row.name === "Aggregated" ? "Aggregated" : `${row.method} ${row.name}`;
    return option;
  });
  // Aggregated first: it is the default.
  const agg = options.findIndex((o) => o.value === AGGREGATED);
  if (agg > 0) options.unshift(options.splice(agg, 1)[0]);
  if (agg < 0) {
    const option = document.createElement("option");
    option.value = AGGREGATED;
    option.textContent = "Aggregated";
    options.unshift(option);
  }
  select.replaceChildren(...options);
  select.value = keys.includes(ui.distKey) ? ui.distKey : AGGREGATED;
}

function setDistribution(key) {
  ui.distKey = key;
  const select = $("dist-select");
  if ([...select.options].some((o) => o.value === key)) select.value = key;
  table.select(key);
  pollers.dist.kick();
}

// ---- polling ----------------------------------------------------------------------------------

/** Runs `fn` every `ms` (after the previous run finished, never overlapping); kick() runs it now. */
function poller(ms, fn) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    clearTimeout(timer);
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      // A background tab polls nothing; it catches up on its first poll when shown again.
      if (!document.hidden) await fn();
      if (ui.connectionError) {
        ui.connectionError = null;
        render();
      }
    } catch (err) {
      ui.connectionError = `Cannot reach horde: ${err.message}`;
      render();
    } finally {
      running = false;
      timer = setTimeout(run, again ? 0 : ms);
      again = false;
    }
  };
  return { start: run, kick: run };
}

async function pollStats() {
  const data = await getJSON("/stats/requests");
  ui.stats = data;
  if (data.state && data.state !== ui.runnerState) {
    // A test started from ready/stopped (here or in another browser) has a history of its own.
    if (RUNNING.has(data.state) && !RUNNING.has(ui.runnerState)) startTimelineOver();
    ui.runnerState = data.state;
    if (!RUNNING.has(data.state) && $("edit-dialog").open) $("edit-dialog").close();
  }
  if (RUNNING.has(data.state)) {
    ui.openModel = !!data.open_model && !!data.arrivals;
    ui.arrivals = data.arrivals ?? null;
  }
  renderNavbar(data);
  renderMeasure(data);
  if (ui.tab === "stats") table.update(data.stats || []);
  renderFailures(data.errors || []);
  if (DISTRIBUTED) {
    ui.workerCount = data.worker_count ?? 0;
    renderWorkers(data.workers || []);
  }
  renderDistOptions(data.stats || []);
  render();
}

async function pollHistory() {
  const data = await getJSON(`/stats/history?since=${timeline.since}`);
  const resetAt = data.reset_at ?? null;
  let changed = false;
  if (resetAt !== timeline.resetAt) {
    // A reset (or a new test) starts the charts over; the first answer only tells where we are.
    if (timeline.resetAt !== undefined) {
      clearHistory();
      changed = true;
    }
    timeline.resetAt = resetAt;
  }
  for (const point of data.history || []) {
    if (point.time <= timeline.since || (resetAt != null && point.time <= resetAt)) continue;
    for (const k of HISTORY_KEYS) timeline[k].push(point[k] ?? null);
    timeline.since = point.time;
    changed = true;
  }
  for (const chart of charts) chart.container.dataset.points = String(timeline.time.length);
  if (changed && ui.tab === "charts") for (const chart of charts) chart.invalidate();
}

async function pollDistribution() {
  if (ui.tab !== "charts") return;
  let query = "";
  if (ui.distKey !== AGGREGATED) {
    const row = (ui.stats?.stats || []).find((r) => rowKey(r) === ui.distKey);
    if (row) query = `?method=${encodeURIComponent(row.method)}&name=${encodeURIComponent(row.name)}`;
  }
  const data = await getJSON(`/stats/distribution${query}`);
  distChart.setData(data.buckets || [], data.count, data.bins, data.percentiles);
  // Which row the drawn histogram belongs to (the picker may have moved on since the request).
  distChart.container.dataset.name = data.name ?? "";
  $("dist-summary").textContent = `${numberFormat.format(data.count ?? 0)} requests`;
}

async function pollTab() {
  switch (ui.tab) {
    case "exceptions":
      renderExceptions((await getJSON("/exceptions")).exceptions);
      break;
    case "ratio": {
      const data = await getJSON("/tasks");
      $("ratio-per-class").innerHTML = ratioTree(data.per_class) || '<p class="empty">No user classes.</p>';
      $("ratio-total").innerHTML = ratioTree(data.total) || '<p class="empty">No user classes.</p>';
      break;
    }
    case "logs":
      renderLogs(await getJSON("/logs"));
      break;
    default:
  }
}

const pollers = {
  stats: poller(2000, pollStats),
  history: poller(1000, pollHistory),
  dist: poller(2000, pollDistribution),
  tab: poller(2000, pollTab),
  // The exceptions badge is worth a look now and then even when its tab is closed.
  exceptions: poller(10000, async () => {
    if (ui.tab !== "exceptions") renderExceptions((await getJSON("/exceptions")).exceptions);
  }),
};

function refreshAll() {
  pollers.stats.kick();
  pollers.history.kick();
  pollers.dist.kick();
}

// ---- forms and buttons ------------------------------------------------------------------------

function fillStartForm() {
  const form = $("swarm-form");
  $("start-users").value = args.num_users ?? ui.stats?.user_count ?? 1;
  $("start-rate").value = ui.spawnRate;
  $("start-host").value = ui.host;
  $("start-runtime").value = args.run_time ?? "";
  $("start-arrival-rate").value = ui.arrivalRate ?? "";
  $("start-max-users").value = ui.maxUsers ?? "";
  $("start-distribution").value = ui.distribution;
  const shape = !!args.is_shape;
  for (const el of form.querySelectorAll(".users-field")) el.hidden = shape;
  $("start-users").required = !shape;
  $("start-rate").required = !shape;
  $("shape-note").hidden = !shape;
  // A disabled fieldset sends nothing: a master or a shape gets Locust's form.
  $("open-model").hidden = !OPEN_MODEL_FORM;
  $("open-model").disabled = !OPEN_MODEL_FORM;
  syncOpenModelFields();
  if (args.show_userclass_picker && (args.user_classes || []).length) {
    const selected = new Set(args.selected_user_classes?.length ? args.selected_user_classes : args.user_classes);
    $("class-list").innerHTML = args.user_classes
      .map(
        (name) =>
          `<label class="check"><input type="checkbox" name="user_classes" value="${escapeHtml(name)}"` +
          `${selected.has(name) ? " checked" : ""}> ${escapeHtml(name)}</label>`,
      )
      .join("");
    $("class-picker").hidden = false;
  }
}

/** With an arrival rate the user count is the pool started up front, and max users and the
 * distribution apply; without one they don't (disabled fields are not sent). */
function syncOpenModelFields() {
  const open = OPEN_MODEL_FORM && $("start-arrival-rate").value.trim() !== "";
  $("start-max-users").disabled = !open;
  $("start-distribution").disabled = !open;
  $("start-users-label").textContent = open
    ? "Number of users (the pool started up front)"
    : "Number of users (peak concurrency)";
}

function showError(el, message) {
  el.textContent = message || "";
  el.hidden = !message;
}

$("swarm-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  if (args.is_shape) {
    form.delete("user_count");
    form.delete("spawn_rate");
  }
  if (!form.get("run_time")) form.delete("run_time");
  if (!form.get("max_users")) form.delete("max_users");
  showError($("start-error"), "");
  ui.submitting = true;
  render();
  try {
    const result = await post("/swarm", form);
    if (result && result.success === false) throw new Error(result.message || "The test did not start");
    ui.formOpen = false;
    if (!RUNNING.has(ui.runnerState)) startTimelineOver();
    ui.runnerState = "spawning";
    if (form.get("host")) ui.host = String(form.get("host"));
    if (result?.host) ui.host = result.host;
    if (form.get("spawn_rate")) ui.spawnRate = Number(form.get("spawn_rate"));
    if (form.has("arrival_rate")) {
      const rate = form.get("arrival_rate");
      ui.openModel = !!rate;
      ui.arrivals = null;
      ui.arrivalRate = rate ? Number(rate) : null;
      if (rate) {
        ui.maxUsers = form.get("max_users") ? Number(form.get("max_users")) : null;
        ui.distribution = String(form.get("arrival_distribution") || "even");
      }
    }
    render();
    refreshAll();
  } catch (err) {
    showError($("start-error"), err.message);
  } finally {
    ui.submitting = false;
    render();
  }
});

$("start-cancel").addEventListener("click", () => {
  ui.formOpen = false;
  render();
});

$("btn-new").addEventListener("click", () => {
  fillStartForm();
  ui.formOpen = true;
  render();
});

$("start-arrival-rate").addEventListener("input", syncOpenModelFields);

$("btn-edit").addEventListener("click", () => {
  // A running open-model test changes its rate and max users; a closed one its user count.
  const open = ui.openModel;
  $("edit-closed").hidden = open;
  $("edit-closed").disabled = open;
  $("edit-open").hidden = !open;
  $("edit-open").disabled = !open;
  $("edit-users").value = ui.stats?.user_count ?? args.num_users ?? 1;
  $("edit-rate").value = ui.spawnRate;
  $("edit-arrival-rate").value = ui.arrivals?.rate ?? ui.arrivalRate ?? "";
  $("edit-max-users").value = ui.arrivals?.max_users ?? ui.maxUsers ?? "";
  showError($("edit-error"), "");
  $("edit-dialog").showModal();
});

$("edit-cancel").addEventListener("click", () => $("edit-dialog").close());

$("edit-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = new FormData(e.target);
  $("edit-submit").disabled = true;
  try {
    const result = await post("/swarm", form);
    if (result && result.success === false) throw new Error(result.message || "The change was refused");
    if (form.has("spawn_rate")) ui.spawnRate = Number(form.get("spawn_rate"));
    if (form.get("arrival_rate")) {
      ui.arrivalRate = Number(form.get("arrival_rate"));
      if (form.get("max_users")) ui.maxUsers = Number(form.get("max_users"));
      ui.arrivals = null;
    }
    $("edit-dialog").close();
    refreshAll();
  } catch (err) {
    showError($("edit-error"), err.message);
  } finally {
    $("edit-submit").disabled = false;
  }
});

$("btn-stop").addEventListener("click", async () => {
  try {
    await post("/stop");
  } catch (err) {
    ui.connectionError = `Stop failed: ${err.message}`;
  }
  refreshAll();
});

$("btn-reset").addEventListener("click", async () => {
  try {
    await post("/stats/reset");
  } catch (err) {
    ui.connectionError = `Reset failed: ${err.message}`;
  }
  refreshAll();
});

for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => {
    window.history.replaceState(null, "", `#${button.dataset.tab}`);
    showTab(button.dataset.tab);
  });
}
window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));

$("dist-select").addEventListener("change", (e) => setDistribution(e.target.value));

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refreshAll();
});

// ---- start ------------------------------------------------------------------------------------

for (const a of document.querySelectorAll("a[data-href]")) a.href = linkTo(a.dataset.href);
// The full-history CSV exists only with --csv-full-history: offer it only when it answers.
request("/stats/requests_full_history/csv", { method: "HEAD" })
  .then((r) => {
    $("dl-history-item").hidden = !r.ok;
  })
  .catch(() => {});

$("footer-version").textContent = [args.version && `horde ${args.version}`, args.locustfile]
  .filter(Boolean)
  .join(" · ");
fillStartForm();
render();
showTab(location.hash.slice(1) || "stats");
for (const p of Object.values(pollers)) p.start();
