// The dashboard page: reads the view from the URL, asks the service for the metrics document
// (/app/metrics) and the messages behind a figure (/app/messages), draws the six sections.
// Plain ES module, no build step; charts by uPlot (window.uPlot, vendored under /static/vendor).

const $ = (selector, root = document) => root.querySelector(selector);
const main = $("#dashboard");
const COLORS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c"];
const MARKER_COLOR = "#9f1239";
const GOOD = new Set(["Excellent", "Good", "Fast", "Healthy"]);
const WARN = new Set(["Acceptable", "Degraded"]);
const STATUS = {status: {format: (v) => badge(v)}};
const RISE_IS_BAD = new Set(["cost_usd", "error_rate_pct", "avg_response_time_ms"]);
let session = null;

// ------------------------------------------------------------------ small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const NO_DATA = "no data";
const count = (v) => (v === null || v === undefined ? NO_DATA : Math.round(v).toLocaleString("en-US"));
const money = (v) => (v === null || v === undefined ? NO_DATA
  : "$" + (Math.abs(v) > 0 && Math.abs(v) < 0.01 ? v.toFixed(4) : v.toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2})));
const pct = (v) => (v === null || v === undefined ? NO_DATA : v.toFixed(2) + "%");
const ms = (v) => (v === null || v === undefined ? NO_DATA : v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms");
const minutes = (v) => (v === null || v === undefined ? NO_DATA : (v / 60000).toFixed(1) + " min");

function format(key, value) {
  if (typeof value !== "number") return value === null || value === undefined ? NO_DATA : String(value);
  if (key.endsWith("_usd")) return money(value);
  if (key.endsWith("_pct") || key.endsWith("_pp")) return pct(value);
  if (key.endsWith("duration_ms")) return minutes(value);
  if (key.endsWith("_ms")) return ms(value);
  if (key.endsWith("_minutes")) return value.toFixed(1) + " min";
  return Number.isInteger(value) ? count(value) : value.toFixed(2);
}

const label = (key) => key.replace(/_usd$/, " (USD)").replace(/_pct$/, " %").replace(/_ms$/, "").replace(/_/g, " ");

function badge(status) {
  const kind = GOOD.has(status) ? "good" : WARN.has(status) ? "warn" : status === "No data" || !status ? "none" : "bad";
  return el("span", {class: `status ${kind}`}, status || NO_DATA);
}

function change(key, metric) {
  if (!metric || metric.trend === "no data") return el("span", {class: "change flat"}, "no previous data");
  const amount = metric.change_pp !== undefined ? metric.change_pp : metric.change_pct;
  const unit = metric.change_pp !== undefined ? " pp" : "%";
  const text = amount === null ? metric.trend : `${amount > 0 ? "+" : ""}${amount.toFixed(1)}${unit}`;
  const rise = metric.trend === "up" || metric.trend === "new";
  const good = metric.trend === "unchanged" ? "flat" : (rise !== RISE_IS_BAD.has(key) ? "pos" : "neg");
  return el("span", {class: `change ${good}`}, `${text} vs previous (${format(key, metric.previous)})`);
}

// ------------------------------------------------------------------ the view in the URL

function readView() {
  const q = new URLSearchParams(location.search);
  return {
    period: q.get("period"), start: q.get("start"), end: q.get("end"), month: q.get("month"),
    agents: q.getAll("agent"), tz: q.get("tz"), as_of: q.get("as_of"),
    versions: q.get("version_a") && q.get("version_b") ? [q.get("version_a"), q.get("version_b")] : null,
    drill: q.get("drill") === "messages" ? {
      day: q.get("day"), hour: q.get("hour"), status: q.get("status"), page: Number(q.get("page") || 1),
    } : null,
  };
}

function periodParams(view) {
  const q = new URLSearchParams();
  if (view.month) q.set("month", view.month);
  else if (view.start && view.end) { q.set("start", view.start); q.set("end", view.end); }
  else if (view.period) q.set("period", view.period);
  for (const agent of view.agents) q.append("agent", agent);
  if (view.tz) q.set("tz", view.tz);
  if (view.as_of) q.set("as_of", view.as_of);  // only from a link: counts up to that time
  return q;
}

function viewParams(view) {
  const q = periodParams(view);
  if (view.versions && view.agents.length === 1) { q.set("version_a", view.versions[0]); q.set("version_b", view.versions[1]); }
  if (view.drill) {
    q.set("drill", "messages");
    for (const key of ["day", "hour", "status"]) if (view.drill[key] !== null && view.drill[key] !== undefined) q.set(key, view.drill[key]);
    if (view.drill.page > 1) q.set("page", view.drill.page);
  }
  return q;
}

function go(view) {
  main.dataset.ready = "0";
  window.__changeStartedAt = performance.now();
  const query = viewParams(view).toString();
  history.pushState(null, "", query ? `?${query}` : location.pathname);
  show();
}

const currentView = readView;

// ------------------------------------------------------------------ talking to the service

class LoginNeeded extends Error {}

async function getJson(path, params) {
  const response = await fetch(`${path}?${params}`, {headers: {Accept: "application/json"}, credentials: "same-origin"});
  if (response.status === 401) throw new LoginNeeded();
  const body = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

// ------------------------------------------------------------------ charts and their tables

function numbersTable(columns, rows, caption) {
  // columns: [{key, label, format?, drill?(row), drillable?(row)}]; a sortable table.
  const table = el("table", {}, el("caption", {class: "visually-hidden"}, caption));
  const head = el("tr");
  const body = el("tbody");
  columns.forEach((column, i) => {
    const th = el("th", {scope: "col", "aria-sort": "none"});
    th.append(el("button", {type: "button", onclick: () => sortBy(i, th)}, column.label));
    head.append(th);
  });
  let sorted = rows.slice();
  function fill() {
    body.replaceChildren(...sorted.map((row) => el("tr", {}, columns.map((column) => {
      const value = row[column.key];
      const text = column.format ? column.format(value, row) : format(column.key, value);
      const drills = column.drill && (!column.drillable || column.drillable(row));
      const cell = drills ? el("button", {type: "button", class: "link", onclick: () => column.drill(row)}, text) : text;
      return el("td", {"data-key": column.key, "data-value": typeof value === "object" ? null : value}, cell);
    }))));
  }
  function sortBy(i, th) {
    const key = columns[i].key;
    const ascending = th.getAttribute("aria-sort") !== "ascending";
    head.querySelectorAll("th").forEach((other) => other.setAttribute("aria-sort", "none"));
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    sorted = rows.slice().sort((a, b) => {
      const x = a[key], y = b[key];
      const order = x === y ? 0 : x === null || x === undefined ? -1 : y === null || y === undefined ? 1 : x < y ? -1 : 1;
      return ascending ? order : -order;
    });
    fill();
  }
  fill();
  table.append(el("thead", {}, head), body);
  return table;
}

let chartCount = 0;

function chart({title, labels, series, columns, rows, bars = false, onPick = null, yFormat = (v) => v, markers = []}) {
  // labels: x labels; series: [{label, values, key}]; columns/rows: its numbers as a table;
  // markers: [{index, day, text}], a dashed line at x = index (the deployments of that day).
  const id = `chart-${++chartCount}`;
  const figure = el("figure", {class: "chart", "data-markers": markers.length ? JSON.stringify(markers.map((m) => [m.day, m.text])) : null});
  const summary = series.map((s) => `${s.label}: ${s.values.map((v, i) => `${labels[i]} ${v === null ? NO_DATA : yFormat(v)}`).join(", ")}`).join("; ");
  const marked = markers.length ? ` Deployments: ${markers.map((m) => `${m.day} ${m.text}`).join("; ")}.` : "";
  const canvas = el("div", {role: "img", "aria-label": `${title}.${marked} ${summary.slice(0, 600)}`});
  const tableBox = el("div", {id: `${id}-numbers`, class: "wide", hidden: true}, numbersTable(columns, rows, title));
  const toggle = el("button", {type: "button", class: "toggle", "aria-expanded": "false", "aria-controls": `${id}-numbers`,
    onclick: () => {
      const open = tableBox.hidden;
      tableBox.hidden = !open;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Hide the numbers" : "Show the numbers";
    }}, "Show the numbers");
  const legend = el("p", {class: "legend"}, series.map((s, i) => el("span", {}, el("span", {class: "swatch", "data-color": i}), s.label)));
  if (markers.length) legend.append(el("span", {}, el("span", {class: "swatch marker"}), "deployment"));
  figure.append(el("figcaption", {}, title), legend, canvas, toggle, tableBox);
  const draw = () => {
    const width = Math.max(canvas.clientWidth || 500, 300);
    const xs = labels.map((_, i) => i);
    const options = {
      width, height: 220, legend: {show: false}, cursor: {drag: {x: false, y: false}},
      scales: {x: {time: false, range: [-0.5, Math.max(labels.length - 0.5, 0.5)]}},
      axes: [
        {values: (u, splits) => splits.map((i) => (Number.isInteger(i) && labels[i] !== undefined ? labels[i] : "")),
         incrs: [1, 2, 3, 4, 6, 7, 12, 14, 28, 30, 60, 90, 180, 365], stroke: "#334155"},
        {values: (u, splits) => splits.map(yFormat), size: 70, stroke: "#334155"},
      ],
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: COLORS[i], width: 2, spanGaps: true,
        fill: bars ? COLORS[i] + "cc" : undefined,
        paths: bars ? window.uPlot.paths.bars({size: [0.7, 60], align: 0}) : undefined,
        points: {show: !bars && labels.length <= 45},
      }))],
      hooks: {draw: [(u) => drawMarkers(u, markers)]},
    };
    const plot = new window.uPlot(options, [xs, ...series.map((s) => s.values)], canvas);
    canvas.plot = plot;  // for the tests: where a point is drawn
    if (onPick) {
      plot.over.addEventListener("click", () => {
        const i = plot.cursor.idx;
        if (i !== null && i !== undefined) onPick(i);
      });
      plot.over.title = "Click to list the messages behind this point";
    }
  };
  requestAnimationFrame(draw);
  figure.querySelectorAll(".swatch[data-color]").forEach((swatch) => { swatch.style.background = COLORS[Number(swatch.dataset.color)]; });
  return figure;
}

function drawMarkers(u, markers) {
  const ctx = u.ctx;
  const scale = window.devicePixelRatio || 1;
  ctx.save();
  ctx.strokeStyle = ctx.fillStyle = MARKER_COLOR;
  ctx.lineWidth = scale;
  ctx.setLineDash([4 * scale, 3 * scale]);
  ctx.font = `${11 * scale}px sans-serif`;
  for (const m of markers) {
    const x = Math.round(u.valToPos(m.index, "x", true));
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillText(m.text, x + 3 * scale, u.bbox.top + 11 * scale);
  }
  ctx.restore();
}

function localDay(iso, zone) {
  return new Intl.DateTimeFormat("en-CA", {timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit"}).format(new Date(iso));
}

function deploymentMarkers(doc, days) {
  // one marker per local day of the series holding deployments: "agent version, ..."
  const byDay = new Map();
  for (const d of (doc.deployments || {items: []}).items) {
    const index = days.indexOf(localDay(d.deployed_at, doc.time_zone));
    if (index >= 0) byDay.set(index, [...(byDay.get(index) || []), `${d.agent_id} ${d.version}`]);
  }
  return [...byDay].map(([index, names]) => ({index, day: days[index], text: names.join(", ")}));
}

// ------------------------------------------------------------------ the six sections

function facts(items) {
  return el("p", {class: "facts"}, items.map(([name, value, key]) => el("span", {"data-fact": key || null}, `${name}: `, el("b", {}, value))));
}

function drillTo(extra) {
  const view = currentView();
  go({...view, drill: {day: null, hour: null, status: null, page: 1, ...extra}});
}

function renderOverview(doc) {
  const kpis = [
    ["active_users", "Active users"], ["dau", "Daily active users"], ["sessions", "Sessions"], ["messages", "Messages"],
    ["active_agents", "Active agents"], ["cost_usd", "Cost"], ["error_rate_pct", "Error rate"],
  ];
  const cards = el("div", {class: "kpis"}, kpis.map(([key, name]) => {
    const metric = doc.overview[key];
    return el("div", {class: "kpi", "data-kpi": key},
      el("div", {class: "label"}, key === "dau" && metric.date ? `${name} (${metric.date})` : name),
      el("div", {class: "value", "data-value": metric.value}, format(key, metric.value)),
      change(key, metric));
  }));
  const days = doc.daily.map((d) => d.date);
  return [cards, el("div", {class: "charts"}, chart({
    title: "Messages per day", labels: days, bars: true,
    series: [{label: "messages", values: doc.daily.map((d) => d.messages)}, {label: "errors", values: doc.daily.map((d) => d.errors)}],
    columns: [{key: "date", label: "day", drill: (row) => drillTo({day: row.date})}, {key: "messages", label: "messages"},
      {key: "errors", label: "errors"}, {key: "sessions", label: "sessions"}, {key: "dau", label: "DAU"}],
    rows: doc.daily, onPick: (i) => drillTo({day: days[i]}), markers: deploymentMarkers(doc, days),
  }))];
}

function renderEngagement(doc) {
  const e = doc.engagement;
  const days = e.series.map((d) => d.date);
  return [
    facts([["Sessions", count(e.sessions)], ["Average session", minutes(e.avg_session_duration_ms)],
      ["Messages per session", e.messages_per_session === null ? NO_DATA : e.messages_per_session.toFixed(2)]]),
    el("div", {class: "charts"}, chart({
      title: "Daily, weekly and monthly active users", labels: days,
      series: ["dau", "wau", "mau"].map((k) => ({label: k.toUpperCase(), values: e.series.map((d) => d[k])})),
      columns: [{key: "date", label: "day", drill: (row) => drillTo({day: row.date})}, {key: "dau", label: "DAU"},
        {key: "wau", label: "WAU"}, {key: "mau", label: "MAU"}],
      rows: e.series, onPick: (i) => drillTo({day: days[i]}), yFormat: (v) => count(v), markers: deploymentMarkers(doc, days),
    })),
    el("h3", {}, "Session length"), rowsTable(e.session_duration_distribution, "Session length"),
    el("h3", {}, "Messages per session"), rowsTable(e.messages_per_session_distribution, "Messages per session"),
  ];
}

function rowsTable(rows, caption, extra = {}) {
  // every scalar column of `rows`, or "None." when there are no rows
  return rows.length ? numbersTable(autoColumns(rows, extra), rows, caption) : el("p", {}, "None.");
}

function autoColumns(rows, extra = {}) {
  const keys = rows.length ? Object.keys(rows[0]).filter((k) => typeof rows[0][k] !== "object" || rows[0][k] === null) : [];
  return keys.map((key) => ({key, label: label(key), ...(extra[key] || {})}));
}

function scopeTo(agentId) {
  go({...currentView(), agents: [agentId], versions: null, drill: null});
}

function renderPerformance(doc) {
  const p = doc.performance;
  const agentColumns = [
    {key: "agent_label", label: "agent", drill: (row) => scopeTo(row.agent_id)},
    ...["sessions", "messages", "errors", "error_rate_pct", "avg_response_time_ms", "cost_usd", "total_tokens",
      "avg_tokens_per_message", "avg_session_duration_ms"].map((key) => ({key, label: label(key)})),
    {key: "agent_id", label: "messages list", format: () => "list", drill: (row) => go({...currentView(), agents: [row.agent_id], drill: {page: 1}})},
  ];
  const hours = p.hourly.map((h) => String(h.hour).padStart(2, "0"));
  return [
    facts([["Average response", ms(p.avg_response_time_ms)], ["P50", ms(p.p50_response_time_ms)], ["P95", ms(p.p95_response_time_ms)],
      ["P99", ms(p.p99_response_time_ms)], ["Error rate", pct(p.error_rate_pct), "error_rate_pct"], ["Success rate", pct(p.success_rate_pct)]]),
    el("h3", {}, "Agents (click an agent to show only it)"),
    el("div", {class: "wide", id: "agent-table"}, numbersTable(agentColumns, p.agents, "Agents")),
    el("div", {class: "charts"}, chart({
      title: "Messages by hour of the day", labels: hours, bars: true,
      series: [{label: "messages", values: p.hourly.map((h) => h.messages)}],
      columns: [{key: "hour", label: "hour", drill: (row) => drillTo({hour: row.hour})}, {key: "messages", label: "messages"},
        {key: "avg_response_time_ms", label: "average response"}, {key: "p95_response_time_ms", label: "P95 response"}],
      rows: p.hourly, onPick: (i) => drillTo({hour: p.hourly[i].hour}),
    }), chart({
      title: "Response time by hour of the day (seconds)", labels: hours,
      series: [{label: "average", values: p.hourly.map((h) => h.avg_response_time_ms === null ? null : h.avg_response_time_ms / 1000)},
        {label: "P95", values: p.hourly.map((h) => h.p95_response_time_ms === null ? null : h.p95_response_time_ms / 1000)}],
      columns: [{key: "hour", label: "hour", drill: (row) => drillTo({hour: row.hour})}, {key: "avg_response_time_ms", label: "average"},
        {key: "p95_response_time_ms", label: "P95"}],
      rows: p.hourly, onPick: (i) => drillTo({hour: p.hourly[i].hour}), yFormat: (v) => v.toFixed(1),
    })),
    el("h3", {}, "Tools"), rowsTable(p.tools, "Tools"),
  ];
}

function renderCost(doc) {
  const c = doc.cost;
  const days = c.by_day.map((d) => d.date);
  return [
    facts([["Total", money(c.total_usd), "total_usd"], ["Per message", money(c.cost_per_message_usd)], ["Per session", money(c.cost_per_session_usd)],
      ["Per user", money(c.cost_per_user_usd)], ["Weekly spend", money(c.forecast.weekly_spend_usd)],
      ["Projected month", money(c.forecast.projected_monthly_usd)]]),
    el("div", {class: "charts"}, chart({
      title: "Cost per day (USD)", labels: days, bars: true, series: [{label: "cost (USD)", values: c.by_day.map((d) => d.cost_usd)}],
      columns: [{key: "date", label: "day", drill: (row) => drillTo({day: row.date})}, {key: "cost_usd", label: "cost"}],
      rows: c.by_day, onPick: (i) => drillTo({day: days[i]}), yFormat: (v) => "$" + v.toFixed(2), markers: deploymentMarkers(doc, days),
    })),
    el("h3", {}, "By provider"), rowsTable(c.by_provider, "Cost by provider"),
    el("h3", {}, "By agent"), rowsTable(c.by_agent, "Cost by agent", {agent_label: {drill: (row) => scopeTo(row.agent_id)}}),
    el("h3", {}, "By model"), rowsTable(c.by_model, "Cost by model"),
    c.unpriced.calls ? el("p", {class: "note"}, `${count(c.unpriced.calls)} calls (${count(c.unpriced.total_tokens)} tokens) have no price and count $0.`) : null,
  ];
}

function renderTokens(doc) {
  const t = doc.tokens;
  const days = doc.daily.map((d) => d.date);
  return [
    facts([["Input", count(t.input_tokens)], ["Output", count(t.output_tokens)], ["Total", count(t.total_tokens), "total_tokens"],
      ["Input share", pct(t.input_share_pct)], ["Per message", t.avg_tokens_per_message === null ? NO_DATA : count(t.avg_tokens_per_message)]]),
    el("p", {class: "facts"}, ["input_tokens", "output_tokens", "total_tokens"].map((k) => el("span", {}, `${label(k)}: `, change(k, t.vs_previous[k])))),
    el("div", {class: "charts"}, chart({
      title: "Tokens per day", labels: days,
      series: [{label: "input", values: doc.daily.map((d) => d.input_tokens)}, {label: "output", values: doc.daily.map((d) => d.output_tokens)}],
      columns: [{key: "date", label: "day", drill: (row) => drillTo({day: row.date})}, {key: "input_tokens", label: "input"},
        {key: "output_tokens", label: "output"}, {key: "total_tokens", label: "total"}],
      rows: doc.daily, onPick: (i) => drillTo({day: days[i]}), yFormat: (v) => count(v),
    })),
    el("h3", {}, "By agent"), rowsTable(t.by_agent, "Tokens by agent", {agent_label: {drill: (row) => scopeTo(row.agent_id)}}),
    el("h3", {}, "By model"), rowsTable(t.by_model, "Tokens by model"),
  ];
}

function renderHealth(doc) {
  const h = doc.health;
  const rt = h.response_time;
  const days = doc.daily.map((d) => d.date);
  return [
    el("p", {class: "facts"}, ["p50", "p95", "p99"].map((k) => el("span", {"data-status": k}, `${k.toUpperCase()} ${ms(rt[`${k}_ms`])} `, badge(rt[`${k}_status`])))),
    el("div", {class: "charts"}, chart({
      title: "Error rate per day (%)", labels: days,
      series: [{label: "error rate %", values: doc.daily.map((d) => (d.error_rate === null ? null : d.error_rate * 100))}],
      columns: [{key: "date", label: "day", drill: (row) => drillTo({day: row.date, status: "error"})}, {key: "errors", label: "errors"},
        {key: "messages", label: "messages"}, {key: "error_rate", label: "error rate", format: (v) => (v === null ? NO_DATA : pct(v * 100))}],
      rows: doc.daily, onPick: (i) => drillTo({day: days[i], status: "error"}), yFormat: (v) => v.toFixed(1) + "%",
      markers: deploymentMarkers(doc, days),
    })),
    el("h3", {}, "Error rate"), rowsTable(h.error_rate, "Error rate by window", STATUS),
    el("h3", {}, "Uptime"), rowsTable(h.uptime, "Uptime", STATUS),
    el("h3", {}, "Incidents"), rowsTable(h.incidents, "Incidents"),
    el("h3", {}, "Request volume"),
    facts(Object.entries(h.request_volume).map(([k, v]) => [label(k), format(k, v)])),
    el("h3", {}, "Queue depth"), rowsTable(h.queues, "Queues"),
  ];
}

function renderGoals(doc) {
  const goals = doc.goals || {items: []};
  $("#goals").hidden = !goals.items.length && !goals.problem;
  return [goals.problem ? el("p", {class: "note"}, goals.problem) : null,
    goals.items.length ? rowsTable(goals.items, "Goals", STATUS) : null];
}

function compareVersions(agentId, a, b) {
  go({...currentView(), agents: [agentId], versions: [a, b], drill: null});
}

function renderDeployments(doc) {
  // each deployment of the period with the agent's metrics in equal windows before and after it
  const section = doc.deployments || {items: [], window_hours: null};
  $("#deployments").hidden = !section.items.length;
  if (!section.items.length) return [];
  const time = new Intl.DateTimeFormat("en-CA", {timeZone: doc.time_zone, dateStyle: "short", timeStyle: "short", hourCycle: "h23"});
  const rows = section.items.map((d) => ({
    deployment_id: d.deployment_id, deployed_at: d.deployed_at, agent_id: d.agent_id, agent_label: d.agent_label,
    version: d.previous_version ? `${d.previous_version} → ${d.version}` : d.version, previous_version: d.previous_version,
    new_version: d.version, description: d.description || "", window_hours: d.window_hours, clipped_by: d.clipped_by || "",
    before_messages: d.before.messages, after_messages: d.after.messages,
    before_error_rate_pct: d.before.error_rate_pct, after_error_rate_pct: d.after.error_rate_pct,
    error_rate_change_pp: d.changes.error_rate_pct.difference, error_rate_p_value: d.changes.error_rate_pct.p_value,
    error_rate_verdict: d.changes.error_rate_pct.verdict,
    before_p95_response_time_ms: d.before.p95_response_time_ms, after_p95_response_time_ms: d.after.p95_response_time_ms,
    before_cost_per_message_usd: d.before.cost_per_message_usd, after_cost_per_message_usd: d.after.cost_per_message_usd,
  }));
  const columns = [
    {key: "deployed_at", label: `deployed (${doc.time_zone})`, format: (v) => time.format(new Date(v))},
    {key: "agent_label", label: "agent", drill: (row) => scopeTo(row.agent_id)},
    {key: "version", label: "version"}, {key: "description", label: "description"},
    {key: "window_hours", label: "window (hours)", format: (v, row) => `${v.toFixed(1)}${row.clipped_by ? ` (cut by ${row.clipped_by})` : ""}`},
    {key: "before_messages", label: "messages before"}, {key: "after_messages", label: "messages after"},
    {key: "before_error_rate_pct", label: "error rate before"}, {key: "after_error_rate_pct", label: "error rate after"},
    {key: "error_rate_change_pp", label: "error rate change", format: (v) => (v === null ? NO_DATA : `${v > 0 ? "+" : ""}${v.toFixed(2)} pp`)},
    {key: "error_rate_p_value", label: "p-value", format: (v) => (v === null ? NO_DATA : v.toFixed(4))},
    {key: "error_rate_verdict", label: "verdict"},
    {key: "before_p95_response_time_ms", label: "P95 before"}, {key: "after_p95_response_time_ms", label: "P95 after"},
    {key: "before_cost_per_message_usd", label: "cost per message before"}, {key: "after_cost_per_message_usd", label: "cost per message after"},
    {key: "new_version", label: "versions", format: (v, row) => (row.previous_version ? "compare" : ""),
     drill: (row) => compareVersions(row.agent_id, row.previous_version, row.new_version), drillable: (row) => row.previous_version},
  ];
  return [
    el("p", {}, `Each deployment's agent in windows of equal length before and after it (at most ${section.window_hours} hours, `
      + "cut by the neighbouring deployments and by now). The error rate's change is tested here (two-proportion z-test); "
      + "the comparison of two versions below tests every metric."),
    el("div", {class: "wide", id: "deployment-table"}, numbersTable(columns, rows, "Deployments")),
  ];
}

const COMPARED = ["a", "b", "difference", "ci_low", "ci_high"];

async function renderVersions(view, mine) {
  // one agent in scope: its versions with messages in the period, and the A/B comparison of two.
  // Its errors stay in the section (the rest of the page is drawn); `mine`: an answer that
  // comes after a newer view started is dropped.
  const section = $("#versions");
  section.hidden = view.agents.length !== 1;
  if (section.hidden) return;
  const body = section.querySelector(".body");
  const agent = view.agents[0];
  const q = periodParams(view);
  q.delete("agent");
  q.set("agent", agent);
  const problem = el("p", {class: "error", role: "alert", id: "versions-error", hidden: true});
  const fail = (error) => {
    if (error instanceof LoginNeeded) throw error;
    problem.hidden = false;
    problem.textContent = error.message;
  };
  let found;
  try {
    found = await getJson("/app/versions", q);
  } catch (error) {
    fail(error);
    if (mine === renders) body.replaceChildren(problem);
    return;
  }
  if (mine !== renders) return;
  const names = found.versions.map((v) => v.version);
  if (names.length < 2) {
    body.replaceChildren(el("p", {id: "versions-note"}, `${agent} has ${names.length ? `one version with messages in this period (${names[0]})` : "no versioned messages in this period"}: nothing to compare.`));
    return;
  }
  const asked = view.versions && view.versions.every((v) => names.includes(v)) ? view.versions : null;
  const byCount = found.versions.slice().sort((x, y) => y.messages - x.messages || (x.version < y.version ? -1 : 1));
  const [a, b] = asked || [byCount[1].version, byCount[0].version];
  const choice = (id, text, chosen) => [el("label", {for: id}, text), el("select", {id},
    found.versions.map((v) => el("option", {value: v.version, selected: v.version === chosen}, `${v.version} (${count(v.messages)} messages)`)))];
  const form = el("div", {class: "control"}, choice("version-a", "Version A", a), choice("version-b", "Version B", b),
    el("button", {type: "button", id: "compare-versions", onclick: () => {
      const [x, y] = [$("#version-a").value, $("#version-b").value];
      if (x === y) { problem.hidden = false; problem.textContent = "Choose two different versions."; return; }
      compareVersions(agent, x, y);
    }}, "Compare"));
  const parts = [form, problem];
  if (view.versions && !asked) {
    fail(new Error(`Version ${view.versions.filter((v) => !names.includes(v)).join(" and ")} has no messages of ${agent} in this period: choose two versions above.`));
  } else if (asked) {
    const cq = new URLSearchParams(q);
    cq.set("version_a", asked[0]);
    cq.set("version_b", asked[1]);
    try {
      const compared = await getJson("/app/compare", cq);
      if (mine !== renders) return;
      parts.push(...comparisonParts(compared));
    } catch (error) {
      fail(error);
    }
  }
  if (mine !== renders) return;
  body.replaceChildren(...parts);
}

function comparisonParts(doc) {
  const v = doc.versions;
  const rows = Object.entries(doc.metrics).map(([metric, m]) => ({metric, ...m}));
  const value = (key) => (x, row) => format(row.metric, x);
  const columns = [
    {key: "metric", label: "metric", format: (x) => label(x)},
    ...COMPARED.map((key) => ({key, label: key === "a" ? `A (${v.a})` : key === "b" ? `B (${v.b})` : label(key), format: value(key)})),
    {key: "p_value", label: "p-value", format: (x) => (x === null ? NO_DATA : x.toFixed(4))},
    {key: "test", label: "test"}, {key: "sample_a", label: "sample A"}, {key: "sample_b", label: "sample B"},
    {key: "verdict", label: "verdict"},
  ];
  return [
    el("p", {id: "comparison-scope"}, `${doc.agent.label}: version B ${v.b} against A ${v.a}, ${doc.period.label} `
      + `(${doc.period.start_date} to ${doc.period.end_date}); differences are B - A with ${Math.round(doc.confidence_level * 100)}% intervals. `
      + `${count(doc.users_in_both)} users used both.`),
    el("div", {class: "wide", id: "comparison-table"}, numbersTable(columns, rows, "Version comparison")),
    doc.warnings.length ? el("ul", {class: "note", id: "comparison-warnings"}, doc.warnings.map((w) => el("li", {}, w))) : null,
  ].filter(Boolean);
}

// ------------------------------------------------------------------ the message audit

async function renderMessages(view) {
  const section = $("#messages");
  section.hidden = !view.drill;
  if (!view.drill) return;
  const q = periodParams(view);
  if (view.drill.day) { q.delete("period"); q.delete("month"); q.set("start", view.drill.day); q.set("end", view.drill.day); }
  for (const key of ["hour", "status"]) if (view.drill[key] !== null && view.drill[key] !== undefined) q.set(key, view.drill[key]);
  q.set("page", view.drill.page || 1);
  const found = await getJson("/app/messages", q);
  const zone = view.tz || session.time_zone;
  const time = new Intl.DateTimeFormat("en-CA", {timeZone: zone, dateStyle: "short", timeStyle: "medium", hourCycle: "h23"});
  const what = [view.drill.day ? `day ${view.drill.day}` : `period ${found.period.label}`,
    view.drill.hour !== null && view.drill.hour !== undefined ? `hour ${view.drill.hour}:00` : null,
    view.drill.status ? `status ${view.drill.status}` : null,
    view.agents.length ? `agents ${view.agents.join(", ")}` : "all agents"].filter(Boolean).join(", ");
  const columns = [
    {key: "occurred_at", label: `time (${zone})`, format: (v) => time.format(new Date(v))},
    {key: "user_id", label: "user"}, {key: "agent_id", label: "agent"}, {key: "agent_version", label: "version"},
    {key: "status", label: "status"}, {key: "error_type", label: "error type", format: (v) => v || ""},
    {key: "response_time_ms", label: "response time"}, {key: "llm_calls", label: "LLM calls"}, {key: "tool_calls", label: "tool calls"},
    {key: "total_tokens", label: "tokens"}, {key: "cost_usd", label: "cost"},
    {key: "tools", label: "tools", format: (v) => v.join(", ")},
  ];
  const page = found.page;
  const move = (to) => go({...view, drill: {...view.drill, page: to}});
  section.querySelector(".body").replaceChildren(
    el("p", {id: "messages-scope"}, `${count(found.total)} messages: ${what}.`),
    el("p", {}, el("a", {href: `?${viewParams(view)}`, id: "messages-link"}, "Link to this list"), " · ",
      el("a", {href: `/app/messages?${q}`, id: "messages-json"}, "the same as JSON"), " · ",
      el("button", {type: "button", class: "link", onclick: () => go({...view, drill: null})}, "Close")),
    el("div", {class: "wide"}, numbersTable(columns, found.messages, "Messages")),
    el("div", {class: "pager"},
      el("button", {type: "button", id: "prev-page", disabled: page <= 1, onclick: () => move(page - 1)}, "Previous page"),
      el("span", {id: "page-of"}, `page ${page} of ${found.pages}`),
      el("button", {type: "button", id: "next-page", disabled: page >= found.pages, onclick: () => move(page + 1)}, "Next page")),
  );
  section.scrollIntoView({block: "start"});
}

// ------------------------------------------------------------------ controls

function addMonths(month, delta) {
  const [y, m] = month.split("-").map(Number);
  const d = new Date(Date.UTC(y, m - 1 + delta, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

function shownMonth() {
  // the month the switcher stands on: the view's, else the month of as_of or of today
  const view = currentView();
  return view.month || (view.as_of || session.today).slice(0, 7);
}

function syncControls(view) {
  const kind = view.month ? "calendar" : view.start && view.end ? "custom"
    : /^\d+d$/.test(view.period || "") && !["7d", "30d", "90d"].includes(view.period) ? "nd" : (view.period || "30d");
  $("#period").value = kind;
  $("#nd-control").hidden = kind !== "nd";
  $("#custom-control").hidden = kind !== "custom";
  if (kind === "nd") $("#days").value = parseInt(view.period, 10);
  if (view.start) $("#start").value = view.start;
  if (view.end) $("#end").value = view.end;
  $("#month-label").textContent = shownMonth();
  $("#tz").value = view.tz || session.time_zone;
  for (const option of $("#agents").options) option.selected = view.agents.includes(option.value);
}

function setupControls() {
  const period = {period: null, start: null, end: null, month: null, drill: null};
  $("#controls").addEventListener("submit", (event) => event.preventDefault());  // Enter: the change event does it
  $("#period").addEventListener("change", (event) => {
    const kind = event.target.value;
    $("#nd-control").hidden = kind !== "nd";
    $("#custom-control").hidden = kind !== "custom";
    if (kind === "custom") return;  // wait for the dates
    if (kind === "nd") go({...currentView(), ...period, period: `${$("#days").value}d`});
    else if (kind === "calendar") go({...currentView(), ...period, month: shownMonth()});
    else go({...currentView(), ...period, period: kind});
  });
  $("#days").addEventListener("change", () => go({...currentView(), ...period, period: `${$("#days").value}d`}));
  $("#apply-dates").addEventListener("click", () => {
    if ($("#start").value && $("#end").value) go({...currentView(), ...period, start: $("#start").value, end: $("#end").value});
  });
  $("#prev-month").addEventListener("click", () => go({...currentView(), ...period, month: addMonths(shownMonth(), -1)}));
  $("#next-month").addEventListener("click", () => go({...currentView(), ...period, month: addMonths(shownMonth(), 1)}));
  $("#agents").addEventListener("change", (event) => {
    go({...currentView(), drill: null, versions: null, agents: [...event.target.selectedOptions].map((o) => o.value)});
  });
  $("#all-agents").addEventListener("click", () => go({...currentView(), drill: null, versions: null, agents: []}));
  $("#tz").addEventListener("change", (event) => {
    const zone = event.target.value.trim();
    go({...currentView(), tz: zone && zone !== session.time_zone ? zone : null});
  });
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  $("#zones").replaceChildren(...["UTC", ...zones].map((z) => el("option", {value: z})));
  $("#agents").replaceChildren(...session.agents.map((a) => el("option", {value: a.id}, a.name ? `${a.name} (${a.id})` : a.id)));
  window.addEventListener("popstate", show);
}

// ------------------------------------------------------------------ the page

function showError(message) {
  const box = $("#error");
  box.hidden = !message;
  box.textContent = message || "";
}

let renders = 0;  // only the newest view is drawn: an answer to an older one is dropped

async function show() {
  const view = currentView();
  const mine = ++renders;
  main.dataset.ready = "0";
  main.setAttribute("aria-busy", "true");
  syncControls(view);
  try {
    const doc = await getJson("/app/metrics", periodParams(view));
    if (mine !== renders) return;
    window.__metricsDocument = doc;
    const p = doc.period;
    const countedAt = new Intl.DateTimeFormat("en-CA", {timeZone: doc.time_zone, dateStyle: "short", timeStyle: "short", hourCycle: "h23"});
    const soFar = p.partial ? ` (so far: counted up to ${countedAt.format(new Date(doc.as_of))})` : "";
    $("#period-line").textContent = `${p.label}: ${p.start_date} to ${p.end_date}${soFar}, time zone ${doc.time_zone}, `
      + `${doc.scope.agents ? `agents ${doc.scope.agents.join(", ")}` : "all agents"}; compared with ${doc.previous_period.start_date} to ${doc.previous_period.end_date}.`;
    $("#note").hidden = !doc.note;
    $("#note").textContent = doc.note || "";
    const sections = {overview: renderOverview, engagement: renderEngagement, performance: renderPerformance,
      cost: renderCost, tokens: renderTokens, health: renderHealth, goals: renderGoals, deployments: renderDeployments};
    for (const [id, render] of Object.entries(sections)) $(`#${id} .body`).replaceChildren(...render(doc).filter(Boolean));
    await renderVersions(view, mine);
    if (mine !== renders) return;
    await renderMessages(view);
    showError(null);
  } catch (error) {
    if (mine !== renders) return;
    if (error instanceof LoginNeeded) return showLogin();
    showError(error.message);
  }
  if (mine !== renders) return;
  main.removeAttribute("aria-busy");
  await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
  if (mine !== renders) return;
  window.__renderedAt = performance.now();
  main.dataset.ready = "1";
}

function showLogin() {
  $("#login").hidden = false;
  $("#controls").hidden = true;
  main.hidden = true;
  $("#logout").hidden = true;
  $("#token").focus();
  main.dataset.ready = "login";
}

function showSession() {
  const age = session.data_as_of ? new Date(session.data_as_of).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "no build yet";
  $("#as-of").textContent = `Data as of ${age} (the last successful build).`;
  $("#as-of").dataset.asOf = session.data_as_of || "";
  const pending = $("#pending");
  pending.hidden = !session.waiting_files;
  pending.textContent = session.waiting_files
    ? `${session.waiting_files} landed file(s) not built yet (the newest ${Math.round(session.newest_waiting_file_age_s)} s old): their data is not shown until the next build.`
    : "";
  $("#open-note").hidden = session.access !== "open";
  $("#logout").hidden = session.access !== "token";
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = new URLSearchParams({token: $("#token").value});
  const response = await fetch("/login", {method: "POST", body, credentials: "same-origin"});
  $("#token").value = "";
  if (!response.ok) {
    const answer = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
    $("#login-error").textContent = `Refused: ${answer.error}`;
    return;
  }
  location.reload();
});

async function start() {
  try {
    session = await getJson("/app/session", new URLSearchParams());
  } catch (error) {
    showError(error.message);
    main.dataset.ready = "error";
    return;
  }
  if (session.access === "none") return showLogin();
  showSession();
  $("#controls").hidden = false;
  main.hidden = false;
  setupControls();
  await show();
}

start();
