"""Terminal lines of the users and hour-by-hour sections (schema 3.2), appended by render.py."""

from __future__ import annotations

from agent_analytics.metrics.formatting import aligned_table, count, money, ms, percent

HOURS_SHOWN = 24
BUSIEST_SHOWN = 5


def hour_lines(doc: dict, bar) -> list[str]:
    """The last 24 hours of the window hour by hour, and the busiest hours with their error
    rate (errors spiking at peak hours shows as a high rate on the busiest rows)."""
    hours = doc["performance"]["hour_by_hour"]
    if not any(h["messages"] for h in hours):
        return []
    out = ["  Hour by hour (last 24 hours of the period, hours with messages): messages, errors, error rate, P95"]
    shown = [h for h in hours[-HOURS_SHOWN:] if h["messages"]]
    top = max((h["messages"] for h in shown), default=0) or 1
    for h in shown:
        mark = "*" if h["partial"] else " "
        out.append(f"    {h['date']} {h['hour']:02d}:00{mark} {count(h['messages']):>8} {count(h['errors']):>6}"
                   f" {percent(h['error_rate_pct']):>8} {ms(h['p95_response_time_ms']):>8}  {bar(h['messages'] / top * 100)}")
    busiest = sorted((h for h in hours if h["messages"]), key=lambda h: (-h["messages"], h["hour_start"]))[:BUSIEST_SHOWN]
    out.append("  Busiest hours of the period")
    for h in busiest:
        out.append(f"    {h['date']} {h['hour']:02d}:00  {count(h['messages']):>8} messages  error rate"
                   f" {percent(h['error_rate_pct']):>8}  P95 {ms(h['p95_response_time_ms'])}")
    return out


def users_lines(doc: dict, section, bar) -> list[str]:
    users = doc["users"]
    out = section(f"Users (top {users['top_n']}" + (", ids hashed)" if users["user_ids_hashed"] else ")"))
    for title, key in (("by messages", "by_messages"), ("by sessions", "by_sessions"), ("by cost", "by_cost")):
        rows = users["top_users"][key]
        if not rows:
            continue
        out.append(f"  Top users {title}")
        out += aligned_table(
            ["#", "User", "Messages", "Sessions", "Errors", "Cost", "Agents", "Days"],
            [[str(r["rank"]), r["user_id"][:30], count(r["messages"]), count(r["sessions"]), count(r["errors"]),
              money(r["cost_usd"]), str(r["agents"]), str(r["active_days"])] for r in rows],
            "rlrrrrrr",
        )
    out.append("  New vs returning users per day")
    days = users["new_vs_returning"][-14:]
    top = max((d["active_users"] for d in days), default=0) or 1
    for d in days:
        mark = "*" if d["partial"] else " "
        out.append(f"    {d['date']}{mark} new {d['new_users']:>6,}  returning {d['returning_users']:>6,}"
                   f"  {bar(d['new_users'] / top * 100)}|{bar(d['returning_users'] / top * 100)}")
    return out
