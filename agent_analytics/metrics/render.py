"""The metrics document as terminal text: the guide's six sections, at most 100 columns."""

from __future__ import annotations

from agent_analytics.deployments.render import section_lines
from agent_analytics.metrics.budget_text import budget_lines, budgets_heading, budgets_problem
from agent_analytics.metrics.formatting import (
    NO_DATA,
    aligned_table,
    change,
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
from agent_analytics.metrics.render_users import hour_lines, users_lines

WIDTH = 100
BAR = 30


def _bar(share: float) -> str:
    full = share / 100 * BAR
    return "█" * int(full) + ("▌" if full - int(full) >= 0.5 else "")


def _section(title: str) -> list[str]:
    return ["", f"== {title} " + "=" * max(0, WIDTH - len(title) - 4)]


def _series(values: list[tuple[str, float]], fmt) -> list[str]:
    top = max((v for _, v in values), default=0) or 1
    return [f"  {label:<12} {fmt(v):>10} {_bar(v / top * 100)}" for label, v in values]


def _pct_delta(value: float | None) -> str:
    """A change in percent, signed ('+12%'); empty when there is none (no previous value)."""
    return "" if value is None else f"{value:+.0f}%"


def _pp(value: float | None) -> str:
    """A change in percentage points, signed ('+0.35 pp'); empty when there is none."""
    return "" if value is None else f"{value:+.2f} pp"


def _delta(metric: dict) -> str:
    if metric["trend"] == "new":
        return "new"
    return _pp(metric["change_pp"]) if "change_pp" in metric else _pct_delta(metric["change_pct"])


def render_table(doc: dict) -> str:
    period, prev_label = doc["period"], "previous period"
    scope = ", ".join(doc["scope"]["agents"]) if doc["scope"]["agents"] else "all agents"
    partial = f", partial: up to {period['end']}" if period["partial"] else ""
    out = [
        f"Agent analytics  {period['label']} ({period['start_date']} .. {period['end_date']}, {doc['time_zone']}{partial})"
        f"  scope: {scope}",
        f"as of {doc['as_of']}",
    ]
    if doc["note"]:
        out.append(f"note: {doc['note']}")

    o = doc["overview"]
    out += _section("Overview")
    dau_label = f"DAU {o['dau']['date']}" + (" (so far)" if o["dau"]["partial"] else "")
    for label, key, fmt in (
        ("Active users", "active_users", count),
        (dau_label, "dau", count),
        ("Total sessions", "sessions", count),
        ("Messages", "messages", count),
        ("Active agents", "active_agents", count),
        ("Total costs", "cost_usd", money),
        ("Error rate", "error_rate_pct", percent),
    ):
        out.append(f"  {label + ':':<26} {fmt(o[key]['value']):>12} {change(o[key], prev_label)}".rstrip())

    g = doc["goals"]
    if g["items"] or g["problem"]:
        out += _section("Goals")
        if g["problem"]:
            out.append(f"  goals file not used: {g['problem']}")
        for goal in g["items"]:
            out.append(f"  {goal_label(goal)[:40]:<40} {goal_status(goal):<9} {goal_progress(goal)}".rstrip())
            out.append(f"    {goal_target(goal)}: {goal_value(goal)}"[:WIDTH])
    if doc["budgets"]["items"] or budgets_problem(doc):
        out += _section(budgets_heading(doc))
        out += [f"  {budgets_problem(doc)}"] if budgets_problem(doc) else []
        for label, status, used, forecast in budget_lines(doc):
            out.append(f"  {label[:40]:<40} {status:<13} {used}"[:WIDTH].rstrip())
            out.append(f"    {forecast}"[:WIDTH])

    e = doc["engagement"]
    out += _section("User engagement")
    per_session = NO_DATA if e["messages_per_session"] is None else f"{e['messages_per_session']:.1f}"
    out.append(f"  Sessions: {count(e['sessions'])}   average duration: {duration(e['avg_session_duration_ms'])}"
               f"   messages per session: {per_session}")
    out.append("  Daily active users (DAU / WAU / MAU)")
    series = e["series"][-14:]
    top = max((d["dau"] for d in series), default=0) or 1
    for d in series:
        mark = "*" if d["partial"] else " "
        out.append(f"  {d['date']}{mark} {d['dau']:>7,} {d['wau']:>7,} {d['mau']:>7,}  {_bar(d['dau'] / top * 100)}")
    if any(d["partial"] for d in series):
        out.append("  * partial day: counted up to the period's end")
    for title, key in (("Session duration", "session_duration_distribution"),
                       ("Messages per session", "messages_per_session_distribution")):
        out.append(f"  {title}")
        for b in e[key]:
            out.append(f"    {b['bucket']:<9} {_bar(b['share_pct']):<{BAR + 1}} {b['share_pct']:6.2f}%")

    perf = doc["performance"]
    out += _section("Agent performance")
    out.append(f"  Active agents: {perf['active_agents']}   average response: {ms(perf['avg_response_time_ms'])}"
               f"   error rate: {percent(perf['error_rate_pct'])}")
    out += aligned_table(
        ["Agent", "Sessions", "Messages", "vs prev", "Cost", "vs prev", "Error %", "vs prev", "Avg resp"],
        [[a["agent_label"][:26], count(a["sessions"]), count(a["messages"]), _delta(a["vs_previous"]["messages"]),
          money(a["cost_usd"]), _delta(a["vs_previous"]["cost_usd"]), percent(a["error_rate_pct"], 1),
          _delta(a["vs_previous"]["error_rate_pct"]), ms(a["avg_response_time_ms"])]
         for a in perf["agents"]],
        "lrrrrrrrr",
    )
    out.append("  Response time by hour (average, P95)")
    top = max((h["p95_response_time_ms"] or 0 for h in perf["hourly"]), default=0) or 1
    for h in perf["hourly"]:
        if h["messages"]:
            out.append(f"    {h['hour']:02d}:00  {ms(h['avg_response_time_ms']):>7} {ms(h['p95_response_time_ms']):>7}  "
                       f"{_bar((h['avg_response_time_ms'] or 0) / top * 100)}")
    out += hour_lines(doc, _bar)
    if perf["tools"]:
        out.append("  Tool latency")
        out += aligned_table(
            ["Tool", "Calls", "Avg", "P95", "Errors"],
            [[t["tool_name"][:24], count(t["calls"]), ms(t["avg_latency_ms"]), ms(t["p95_latency_ms"]),
              f"{t['error_share_pct']:.1f}%"] for t in perf["tools"]],
            "lrrrr",
        )

    c = doc["cost"]
    out += _section("Cost analysis")
    for p in c["by_provider"]:
        out.append(f"  {p['provider']:<14} {money(p['cost_usd']):>12} ({p['share_pct']:5.1f}%) {_pct_delta(p['change_pct']):>6}"
                   f" {_bar(p['share_pct'])}")
    out.append("  Cost per agent (top 5)")
    top_agents = c["by_agent"][:5]
    for a in top_agents:
        out.append(f"    {a['agent_label'][:30]:<30} {money(a['cost_usd']):>12} {_pct_delta(a['change_pct']):>6}"
                   f" {_bar(a['share_pct'])}")
    out.append("  Cost by model (top 8)")
    for m in c["by_model"][:8]:
        out.append(f"    {m['model'][:28]:<28} {money(m['cost_usd']):>12} {_pct_delta(m['change_pct']):>6}"
                   f" {_bar(m['share_pct'])}")
    out.append("  Cost by week")
    out += ["  " + line for line in _series([(w["week_start"], w["cost_usd"]) for w in c["by_week"]], money)]
    out.append(f"  Cost per message: {money(c['cost_per_message_usd'])}   per session: {money(c['cost_per_session_usd'])}"
               f"   per user: {money(c['cost_per_user_usd'])}")
    u = c["unpriced"]
    if u["calls"]:
        out.append(f"  Unpriced (no known price, not in the totals): {u['calls']:,} calls, {u['total_tokens']:,} tokens")
    f = c["forecast"]
    trend = "n/a" if f["trend_pct"] is None else f"{f['trend_pct']:+.0f}% week-over-week"
    out.append(f"  Forecast: {money(f['weekly_spend_usd'])}/week, projected monthly ~{money(f['projected_monthly_usd'])},"
               f" trend {trend}")

    t = doc["tokens"]
    out += _section("Token usage")
    out.append(f"  Total: {t['total_tokens']:,} tokens   prompt {t['input_tokens']:,} ({t['input_share_pct']:.0f}%)"
               f"   completion {t['output_tokens']:,} ({t['output_share_pct']:.0f}%)")
    per_message = NO_DATA if t["avg_tokens_per_message"] is None else f"{t['avg_tokens_per_message']:,.0f}"
    out.append(f"  Average tokens per message: {per_message}   total {change(t['vs_previous']['total_tokens'], prev_label)}")
    out += aligned_table(
        ["Agent", "Prompt", "Completion", "Total", "vs prev", "Per message"],
        [[a["agent_label"][:30], tokens(a["input_tokens"]), tokens(a["output_tokens"]), tokens(a["total_tokens"]),
          _pct_delta(a["change_pct"]), f"{a['avg_tokens_per_message']:,.0f}"] for a in t["by_agent"]],
        "lrrrrr",
    )
    out.append("  Tokens by model")
    for m in t["by_model"][:8]:
        out.append(f"    {m['model'][:28]:<28} {m['total_tokens']:>14,} ({m['share_pct']:5.1f}%) {_pct_delta(m['change_pct']):>6}"
                   f" {_bar(m['share_pct'])}")

    out += users_lines(doc, _section, _bar)

    h = doc["health"]
    out += _section("System health")
    for w in h["uptime"]:
        out.append(f"  Uptime {w['window']:<4} {percent(w['uptime_pct']):>8}  {w['status']:<9} {_pp(w['change_pp']):>10}"
                   f"  incidents: {w['incidents']} ({w['downtime_minutes']:.1f} min)")
    for i in h["incidents"][:5]:
        ended = i["ended_at"][:16].replace("T", " ") if i["ended_at"] else "ongoing"
        out.append(f"    incident {i['component'][:20]}: {i['started_at'][:16].replace('T', ' ')} -> {ended} UTC"
                   f" ({i['downtime_minutes']:.1f} min)")
    for w in h["error_rate"]:
        out.append(f"  Error rate {w['window']:<8} {percent(w['error_rate_pct']):>8}  {w['status']:<10} {_pp(w['change_pp']):>10}"
                   f"  ({w['messages']:,} messages)")
    r = h["response_time"]
    out.append("  " + "   ".join(f"{q.upper()} {ms(r[f'{q}_ms'])} {r[f'{q}_status']} {_pct_delta(r[f'{q}_change_pct'])}".rstrip()
                                for q in ("p50", "p95", "p99")))
    v = h["request_volume"]
    headroom = "" if v["headroom_pct"] is None else f" ({v['headroom_pct']:.0f}% headroom)"
    out.append(f"  Request volume: current {per_minute(v['current_per_min'])}, peak today {per_minute(v['peak_per_min_today'])},"
               f" capacity {per_minute(v['capacity_per_min'])}{headroom}")
    for q in h["queues"]:
        out.append(f"  Queue {q['queue']}: latest {q['latest_depth']}, average {q['avg_depth']:.1f},"
                   f" max {q['max_depth']}, P95 {q['p95_depth']:.1f}")
    if doc["deployments"]["items"]:
        out += _section("Deployments") + section_lines(doc["deployments"])
    return "\n".join(line.rstrip() for line in out) + "\n"
