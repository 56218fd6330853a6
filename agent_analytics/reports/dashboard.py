"""The dashboard: one self-contained HTML page per period, and an index linking them.

Pages hold the guide's six sections (overview, user engagement, agent performance, cost
analysis, token usage, system health) rendered from one metrics document. Charts are inline
SVG, styles inline, no script and no network: a page opens offline from the file system.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from agent_analytics.deployments.render import EFFECTS, deployed, effect, window_text
from agent_analytics.metrics.formatting import (
    NO_DATA,
    change_amount,
    count,
    duration,
    goal_label,
    goal_progress,
    goal_status,
    goal_target,
    goal_value,
    money,
    ms,
    per_minute,
    percent,
    tokens,
)
from agent_analytics.periods import Page
from agent_analytics.reports import charts as chart_lib
from agent_analytics.reports.budget_html import CSS as BUDGET_CSS
from agent_analytics.reports.budget_html import budgets_html

GOOD = {"Excellent", "Good", "Fast", "Healthy"}
WARN = {"Acceptable"}
ARROW = {"up": "▲", "down": "▼", "unchanged": "▶", "new": "▲"}
# For these, a rise is bad news (shown red); for the rest a rise is good news (green).
RISE_IS_BAD = {"cost_usd", "error_rate_pct", "avg_response_time_ms", "response_time_ms"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;background:#f8fafc;color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:16px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}
nav{padding:8px 28px;background:#e2e8f0;font-size:14px} nav a{margin-right:16px;color:#1d4ed8}
nav a.current{font-weight:bold;color:#0f172a;text-decoration:none}
main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;margin:18px 0;padding:12px 18px}
h2{font-size:18px;margin:4px 0 12px} h3{font-size:14px;margin:14px 0 6px;color:#334155}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:12px}
.kpi{border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px;background:#f8fafc}
.kpi .label{font-size:12px;color:#475569} .kpi .value{font-size:24px;font-weight:600;margin:2px 0}
.kpi .change{font-size:12px} .pos{color:#047857} .neg{color:#b91c1c} .flat{color:#475569}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:12px}
.chart svg{width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{padding:4px 10px;border-bottom:1px solid #e2e8f0;text-align:right} th{background:#f1f5f9}
th:first-child,td:first-child{text-align:left}
.status{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.status.good{background:#d1fae5;color:#065f46} .status.warn{background:#fef3c7;color:#92400e}
.status.bad{background:#fee2e2;color:#991b1b} .status.none{background:#e2e8f0;color:#475569}
.facts{display:flex;flex-wrap:wrap;gap:8px 28px;font-size:14px;margin:6px 0} .facts b{font-weight:600}
.note{background:#fef3c7;padding:8px 12px;border-radius:6px}
.goal{display:grid;grid-template-columns:minmax(160px,1fr) 2fr 90px;gap:4px 14px;align-items:center;font-size:14px;margin:6px 0}
.goal .track{background:#e2e8f0;height:12px;border-radius:6px;overflow:hidden}
.goal .fill{height:12px} .goal .fill.on{background:#10b981} .goal .fill.off{background:#ef4444}
.goal .detail{grid-column:1/4;font-size:12px;color:#475569}
footer{color:#64748b;font-size:12px;padding:0 28px 24px}
"""


def status_badge(label: str) -> str:
    kind = "good" if label in GOOD else "warn" if label in WARN else "none" if label == "No data" else "bad"
    return f'<span class="status {kind}">{escape(label)}</span>'


def change_html(metric: dict, key: str) -> str:
    trend, amount = metric["trend"], change_amount(metric)
    if trend == "no data":
        return '<span class="change flat">no previous value</span>'
    text = (trend if trend in ("new", "unchanged") else "unchanged") if amount is None else f"{ARROW[trend]} {amount}"
    if trend in ("up", "new"):
        css = "neg" if key in RISE_IS_BAD else "pos"
    elif trend == "down":
        css = "pos" if key in RISE_IS_BAD else "neg"
    else:
        css = "flat"
    return f'<span class="change {css}">{escape(text)} vs previous period</span>'


def change_cell(change_pct: float | None, key: str = "") -> str:
    """A row's change in percent as a small coloured cell ('' without a previous value)."""
    if change_pct is None:
        return ""
    trend = "up" if change_pct > 0 else "down" if change_pct < 0 else "unchanged"
    return change_html({"trend": trend, "change_pct": change_pct}, key).replace(" vs previous period", "")


def table(headers: list[str], rows: Iterable[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def facts(items: list[tuple[str, str]]) -> str:
    return '<div class="facts">' + "".join(f"<span>{escape(k)}: <b>{v}</b></span>" for k, v in items) + "</div>"


def _kpis(doc: dict) -> str:
    o = doc["overview"]
    cards = []
    for label, key, fmt in (
        ("Active users", "active_users", count),
        ("Daily active users (last day" + (", so far)" if o["dau"]["partial"] else ")"), "dau", count),
        ("Sessions", "sessions", count),
        ("Messages", "messages", count),
        ("Active agents", "active_agents", count),
        ("Total cost", "cost_usd", money),
        ("Error rate", "error_rate_pct", percent),
    ):
        metric = o[key]
        cards.append(
            f'<div class="kpi" data-kpi="{key}"><div class="label">{escape(label)}</div>'
            f'<div class="value">{escape(fmt(metric["value"]))}</div>{change_html(metric, key)}</div>'
        )
    return '<div class="kpis">' + "".join(cards) + "</div>"


def _chart_grid(svgs: dict[str, str], names: list[str]) -> str:
    inner = "".join(f'<div class="chart" id="chart-{n}">{svgs[n]}</div>' for n in names if n in svgs)
    return f'<div class="charts">{inner}</div>' if inner else "<p>No data to chart in this period.</p>"


def _engagement(doc: dict, svgs: dict[str, str]) -> str:
    e = doc["engagement"]
    last = e["series"][-1] if e["series"] else {"dau": 0, "wau": 0, "mau": 0}
    return facts(
        [("DAU", count(last["dau"])), ("WAU", count(last["wau"])), ("MAU", count(last["mau"])),
         ("Sessions", count(e["sessions"])), ("Average session", duration(e["avg_session_duration_ms"])),
         ("Messages per session", NO_DATA if e["messages_per_session"] is None else f"{e['messages_per_session']:.1f}")]
    ) + _chart_grid(svgs, ["dau_trend", "session_duration", "messages_per_session"])


def _performance(doc: dict, svgs: dict[str, str]) -> str:
    perf = doc["performance"]
    out = facts(
        [("Active agents", count(perf["active_agents"])), ("Messages", count(perf["messages"])),
         ("Average response", ms(perf["avg_response_time_ms"])), ("Success rate", percent(perf["success_rate_pct"]))]
    )
    out += "<h3>Agent comparison</h3>" + table(
        ["Agent", "Sessions", "Messages", "Avg session", "Cost", "Error rate", "Avg response", "Tokens"],
        [[escape(a["agent_label"]),
          *(f"{fmt(a[k])} {change_html(a['vs_previous'][k], k).replace(' vs previous period', '')}" if k in a["vs_previous"]
            else fmt(a[k])
            for k, fmt in (("sessions", count), ("messages", count), ("avg_session_duration_ms", duration), ("cost_usd", money),
                           ("error_rate_pct", percent), ("avg_response_time_ms", ms), ("total_tokens", tokens)))]
         for a in perf["agents"]],
    )
    out += _chart_grid(svgs, ["response_by_hour", "hour_by_hour"])
    if perf["tools"]:
        out += "<h3>Tool latency</h3>" + table(
            ["Tool", "Calls", "Average", "P95", "Errors"],
            [[escape(t["tool_name"]), count(t["calls"]), ms(t["avg_latency_ms"]), ms(t["p95_latency_ms"]),
              f"{t['error_share_pct']:.1f}%"] for t in perf["tools"]],
        )
    return out


def _cost(doc: dict, svgs: dict[str, str]) -> str:
    c = doc["cost"]
    f = c["forecast"]
    trend = "n/a" if f["trend_pct"] is None else f"{f['trend_pct']:+.1f}% week over week"
    out = facts(
        [("Total", money(c["total_usd"])), ("Per message", money(c["cost_per_message_usd"])),
         ("Per session", money(c["cost_per_session_usd"])), ("Per user", money(c["cost_per_user_usd"]))]
    )
    out += "<h3>By provider</h3>" + table(
        ["Provider", "Cost", "Change", "Share", "Calls", "Unpriced calls"],
        [[escape(p["provider"]), money(p["cost_usd"]), change_cell(p["change_pct"], "cost_usd"), f"{p['share_pct']:.2f}%",
          count(p["calls"]), count(p["unpriced_calls"])]
         for p in c["by_provider"]],
    )
    out += "<h3>By agent</h3>" + table(
        ["Agent", "Cost", "Change", "Share"],
        [[escape(a["agent_label"]), money(a["cost_usd"]), change_cell(a["change_pct"], "cost_usd"), f"{a['share_pct']:.2f}%"]
         for a in c["by_agent"]],
    )
    out += "<h3>By model</h3>" + table(
        ["Model", "Provider", "Cost", "Change", "Share", "Calls"],
        [[escape(m["model"]), escape(m["provider"]), money(m["cost_usd"]), change_cell(m["change_pct"], "cost_usd"),
          f"{m['share_pct']:.2f}%", count(m["calls"])]
         for m in c["by_model"]],
    )
    out += _chart_grid(svgs, ["cost_by_provider", "cost_trend", "cost_top_agents"])
    out += "<h3>Forecast</h3>" + facts(
        [("Last 7 days", money(f["weekly_spend_usd"])), ("Projected monthly", money(f["projected_monthly_usd"])),
         ("Trend", escape(trend))]
    )
    u = c["unpriced"]
    if u["calls"]:
        out += (f'<p class="note">{count(u["calls"])} model calls ({count(u["total_tokens"])} tokens) have no known price '
                "and are not in the totals.</p>")
    return out


def _tokens(doc: dict, svgs: dict[str, str]) -> str:
    t = doc["tokens"]
    out = facts(
        [("Total", count(t["total_tokens"])), ("Prompt", f"{count(t['input_tokens'])} ({t['input_share_pct']:.1f}%)"),
         ("Completion", f"{count(t['output_tokens'])} ({t['output_share_pct']:.1f}%)"),
         ("Average per message", count(t["avg_tokens_per_message"]))]
    )
    out += f"<p>Total tokens {change_html(t['vs_previous']['total_tokens'], 'total_tokens')}</p>"
    out += _chart_grid(svgs, ["tokens_by_agent", "tokens_by_model"])
    out += "<h3>By agent</h3>" + table(
        ["Agent", "Prompt", "Completion", "Total", "Change", "Share"],
        [[escape(a["agent_label"]), count(a["input_tokens"]), count(a["output_tokens"]), count(a["total_tokens"]),
          change_cell(a["change_pct"]), f"{a['share_pct']:.2f}%"] for a in t["by_agent"]],
    )
    out += "<h3>By model</h3>" + table(
        ["Model", "Provider", "Prompt", "Completion", "Total", "Change", "Share"],
        [[escape(m["model"]), escape(m["provider"]), count(m["input_tokens"]), count(m["output_tokens"]),
          count(m["total_tokens"]), change_cell(m["change_pct"]), f"{m['share_pct']:.2f}%"] for m in t["by_model"]],
    )
    return out


def _pp(change_pp: float | None) -> str:
    return "" if change_pp is None else f"{change_pp:+.2f} pp"


def _minute(moment: str | None) -> str | None:
    """'2026-11-02T10:03:00Z' -> '2026-11-02 10:03'."""
    return None if moment is None else moment[:16].replace("T", " ")


def _health(doc: dict, svgs: dict[str, str]) -> str:
    h = doc["health"]
    out = "<h3>Uptime</h3>" + table(
        ["Window", "Uptime", "Change", "Status", "Incidents", "Downtime"],
        [[w["window"], percent(w["uptime_pct"]), _pp(w["change_pp"]), status_badge(w["status"]),
          count(w["incidents"]), f"{w['downtime_minutes']:.1f} min"] for w in h["uptime"]],
    )
    if h["incidents"]:
        out += "<h3>Incidents (last 30 days)</h3>" + table(
            ["Component", "Started (UTC)", "Ended (UTC)", "Downtime"],
            [[escape(i["component"]), escape(_minute(i["started_at"])), escape(_minute(i["ended_at"]) or "ongoing"),
              f"{i['downtime_minutes']:.1f} min"] for i in h["incidents"]],
        )
    out += "<h3>Error rate</h3>" + table(
        ["Window", "Error rate", "Change", "Status", "Messages"],
        [[w["window"], percent(w["error_rate_pct"]), _pp(w["change_pp"]), status_badge(w["status"]), count(w["messages"])]
         for w in h["error_rate"]],
    )
    r = h["response_time"]
    out += "<h3>Response time</h3>" + table(
        ["Percentile", "Response time", "Change", "Status"],
        [[name, ms(r[f"{key}_ms"]), change_cell(r[f"{key}_change_pct"], "response_time_ms"), status_badge(r[f"{key}_status"])]
         for name, key in (("P50", "p50"), ("P95", "p95"), ("P99", "p99"))],
    )
    v = h["request_volume"]
    out += "<h3>Request volume</h3>" + facts(
        [("Current", per_minute(v["current_per_min"])), ("Peak today", per_minute(v["peak_per_min_today"])),
         ("Capacity", per_minute(v["capacity_per_min"])), ("Headroom", percent(v["headroom_pct"], 0))]
    )
    if h["queues"]:
        out += "<h3>Queue depth</h3>" + table(
            ["Queue", "Latest", "Average", "P95", "Max"],
            [[escape(q["queue"]), count(q["latest_depth"]), f"{q['avg_depth']:.1f}", f"{q['p95_depth']:.1f}",
              count(q["max_depth"])]
             for q in h["queues"]],
        )
    return out + _chart_grid(svgs, ["request_volume", "queue_depth"])


def _goals(doc: dict, svgs: dict[str, str]) -> str:
    """A progress bar per goal: the compared value in percent of the target, up to 100% (on
    track green, off track red); what was compared, in words, below it."""
    g, out = doc["goals"], []
    if g["problem"]:
        out.append(f'<p class="note">The goals file was not used: {escape(g["problem"])}</p>')
    for goal in g["items"]:
        status = goal_status(goal)
        width = 0.0 if goal["progress_pct"] is None else max(0.0, min(goal["progress_pct"], 100.0))
        css = "on" if goal["on_track"] else "off"
        kind = "none" if goal["on_track"] is None else "good" if goal["on_track"] else "bad"
        progress = goal_progress(goal)
        out.append(
            f'<div class="goal" data-goal="{escape(goal["name"])}"><span><b>{escape(goal_label(goal))}</b></span>'
            f'<div class="track"><div class="fill {css}" style="width:{width:.1f}%"></div></div>'
            f'<span class="status {kind}">{escape(status)}</span>'
            f'<span class="detail">{escape(goal_target(goal))}: {escape(goal_value(goal))}'
            f'{"; " + progress if progress else ""}'
            f'{"; " + escape(goal["description"]) if goal["description"] else ""}</span></div>'
        )
    return "".join(out)


def _deployments(doc: dict, svgs: dict[str, str]) -> str:
    """The period's deployments: each metric before -> after (change, verdict); the time series
    above mark them."""
    rows = [[escape(deployed(item)), escape(item["agent_label"]), escape(item["version"]),
             escape(window_text(item)), *(escape(effect(item, name)) for name, _, _ in EFFECTS)]
            for item in doc["deployments"]["items"]]
    return (table(["Deployed", "Agent", "Version", "Windows", *(label for _, label, _ in EFFECTS)], rows)
            + f'<p class="note">Significance: the error rate\'s z-test; {escape(doc["deployments"]["rank_tests"])}.</p>')
def _bills(doc: dict, svgs: dict[str, str]) -> str:
    """Provider bills against the estimate, flagged lines marked (docs/bills.md)."""
    from agent_analytics.bills import BILL_HEADERS, bill_cells

    return table(BILL_HEADERS, ([escape(cell) for cell in bill_cells(line)] for line in doc["bills"]))
def _users(doc: dict, svgs: dict[str, str]) -> str:
    """Top users (by messages, sessions, cost) and new vs returning users per day."""
    users = doc["users"]
    out = "<p>User ids are shown as keyed hashes.</p>" if users["user_ids_hashed"] else ""
    for title, key in (("messages", "by_messages"), ("sessions", "by_sessions"), ("cost", "by_cost")):
        rows = users["top_users"][key]
        out += f"<h3>Top {users['top_n']} users by {title}</h3>" + (table(
            ["#", "User", "Messages", "Sessions", "Errors", "Cost", "Tokens", "Agents", "Active days"],
            [[str(r["rank"]), escape(r["user_id"]), count(r["messages"]), count(r["sessions"]), count(r["errors"]),
              money(r["cost_usd"]), tokens(r["total_tokens"]), count(r["agents"]), count(r["active_days"])] for r in rows],
        ) if rows else "<p>No users in this period.</p>")
    return out + _chart_grid(svgs, ["new_vs_returning"])


SECTIONS = (
    ("overview", "Overview", None),
    ("goals", "Goals", _goals),
    ("budgets", "Budgets", budgets_html),
    ("deployments", "Deployments", _deployments),
    ("engagement", "User engagement", _engagement),
    ("performance", "Agent performance", _performance),
    ("cost", "Cost analysis", _cost),
    ("bills", "Provider bills", _bills),
    ("tokens", "Token usage", _tokens),
    ("users", "Users", _users),
    ("health", "System health", _health),
)


def _previous_text(doc: dict) -> str:
    p = doc["previous_period"]
    return f"{p['start_date']} to {p['end_date']}" + (f" (up to {_minute(p['end'])} UTC)" if p["partial"] else "")


def render_page(page: Page, doc: dict, pages: list[Page]) -> str:
    """One dashboard page: the six sections of the document, charts inline."""
    svgs = {name: chart_lib.to_svg(chart.figure) for name, chart in chart_lib.charts(doc).items()}
    period = doc["period"]
    scope = ", ".join(doc["scope"]["agents"]) if doc["scope"]["agents"] else "all agents"
    nav = "".join(
        f'<a href="{p.slug}.html"{" class=current" if p.slug == page.slug else ""}>{escape(p.title)}</a>' for p in pages
    )
    body = []
    for key, title, render in SECTIONS:
        if key in ("goals", "budgets") and not (doc[key]["items"] or doc[key]["problem"]):
            continue  # no goals file (or no budgets in it): no section
        if key == "deployments" and not doc["deployments"]["items"]:
            continue
        if key == "bills" and not doc.get("bills"):
            continue  # no bill for the period's months: no section
        inner = _kpis(doc) if render is None else render(doc, svgs)
        body.append(f'<section id="{key}"><h2>{escape(title)}</h2>{inner}</section>')
    note = f'<p class="note">{escape(doc["note"])}</p>' if doc["note"] else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Agent analytics: {escape(page.title)}</title><style>{CSS}{BUDGET_CSS}</style></head><body>"
        f"<header><h1>Agent analytics: {escape(page.title)}</h1>"
        f"<p>{escape(period['start_date'])} to {escape(period['end_date'])} ({escape(doc['time_zone'])}), {escape(scope)}"
        f"{'; the last day so far' if period['partial'] else ''}; compared with {escape(_previous_text(doc))}."
        f" Data as of {escape(doc['as_of'])}.</p></header>"
        f'<nav><a href="index.html">Index</a>{nav}</nav><main>{note}{"".join(body)}</main>'
        f"<footer>Generated {escape(doc['generated_at'])} by agent-analytics from the metrics layer "
        f"(schema {escape(doc['schema_version'])}).</footer></body></html>\n"
    )


def render_index(pages: list[Page], docs: dict[str, dict]) -> str:
    rows = []
    for p in pages:
        o = docs[p.slug]["overview"]
        rows.append(
            [f'<a href="{p.slug}.html">{escape(p.title)}</a>', escape(docs[p.slug]["period"]["start_date"]),
             escape(docs[p.slug]["period"]["end_date"]), count(o["active_users"]["value"]), count(o["sessions"]["value"]),
             money(o["cost_usd"]["value"]), percent(o["error_rate_pct"]["value"])]
        )
    first = docs[pages[0].slug]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Agent analytics dashboards</title>"
        f"<style>{CSS}</style></head><body><header><h1>Agent analytics dashboards</h1>"
        f"<p>Time zone {escape(first['time_zone'])}. Data as of {escape(first['as_of'])}.</p></header><main><section>"
        "<h2>Periods</h2>"
        + table(["Period", "From", "To", "Active users", "Sessions", "Cost", "Error rate"], rows)
        + "</section></main></body></html>\n"
    )
