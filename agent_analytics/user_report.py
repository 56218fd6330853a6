"""One user's activity over a period: `agent-analytics metrics --user ID [PERIOD]` and
`GET /v1/analytics/users/{user_id}`. The figures come from agent_analytics/metrics/users.py
(the user-day mart); this module reads the period and scope as `metrics` does and renders the
terminal view."""

from __future__ import annotations

from agent_analytics.exports import MetricsQuery, check_agents, open_marts
from agent_analytics.metrics.compute import _plain
from agent_analytics.metrics.formatting import count as integer
from agent_analytics.metrics.formatting import money
from agent_analytics.metrics.users import UnknownUserError, user_activity
from agent_analytics.settings import Settings

MAX_USER_ID_LENGTH = 200  # the longest id the contract accepts


class UserNotFoundError(LookupError):
    """No message of this user in the warehouse; one line for the user (the id as given is not
    repeated when ids are hashed in outputs)."""


def user_document(settings: Settings, query: MetricsQuery, user_id: str, *, lock_timeout_s: float = 3600.0) -> dict:
    """The user's activity (JSON-ready). PeriodError / ExportError / NoWarehouseError as
    metrics_document; UserNotFoundError for a user without messages."""
    from agent_analytics.periods import check_tz, parse_as_of, parse_period

    tz = check_tz(query.tz or settings.company_tz)
    as_of = parse_as_of(query.as_of, tz)
    period = parse_period(query.period, query.start, query.end, query.month, as_of, tz)
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise UserNotFoundError(f"a user id is 1 to {MAX_USER_ID_LENGTH} characters")
    with open_marts(settings, lock_timeout_s=lock_timeout_s) as con:
        agents = check_agents(con, query.agents)
        try:
            return _plain(user_activity(con, user_id, period, agents, settings))
        except UnknownUserError:
            shown = "this user" if settings.user_id_hash_key else repr(user_id)
            raise UserNotFoundError(f"no messages of {shown} in the warehouse") from None


def render_user(doc: dict) -> str:
    t = doc["totals"]
    rate = "no data" if doc["error_rate_pct"] is None else f"{doc['error_rate_pct']:.2f}%"
    lines = [
        f"User {doc['user_id']}  {doc['period']['label']} ({doc['period']['start_date']} .. {doc['period']['end_date']})",
        f"  messages {integer(t['messages'])}  sessions {integer(t['sessions'])}  errors {integer(t['errors'])} ({rate})",
        f"  cost {money(t['cost_usd'])}  tokens {integer(t['total_tokens'])} "
        f"(input {integer(t['input_tokens'])}, output {integer(t['output_tokens'])})",
        f"  agents used: {', '.join(doc['agents_used']) or 'none in this period'}",
        f"  first seen {doc['first_seen_at']}; in this period first {doc['first_message_in_period_at'] or '-'}, "
        f"last {doc['last_message_in_period_at'] or '-'}",
        "",
        f"  {'date':<12}{'messages':>10}{'sessions':>10}{'errors':>8}{'cost':>12}{'tokens':>10}",
    ]
    for d in doc["by_day"]:
        mark = "*" if d["partial"] else ""
        lines.append(f"  {d['date'] + mark:<12}{integer(d['messages']):>10}{integer(d['sessions']):>10}"
                     f"{integer(d['errors']):>8}{money(d['cost_usd']):>12}{integer(d['total_tokens']):>10}")
    if any(d["partial"] for d in doc["by_day"]):
        lines.append("  * day cut at the period's end")
    return "\n".join(lines) + "\n"
