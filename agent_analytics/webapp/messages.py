"""The message audit behind a figure of the dashboard: the messages of a period (a day, an
hour of the day, an agent, a status), newest first, one page at a time.

Everything is one DuckDB query over fct_messages (and the page's tool calls): the filtered
count and one page of rows, never the whole list in Python. The order is stable
(occurred_at, then message_id, both descending), so page N of the same question always holds
the same messages while no build adds any.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import duckdb
import pandas as pd

from agent_analytics.periods import Period, iso

MAX_PAGE_SIZE = 500
MAX_PAGE = 1_000_000  # keeps the offset a small integer
DEFAULT_PAGE_SIZE = 50
BUCKET_US = 15 * 60 * 1_000_000  # every IANA zone's offset is a whole number of quarter hours
STATUSES = ("ok", "error")
COLUMNS = (
    "occurred_at", "message_id", "user_id", "agent_id", "agent_version", "status", "error_type",
    "response_time_ms", "llm_calls", "tool_calls", "input_tokens", "output_tokens", "total_tokens",
    "cost_usd", "tools",
)


class MessagesError(ValueError):
    """A drill-down request we cannot answer; one line for the user."""


@dataclass(frozen=True)
class MessageFilter:
    """Which messages: those of `period`, of these agents (None: all), at this local hour of
    the day (0-23, None: any), with this status (None: any); and which page of them."""

    period: Period
    agents: list[str] | None = None
    hour: int | None = None
    status: str | None = None
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def __post_init__(self):
        if self.hour is not None and not 0 <= self.hour <= 23:
            raise MessagesError(f"hour must be 0-23, not {self.hour}")
        if self.status is not None and self.status not in STATUSES:
            raise MessagesError(f"status must be one of {', '.join(STATUSES)}, not {self.status!r}")
        if not 1 <= self.page <= MAX_PAGE:
            raise MessagesError(f"page must be 1-{MAX_PAGE}, not {self.page}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise MessagesError(f"page_size must be 1-{MAX_PAGE_SIZE}, not {self.page_size}")


def hour_buckets(period: Period, hour: int) -> list[int]:
    """The 15-minute UTC buckets (epoch microseconds // BUCKET_US) of [start, end) that fall
    in local hour `hour` of the period's time zone."""
    stamps = pd.date_range(pd.Timestamp(period.start).floor("15min"), pd.Timestamp(period.end), freq="15min",
                           inclusive="left")
    local_hours = stamps.tz_convert(period.tz).hour
    return [int(b) for b in (stamps.as_unit("us").asi8 // BUCKET_US)[local_hours == hour]]


QUERY = f"""
with chosen as (
    select message_id, occurred_at, user_id, agent_id, agent_version, status, error_type,
           response_time_ms, llm_call_count, tool_call_count, input_tokens, output_tokens, total_tokens,
           cost_usd
    from fct_messages
    where occurred_at >= $start and occurred_at < $end
      and ($agents is null or list_contains($agents, agent_id))
      and ($error is null or is_error = $error)
      and ($buckets is null or list_contains($buckets, epoch_us(occurred_at) // {BUCKET_US}))
),
page as (
    select *, count(*) over () as total
    from chosen
    order by occurred_at desc, message_id desc
    limit $limit offset $offset
),
tools as (
    select t.message_id, list(distinct t.tool_name order by t.tool_name) as tools
    from fct_tool_calls t
    where t.message_date between $first_day and $last_day
      and t.message_id in (select message_id from page)
    group by t.message_id
)
select page.occurred_at, page.message_id, page.user_id, page.agent_id, page.agent_version, page.status,
       page.error_type, page.response_time_ms, page.llm_call_count, page.tool_call_count, page.input_tokens,
       page.output_tokens, page.total_tokens, cast(page.cost_usd as double), coalesce(tools.tools, []),
       page.total
from page left join tools on tools.message_id = page.message_id
order by page.occurred_at desc, page.message_id desc
"""
COUNT = f"""
select count(*) from fct_messages
where occurred_at >= $start and occurred_at < $end
  and ($agents is null or list_contains($agents, agent_id))
  and ($error is null or is_error = $error)
  and ($buckets is null or list_contains($buckets, epoch_us(occurred_at) // {BUCKET_US}))
"""


def list_messages(con: duckdb.DuckDBPyConnection, chosen: MessageFilter) -> dict:
    """One page of the messages `chosen` selects, with their count and the page arithmetic."""
    period = chosen.period
    start, end = period.start.replace(tzinfo=None), period.end.replace(tzinfo=None)
    params = {
        "start": start,
        "end": end,
        "agents": chosen.agents,
        "error": None if chosen.status is None else chosen.status == "error",
        "buckets": None if chosen.hour is None else hour_buckets(period, chosen.hour),
    }
    rows = con.execute(QUERY, {
        **params,
        "limit": chosen.page_size,
        "offset": (chosen.page - 1) * chosen.page_size,
        # a tool call's day is its own, at most a day from its message's (a message before midnight)
        "first_day": (start - timedelta(days=1)).date(),
        "last_day": (end + timedelta(days=1)).date(),
    }).fetchall()
    total = rows[0][-1] if rows else con.execute(COUNT, params).fetchone()[0]
    return {
        "period": {"label": period.label, "start": iso(period.start), "end": iso(period.end), "time_zone": period.tz},
        "filters": {"agents": chosen.agents, "hour": chosen.hour, "status": chosen.status},
        "total": int(total),
        "page": chosen.page,
        "page_size": chosen.page_size,
        "pages": max(1, -(-int(total) // chosen.page_size)),
        "messages": [_message(row) for row in rows],
    }


def _message(row: tuple) -> dict:
    values = dict(zip(COLUMNS, row[:-1], strict=True))
    values["occurred_at"] = values["occurred_at"].isoformat(timespec="milliseconds") + "Z"
    values["response_time_ms"] = None if values["response_time_ms"] is None else float(values["response_time_ms"])
    values["cost_usd"] = round(values["cost_usd"], 10)
    return values
