"""The deployments of a period and their windows before and after, at query time.

fct_deployments holds every deployment with its neighbours (the agent's previous and next
deployment). A window has the same length on both sides of the deployment: the window asked
for (default the mart's window_hours), clipped at the previous deployment, at the next one
and at "now" (the request's as-of time), whichever is nearest. Equal lengths keep the
volumes (messages, sessions) of the two windows comparable, not only the rates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb

from agent_analytics.exports import ExportError
from agent_analytics.metrics.labels import agent_label
from agent_analytics.periods import iso

WINDOW_PATTERN = re.compile(r"(\d+)([hd])")
MAX_WINDOW_HOURS = 24 * 366
CLIPPED_BY = ("next deployment", "now", "previous deployment")  # the order ties are named in


class WindowError(ExportError):
    """A --window / window value we cannot use; one line for the user."""


def parse_window(text: str) -> int:
    """`Nh` or `Nd` (N >= 1, at most a year) as hours."""
    match = WINDOW_PATTERN.fullmatch(text.strip())
    hours = int(match[1]) * (24 if match[2] == "d" else 1) if match else 0
    if not match or not 1 <= hours <= MAX_WINDOW_HOURS:
        raise WindowError(f"--window {text!r}: give hours or days, e.g. 12h or 7d (1h to 366d)")
    return hours


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    agent_id: str
    agent_label: str
    version: str
    previous_version: str | None
    description: str | None
    deployed_at: datetime  # naive UTC, as the marts store it
    window_hours: int  # asked for
    length: timedelta  # of each window after clipping
    clipped_by: str | None  # what clipped the windows: next deployment, now, previous deployment

    def describe(self) -> dict:
        """What was deployed, and the windows' length (hours) and what clipped them."""
        return {
            "deployment_id": self.deployment_id,
            "agent_id": self.agent_id,
            "agent_label": self.agent_label,
            "version": self.version,
            "previous_version": self.previous_version,
            "description": self.description,
            "deployed_at": iso_utc(self.deployed_at),
            "window_hours": self.length.total_seconds() / 3600,
            "clipped_by": self.clipped_by,
        }

    @property
    def before(self) -> tuple[datetime, datetime]:
        return self.deployed_at - self.length, self.deployed_at

    @property
    def after(self) -> tuple[datetime, datetime]:
        return self.deployed_at, self.deployed_at + self.length


def iso_utc(moment: datetime) -> str:
    """A naive UTC timestamp of the marts as the documents write instants."""
    return iso(moment.replace(tzinfo=timezone.utc))


def naive(moment: datetime) -> datetime:
    """A UTC instant as the naive timestamp the marts store."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def find_deployments(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, as_of: datetime,
                     agents: list[str] | None, window_hours: int | None = None) -> list[Deployment]:
    """The deployments in [start, end) of `agents` (None: all), oldest first, with their windows
    of `window_hours` (None: the mart's window_hours) clipped at the neighbouring deployments
    and at `as_of`."""
    rows = con.execute(
        """
        with lengths as (
            select d.*, coalesce($hours, d.window_hours) as asked_hours,
                   coalesce($hours, d.window_hours) * 3600000000::bigint as asked_us,
                   date_diff('microsecond', d.previous_deployed_at, d.deployed_at) as to_previous_us,
                   date_diff('microsecond', d.deployed_at, d.next_deployed_at) as to_next_us,
                   greatest(date_diff('microsecond', d.deployed_at, $as_of), 0) as to_now_us
            from fct_deployments d
            where d.deployed_at >= $start and d.deployed_at < $end
              and ($agents is null or list_contains($agents, d.agent_id))
        )
        select l.deployment_id, l.agent_id, a.agent_name, l.agent_version, l.previous_version, l.description,
               l.deployed_at, l.asked_hours, l.asked_us, l.to_next_us, l.to_now_us, l.to_previous_us
        from lengths l left join dim_agents a on a.agent_id = l.agent_id
        order by l.deployed_at, l.agent_id, l.deployment_id
        """,
        {"start": naive(start), "end": naive(end), "as_of": naive(as_of), "agents": agents, "hours": window_hours},
    ).fetchall()
    found = []
    for (deployment_id, agent_id, name, version, previous_version, description, deployed_at, hours, asked_us,
         *limits) in rows:
        length_us, clipped_by = asked_us, None
        for limit, reason in zip(limits, CLIPPED_BY, strict=True):
            if limit is not None and limit < length_us:
                length_us, clipped_by = limit, reason
        found.append(Deployment(deployment_id, agent_id, agent_label(name, agent_id), version, previous_version,
                                description, deployed_at, int(hours), timedelta(microseconds=int(length_us)),
                                clipped_by))
    return found


def mart_window_hours(con: duckdb.DuckDBPyConnection) -> int | None:
    """The window fct_deployments was built with (var deployment_window_hours); None while it
    holds no deployment."""
    (hours,) = con.execute("select max(window_hours) from fct_deployments").fetchall()[0]  # fetch all: no open result
    return None if hours is None else int(hours)
