"""The per-unit values of two versions of one agent in a period, read from the marts in one
vectorized query per unit (messages from fct_messages, sessions from fct_sessions): the
arrays the statistics run on (statistics.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import numpy as np

from agent_analytics.periods import Period


@dataclass(frozen=True)
class VersionSample:
    """One version's units in the period: its messages, its sessions and its users."""

    is_error: np.ndarray  # bool, one per message
    response_time_ms: np.ndarray  # one per message that has a response time
    cost_usd: np.ndarray  # one per message (its priced calls' cost, 0 without any)
    total_tokens: np.ndarray  # one per message
    session_messages: np.ndarray  # one per session that started in the period: its messages
    users: int

    @property
    def messages(self) -> int:
        return len(self.is_error)

    @property
    def sessions(self) -> int:
        return len(self.session_messages)


# A message belongs to the period when it occurred inside the window, a session when its first
# message did, as everywhere in the metrics layer; a session's version is its first message's.
MESSAGES = "from fct_messages where agent_id = $agent and occurred_at >= $start and occurred_at < $end"
SESSIONS = "from fct_sessions where agent_id = $agent and session_started_at >= $start and session_started_at < $end"


def _window(agent: str, period: Period) -> dict:
    return {"agent": agent, "start": _naive(period.start), "end": _naive(period.end)}


def _naive(moment: datetime) -> datetime:
    """A UTC instant as the naive timestamp the marts store."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def versions_with_messages(con: duckdb.DuckDBPyConnection, agent: str, period: Period) -> dict[str, int]:
    """version -> messages of `agent` in the period, for every version that has some."""
    rows = con.execute(f"select agent_version, count(*) {MESSAGES} and agent_version is not null group by 1 order by 1",
                       _window(agent, period)).fetchall()
    return dict(rows)


def read_samples(con: duckdb.DuckDBPyConnection, agent: str, versions: tuple[str, str],
                 period: Period) -> tuple[VersionSample, VersionSample, int]:
    """Both versions' samples, and how many users sent messages to both."""
    p = {**_window(agent, period), "a": versions[0], "b": versions[1]}
    return _read(con, p, "agent_version = $b", f"{MESSAGES} and agent_version in ($a, $b)",
                 f"{SESSIONS} and agent_version in ($a, $b)")


def read_window_samples(con: duckdb.DuckDBPyConnection, agent: str, before: tuple[datetime, datetime],
                        after: tuple[datetime, datetime]) -> tuple[VersionSample, VersionSample, int]:
    """The samples of `agent` in two adjacent windows [before) and [after) (naive UTC, as the
    marts store them; before ends where after starts): every message whatever its version, the
    sessions that started in each. And how many users sent messages in both."""
    p = {"agent": agent, "start": before[0], "split": after[0], "end": after[1]}
    return _read(con, p, "{time} >= $split", MESSAGES, SESSIONS)


def _read(con: duckdb.DuckDBPyConnection, p: dict, is_b: str, messages_from: str,
          sessions_from: str) -> tuple[VersionSample, VersionSample, int]:
    """Samples A and B of the messages `messages_from` and sessions `sessions_from`: B where the
    condition `is_b` holds (`{time}` in it: the row's time column)."""
    on_message, on_session = is_b.format(time="occurred_at"), is_b.format(time="session_started_at")
    messages = con.execute(
        f"""select {on_message} as is_b, is_error, coalesce(response_time_ms, 'nan'::double) as response_time_ms,
                   cast(cost_usd as double) as cost_usd, cast(total_tokens as double) as total_tokens
            {messages_from}""", p).fetchnumpy()
    sessions = con.execute(f"select {on_session} as is_b, message_count {sessions_from}", p).fetchnumpy()
    users_a, users_b, users_in_both = con.execute(
        f"""select count(*) filter (where in_a), count(*) filter (where in_b), count(*) filter (where in_a and in_b)
            from (select user_id, bool_or(not ({on_message})) as in_a, bool_or({on_message}) as in_b
                  {messages_from} group by user_id)""", p).fetchone()

    def sample(is_b: bool, users: int) -> VersionSample:
        # Sorted: an engine returns rows in any order (DuckDB's parallel scans too), and the
        # seeded bootstrap must see the same arrays to give the same interval every time.
        mine, session_rows = np.asarray(messages["is_b"]) == is_b, np.asarray(sessions["is_b"]) == is_b
        times = np.asarray(messages["response_time_ms"], dtype=float)[mine]
        return VersionSample(
            is_error=np.sort(np.asarray(messages["is_error"], dtype=bool)[mine]),
            response_time_ms=np.sort(times[~np.isnan(times)]),
            cost_usd=np.sort(np.asarray(messages["cost_usd"], dtype=float)[mine]),
            total_tokens=np.sort(np.asarray(messages["total_tokens"], dtype=float)[mine]),
            session_messages=np.sort(np.asarray(sessions["message_count"], dtype=float)[session_rows]),
            users=int(users),
        )

    return sample(False, users_a), sample(True, users_b), int(users_in_both)

