"""Synthetic event generator: native JSON Lines per docs/events.md.

``generate(out_dir, events, days, seed, end)`` writes one file per UTC day,
``events-YYYY-MM-DD.jsonl``, covering ``end - days + 1 .. end``. It is the demo
data source and the benchmark source (10M messages / 30 days), so everything is
vectorized: numpy builds the columns of one day, pyarrow holds them (nested
``llm_calls`` / ``tool_calls`` as list<struct>), DuckDB renders the JSON lines.
Same arguments => byte-identical files. With ``unsorted=True`` it writes ``days`` files
that each hold events of the whole period in a random order (dealt and shuffled by a hash of
the seed, in DuckDB), as several sources writing at once produce.

Shape of the data
-----------------
* Traffic: weekdays ~2x weekend days; hour-of-day cycle (UTC) with a lunch peak
  12:00-14:00 and little traffic at night.
* Users ``u-<n>``: pool of ``max(50, events // 40)`` with Zipf-like activity.
* Agents: support (A/B test v1/v2 50/50 from day 0), sales (v1, then v2 after
  its deployment on the third day), onboarding, faq, tech; unequal shares.
* Sessions: (user, agent, start) with 1..12 messages (mean ~4.4), 20 s..8 min
  apart, one ``conversation_id`` per session.
* Messages: ~1% errors (timeout / rate_limit / tool_error); an error spike of
  ~5% on the middle day between 12:00 and 14:00. ``response_time_ms`` = sum of
  LLM latencies + tool latencies + overhead (~1.5-2 s; timeouts 30 s). 1-3
  ``llm_calls`` over openai / anthropic / google / azure models plus ~0.5% of
  calls to an unpriced model ``acme-internal-1``; ``cost_usd`` on ~20% of
  calls; cache reads on ~25%. ``tool_calls`` on ~30% of messages
  (search_kb, crm_lookup, weather_api -- the slow one, 8-15 s).
* health_check: ``api`` and ``db`` every 60 s; one ~5-minute ``api`` downtime
  on one day (down probes have no latency).
* queue_sample: ``default`` every 60 s, depth 0-3 normally, spiking to 50+
  during the lunch peak of two days.
* deployment: support v2 (A/B start, day 0) and sales v2 (third day).
* Imperfections (counted in the result): malformed lines, exact duplicate
  lines (copy of a message placed in the next day's file) and late messages
  (written into the file of a day 2-3 days after they occurred).

Optional fields that do not apply to a record are omitted, never null.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from agent_analytics.sql import literal

DAY_MS = 86_400_000
MINUTE_MS = 60_000

# (agent_id, agent_name, share of sessions)
AGENTS: tuple[tuple[str, str, float], ...] = (
    ("support", "Support Agent", 0.38),
    ("sales", "Sales Agent", 0.22),
    ("onboarding", "Onboarding", 0.15),
    ("faq", "FAQ Bot", 0.15),
    ("tech", "Technical Support", 0.10),
)
VERSIONS = ("v1", "v2")
SUPPORT, SALES = 0, 1

# (provider, model, usd per 1M input tokens, per 1M output tokens, share); price None = unknown
MODELS: tuple[tuple[str, str, float | None, float | None, float], ...] = (
    ("openai", "gpt-4o-2024-08-06", 2.50, 10.00, 0.25),
    ("openai", "gpt-4o-mini", 0.15, 0.60, 0.25),
    ("anthropic", "claude-3-5-sonnet-20241022", 3.00, 15.00, 0.15),
    ("anthropic", "claude-3-5-haiku-20241022", 0.80, 4.00, 0.12),
    ("google", "gemini-1.5-pro", 1.25, 5.00, 0.07),
    ("google", "gemini-1.5-flash", 0.075, 0.30, 0.08),
    ("azure", "gpt-4o", 2.50, 10.00, 0.075),
    ("openai", "acme-internal-1", None, None, 0.005),
)
PROVIDERS = ("openai", "anthropic", "google", "azure")

# (tool name, latency low ms, latency high ms, share)
TOOLS: tuple[tuple[str, int, int, float], ...] = (
    ("search_kb", 80, 600, 0.55),
    ("crm_lookup", 40, 400, 0.33),
    ("weather_api", 8_000, 15_000, 0.12),
)
STATUSES = ("ok", "error")
ERROR_TYPES = ("timeout", "rate_limit", "tool_error")
ERROR_TYPE_SHARES = (0.5, 0.3, 0.2)
TIMEOUT_MS = 30_000

# relative message traffic per UTC hour: quiet night, lunch peak 12-14
HOUR_WEIGHTS = np.array(
    [0.15, 0.12, 0.1, 0.1, 0.12, 0.2, 0.4, 0.7, 1.0, 1.2, 1.3, 1.4,
     2.2, 2.2, 1.4, 1.3, 1.2, 1.0, 0.8, 0.7, 0.6, 0.5, 0.35, 0.25]
)
WEEKEND_FACTOR = 0.5
BASE_ERROR_RATE = 0.01
SPIKE_ERROR_RATE = 0.05
DOWNTIME_MINUTE = 9 * 60 + 41  # api down 09:41..09:45 on the downtime day
DOWNTIME_MINUTES = 5


@dataclass
class GenerateResult:
    """What ``generate`` wrote."""

    files: list[Path] = field(default_factory=list)
    message_events: int = 0  # distinct valid messages (late ones included)
    other_events: int = 0  # distinct valid health_check / queue_sample / deployment
    malformed_lines: int = 0
    duplicate_lines: int = 0
    late_lines: int = 0


@dataclass
class _Plan:
    """Day-level decisions drawn once from the seed."""

    start: date
    days: int
    messages_per_day: np.ndarray
    spike_day: int
    downtime_day: int
    queue_spike_days: tuple[int, ...]
    sales_deploy_day: int
    late_per_day: np.ndarray  # how many late messages leave each day
    dup_per_day: np.ndarray  # how many duplicate copies are taken from each day
    malformed_days: np.ndarray  # target day of each malformed line
    users: int


# --------------------------------------------------------------------------- planning


def _plan(rng: np.random.Generator, events: int, days: int, start: date) -> _Plan:
    weekday = np.array([(start + timedelta(d)).weekday() < 5 for d in range(days)])
    weights = np.where(weekday, 1.0, WEEKEND_FACTOR) * rng.uniform(0.92, 1.08, days)
    per_day = rng.multinomial(events, weights / weights.sum())
    n_imperfect = max(3, events // 100_000)
    late_sources = days - 2 if days >= 3 else 0  # late lines need a day 2+ days later
    late_per_day = np.zeros(days, dtype=np.int64)
    if late_sources:
        late_per_day[:late_sources] = rng.multinomial(n_imperfect, np.full(late_sources, 1 / late_sources))
    return _Plan(
        start=start,
        days=days,
        messages_per_day=per_day,
        spike_day=days // 2,
        downtime_day=(days - 1) * 2 // 3,
        queue_spike_days=tuple(sorted({min(1, days - 1), max(days - 2, 0)})),
        sales_deploy_day=min(2, days - 1),
        late_per_day=late_per_day,
        dup_per_day=rng.multinomial(n_imperfect, np.full(days, 1 / days)),
        malformed_days=np.sort(rng.integers(0, days, max(6, n_imperfect))),
        users=max(50, events // 40),
    )


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() * 1000)


def _deploy_ms(plan: _Plan) -> int:
    return _epoch_ms(plan.start + timedelta(plan.sales_deploy_day)) + 10 * 3_600_000


# --------------------------------------------------------------------------- arrow helpers


def _dict(indices: np.ndarray, values: tuple[str, ...], mask: np.ndarray | None = None) -> pa.Array:
    """Categorical string column from small-int codes (DuckDB reads it as VARCHAR)."""
    idx = pa.array(indices.astype(np.int8), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, pa.array(values))


def _opt(values: np.ndarray, present: np.ndarray) -> pa.Array:
    """Column with nulls where ``present`` is False (nulls are dropped from the JSON)."""
    return pa.array(values, mask=~present)


def _offsets(counts: np.ndarray) -> pa.Array:
    return pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))


def _choice(rng: np.random.Generator, shares: tuple[float, ...] | np.ndarray, size: int) -> np.ndarray:
    p = np.asarray(shares, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


# --------------------------------------------------------------------------- messages


def _session_sizes(rng: np.random.Generator, n_messages: int) -> np.ndarray:
    """Messages per session (1..12, mean ~4.4) summing exactly to ``n_messages``."""
    sizes = np.zeros(0, dtype=np.int64)
    if n_messages == 0:
        return sizes
    while sizes.sum() < n_messages:
        more = np.minimum(1 + rng.poisson(3.4, n_messages // 4 + 16), 12)
        sizes = np.concatenate([sizes, more])
    cum = np.cumsum(sizes)
    last = int(np.searchsorted(cum, n_messages))
    sizes = sizes[: last + 1].copy()
    sizes[-1] -= cum[last] - n_messages
    return sizes


def _message_times(rng: np.random.Generator, sizes: np.ndarray, day_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Timestamp (epoch ms) and session index of every message of one day."""
    n_sessions, n = len(sizes), int(sizes.sum())
    session = np.repeat(np.arange(n_sessions), sizes)
    first = np.cumsum(sizes) - sizes  # index of each session's first message
    gaps = np.clip(20_000 + rng.exponential(70_000, n), 20_000, 480_000).astype(np.int64)
    gaps[first] = 0
    cum = np.cumsum(gaps)
    offset = cum - np.repeat(cum[first], sizes)
    duration = offset[first + sizes - 1]
    hour = _choice(rng, HOUR_WEIGHTS, n_sessions)
    start = hour * 3_600_000 + rng.integers(0, 3_600_000, n_sessions)
    start = np.minimum(start, DAY_MS - 1 - duration)  # sessions end before midnight
    return day_ms + start[session] + offset, session


def _llm_calls(rng: np.random.Generator, n: int) -> tuple[pa.Array, np.ndarray]:
    """``llm_calls`` list column and total LLM latency per message."""
    counts = _choice(rng, (0.6, 0.3, 0.1), n) + 1
    k = int(counts.sum())
    model = _choice(rng, [m[4] for m in MODELS], k)
    provider = np.array([PROVIDERS.index(m[0]) for m in MODELS])[model]
    inp = np.clip(rng.lognormal(np.log(900), 0.6, k), 200, 3000).astype(np.int64)
    out = np.clip(rng.lognormal(np.log(220), 0.6, k), 50, 800).astype(np.int64)
    has_cache = rng.random(k) < 0.25
    cache = np.where(has_cache, (inp * rng.uniform(0.2, 0.9, k)).astype(np.int64), 0)
    latency = np.clip(rng.lognormal(np.log(650), 0.45, k) + out * 1.2, 150, None).astype(np.int64)
    price_in = np.array([m[2] or 0.0 for m in MODELS])[model]
    price_out = np.array([m[3] or 0.0 for m in MODELS])[model]
    cost = np.round(((inp - cache * 0.5) * price_in + out * price_out) / 1e6, 7)
    has_cost = (rng.random(k) < 0.2) & np.array([m[2] is not None for m in MODELS])[model]
    calls = pa.StructArray.from_arrays(
        [
            _dict(provider, PROVIDERS),
            _dict(model, tuple(m[1] for m in MODELS)),
            pa.array(inp),
            pa.array(out),
            _opt(cache, has_cache),
            _opt(cost, has_cost),
            pa.array(latency),
        ],
        names=["provider", "model", "input_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "latency_ms"],
    )
    per_message = np.bincount(np.repeat(np.arange(n), counts), weights=latency, minlength=n).astype(np.int64)
    return pa.ListArray.from_arrays(_offsets(counts), calls), per_message


def _tool_calls(rng: np.random.Generator, n: int) -> tuple[pa.Array, np.ndarray]:
    """``tool_calls`` list column (null for ~70% of messages) and tool latency per message."""
    has = rng.random(n) < 0.3
    counts = np.where(has, 1 + (rng.random(n) < 0.2), 0)
    k = int(counts.sum())
    tool = _choice(rng, [t[3] for t in TOOLS], k)
    low = np.array([t[1] for t in TOOLS])[tool]
    high = np.array([t[2] for t in TOOLS])[tool]
    latency = (low + rng.random(k) * (high - low)).astype(np.int64)
    status = (rng.random(k) < 0.03).astype(np.int8)
    calls = pa.StructArray.from_arrays(
        [_dict(tool, tuple(t[0] for t in TOOLS)), pa.array(latency), _dict(status, STATUSES)],
        names=["name", "latency_ms", "status"],
    )
    message_of_call = np.repeat(np.arange(n), counts)
    per_message = np.bincount(message_of_call, weights=latency, minlength=n).astype(np.int64)
    return pa.ListArray.from_arrays(_offsets(counts), calls, mask=pa.array(~has)), per_message


def _messages(rng: np.random.Generator, plan: _Plan, day: int, first_n: int, first_session: int) -> pa.Table:
    """All messages of one day, sorted by time; ``n`` is the global message number."""
    n = int(plan.messages_per_day[day])
    day_ms = _epoch_ms(plan.start + timedelta(day))
    sizes = _session_sizes(rng, n)
    ts, session = _message_times(rng, sizes, day_ms)
    n_sessions = len(sizes)

    zipf = 1.0 / (np.arange(1, plan.users + 1) + 3) ** 1.05
    user = (_choice(rng, zipf, n_sessions) + 1)[session]
    agent_s = _choice(rng, [a[2] for a in AGENTS], n_sessions)
    session_start = ts[np.cumsum(sizes) - sizes]
    version_s = np.zeros(n_sessions, dtype=np.int64)
    version_s[agent_s == SUPPORT] = rng.integers(0, 2, int((agent_s == SUPPORT).sum()))
    version_s[(agent_s == SALES) & (session_start >= _deploy_ms(plan))] = 1
    agent, version = agent_s[session], version_s[session]

    second_of_day = (ts - day_ms) // 1000
    lunch = (second_of_day >= 12 * 3600) & (second_of_day < 14 * 3600)
    error_rate = np.where(lunch & (day == plan.spike_day), SPIKE_ERROR_RATE, BASE_ERROR_RATE)
    is_error = rng.random(n) < error_rate
    error_type = _choice(rng, ERROR_TYPE_SHARES, n)

    llm_calls, llm_ms = _llm_calls(rng, n)
    tool_calls, tool_ms = _tool_calls(rng, n)
    response = llm_ms + tool_ms + rng.integers(40, 300, n)
    response = np.where(is_error & (error_type == 0), TIMEOUT_MS, response)
    has_response = ~is_error | (rng.random(n) < 0.6)

    table = pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("ms")),
            "n": pa.array(np.zeros(n, dtype=np.int64)),
            "user_n": pa.array(user),
            "agent": _dict(agent, tuple(a[0] for a in AGENTS)),
            "agent_name": _dict(agent, tuple(a[1] for a in AGENTS)),
            "agent_version": _dict(version, VERSIONS),
            "conversation_n": pa.array(first_session + session),
            "status": _dict(is_error.astype(np.int8), STATUSES),
            "error_type": _dict(error_type, ERROR_TYPES, mask=~is_error),
            "response_time_ms": _opt(response, has_response),
            "llm_calls": llm_calls,
            "tool_calls": tool_calls,
        }
    )
    order = np.argsort(ts, kind="stable")
    table = table.take(pa.array(order))
    return table.set_column(1, "n", pa.array(first_n + np.arange(n, dtype=np.int64)))


# --------------------------------------------------------------------------- other events


def _health(rng: np.random.Generator, plan: _Plan, day: int) -> pa.Table:
    """``api`` and ``db`` probes every minute; ``n`` is the global probe number."""
    minutes = np.arange(1440)
    ts = _epoch_ms(plan.start + timedelta(day)) + np.concatenate([minutes, minutes]) * MINUTE_MS
    component = np.repeat([0, 1], 1440)
    up = np.ones(2880, dtype=bool)
    if day == plan.downtime_day:
        up[DOWNTIME_MINUTE : DOWNTIME_MINUTE + DOWNTIME_MINUTES] = False
    latency = np.concatenate([rng.lognormal(np.log(40), 0.3, 1440), rng.lognormal(np.log(6), 0.3, 1440)])
    return pa.table(
        {
            "ts": pa.array(ts, pa.timestamp("ms")),
            "n": pa.array(day * 2880 + np.arange(2880)),
            "component": _dict(component, ("api", "db")),
            "is_up": pa.array(up),
            "latency_ms": _opt(np.round(latency).astype(np.int64), up),
        }
    )


def _queue(rng: np.random.Generator, plan: _Plan, day: int) -> pa.Table:
    """``default`` queue depth every minute (at :30); lunch spikes on spike days."""
    minutes = np.arange(1440)
    depth = np.minimum(rng.poisson(0.8, 1440), 3)
    if day in plan.queue_spike_days:
        lunch = slice(12 * 60, 14 * 60)
        wave = 10 + 60 * np.sin(np.pi * np.arange(120) / 120)
        depth[lunch] = np.round(wave + rng.normal(0, 4, 120)).clip(0).astype(np.int64)
    return pa.table(
        {
            "ts": pa.array(_epoch_ms(plan.start + timedelta(day)) + minutes * MINUTE_MS + 30_000, pa.timestamp("ms")),
            "n": pa.array(day * 1440 + minutes),
            "depth": pa.array(depth.astype(np.int64)),
        }
    )


def _deployments(plan: _Plan, day: int) -> pa.Table:
    rows = [(0, _epoch_ms(plan.start), "support", "v2", "A/B test: support v2 on 50% of sessions")]
    rows.append((1, _deploy_ms(plan), "sales", "v2", "sales v2: new pricing prompts"))
    day_ms = _epoch_ms(plan.start + timedelta(day))
    rows = [r for r in rows if day_ms <= r[1] < day_ms + DAY_MS]
    return pa.table(
        {
            "ts": pa.array([r[1] for r in rows], pa.timestamp("ms")),
            "n": pa.array([r[0] for r in rows], pa.int64()),
            "agent_id": pa.array([r[2] for r in rows], pa.string()),
            "agent_version": pa.array([r[3] for r in rows], pa.string()),
            "description": pa.array([r[4] for r in rows], pa.string()),
        }
    )


# --------------------------------------------------------------------------- rendering

_TS = "strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ')"
_DROP_NULLS = """, ',"[a-z_]+":null', '', 'g'"""


def _lines_sql(seed: int) -> str:
    """One JSON line per event of the registered day tables, plus routing columns."""
    return f"""
    CREATE OR REPLACE TEMP TABLE lines AS
    SELECT ts, n, 0 AS kind, hold, regexp_replace(to_json(struct_pack(
        event_id := 'm-{seed}-' || n, type := 'message', occurred_at := {_TS},
        user_id := 'u-' || user_n, agent_id := agent, agent_name := agent_name,
        agent_version := agent_version, conversation_id := 'c-{seed}-' || conversation_n,
        status := status, error_type := error_type, response_time_ms := response_time_ms,
        llm_calls := llm_calls, tool_calls := tool_calls))::VARCHAR{_DROP_NULLS}) AS line
    FROM msg
    UNION ALL
    SELECT ts, n, 1, -1, regexp_replace(to_json(struct_pack(
        event_id := 'h-{seed}-' || n, type := 'health_check', occurred_at := {_TS},
        component := component, is_up := is_up, latency_ms := latency_ms))::VARCHAR{_DROP_NULLS})
    FROM health
    UNION ALL
    SELECT ts, n, 2, -1, to_json(struct_pack(
        event_id := 'q-{seed}-' || n, type := 'queue_sample', occurred_at := {_TS},
        queue := 'default', depth := depth))::VARCHAR
    FROM queue
    UNION ALL
    SELECT ts, n, 3, -1, to_json(struct_pack(
        event_id := 'd-{seed}-' || n, type := 'deployment', occurred_at := {_TS},
        agent_id := agent_id, agent_version := agent_version, description := description))::VARCHAR
    FROM deploy
    """


def _write_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Write the day's own lines (time order) as raw text lines.

    CSV with one column, no header, no quoting and a tab delimiter writes each value
    verbatim; JSON from ``to_json`` never contains a raw tab or newline.
    """
    con.execute(
        f"COPY (SELECT line FROM lines WHERE hold < 0 ORDER BY ts, kind, n) TO {literal(path)} "
        "(FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')"
    )


def _malformed_line(seed: int, i: int, day: date) -> str:
    """One of six kinds of invalid line (never a valid event)."""
    at = f"{day.isoformat()}T12:00:{i % 60:02d}.000Z"
    good = {"event_id": f"bad-{seed}-{i}", "type": "message", "occurred_at": at, "user_id": "u-1",
            "agent_id": "support", "status": "ok", "response_time_ms": 1200, "llm_calls": []}
    kind = i % 6
    if kind == 0:
        return f'{{"event_id": "bad-{seed}-{i}", "type": '
    if kind == 1:
        return json.dumps([good])
    if kind == 2:
        return json.dumps({k: v for k, v in good.items() if k != "user_id"})
    if kind == 3:
        return json.dumps(good | {"response_time_ms": -250})
    if kind == 4:
        return json.dumps({"event_id": f"bad-{seed}-{i}", "type": "click", "occurred_at": at, "user_id": "u-1"})
    return json.dumps(good | {"occurred_at": "yesterday"})


def _pick(rng: np.random.Generator, n: int, late: int, dup: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint row positions for late and duplicated messages of one day."""
    rows = rng.choice(n, size=min(n, late + dup), replace=False)
    return rows[: min(late, len(rows))], rows[min(late, len(rows)) :]


def _build_day(
    con: duckdb.DuckDBPyConnection, plan: _Plan, seed: int, day: int, first_n: int, first_session: int
) -> tuple[int, int, int]:
    """Render all events of ``day`` into the temp table ``lines``.

    Column ``hold``: -1 stays in the day's file, -2 also gets a duplicate copy in the
    next file, >= 0 is a late message moved to the file of that day.
    Returns (messages, sessions, other events) of the day.
    """
    rng = np.random.default_rng([seed, day])
    msg = _messages(rng, plan, day, first_n, first_session)
    sessions = int(msg["conversation_n"].to_numpy().max(initial=first_session - 1)) + 1 - first_session
    late_rows, dup_rows = _pick(rng, msg.num_rows, int(plan.late_per_day[day]), int(plan.dup_per_day[day]))
    hold = np.full(msg.num_rows, -1, dtype=np.int64)
    hold[late_rows] = np.minimum(day + rng.integers(2, 4, len(late_rows)), plan.days - 1)
    hold[dup_rows] = -2
    health, queue, deploy = _health(rng, plan, day), _queue(rng, plan, day), _deployments(plan, day)
    con.register("msg", msg.append_column("hold", pa.array(hold)))
    con.register("health", health)
    con.register("queue", queue)
    con.register("deploy", deploy)
    con.execute(_lines_sql(seed))
    return msg.num_rows, sessions, health.num_rows + queue.num_rows + deploy.num_rows


def _spill_shuffled(con: duckdb.DuckDBPyConnection, spill: Path, day: int, seed: int, files: int,
                    malformed: list[tuple[int, str]]) -> None:
    """Deal the day's lines (and a second copy of each duplicated one) into ``files`` parts.

    A line's part and its place in the part come from one hash of (seed, kind, n, copy), so
    the shuffle is the same on every run; each day lands in ``spill/d<day>/part=<k>/``.
    """
    con.register("malformed", pa.table({"n": pa.array([i for i, _ in malformed], pa.int64()),
                                         "line": pa.array([line for _, line in malformed], pa.string())}))
    con.execute(f"""
        COPY (
            SELECT hash({seed}, kind, n, copy) AS h, hash({seed}, kind, n, copy) % {files} AS part, line
            FROM (
                SELECT kind, n, 0 AS copy, line FROM lines
                UNION ALL SELECT kind, n, 1, line FROM lines WHERE hold = -2
                UNION ALL SELECT 9, n, 0, line FROM malformed
            )
        ) TO {literal(spill / f"d{day:05d}")} (FORMAT parquet, PARTITION_BY (part))
    """)


def _write_shuffled(con: duckdb.DuckDBPyConnection, spill: Path, out_dir: Path, files: int) -> list[Path]:
    """One file per part: its lines from every day, in the order of their hash."""
    paths = []
    for part in range(files):
        path = out_dir / f"events-part-{part + 1:03d}-of-{files:03d}.jsonl"
        pieces = sorted(spill.glob(f"d*/part={part}/*.parquet"))
        if not pieces:
            path.write_bytes(b"")
        else:
            sources = ", ".join(literal(p) for p in pieces)
            con.execute(
                f"COPY (SELECT line FROM read_parquet([{sources}], hive_partitioning = false) ORDER BY h, line) "
                f"TO {literal(path)} (FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\t')"
            )
        paths.append(path)
    return paths


def generate(
    out_dir: Path, events: int, days: int, seed: int, end: date | None = None, unsorted: bool = False,
    on_file: Callable[[Path], None] | None = None,
) -> GenerateResult:
    """Write ``days`` daily JSONL files ending at ``end`` (default: today UTC) into ``out_dir``.

    ``on_file``: called with each daily file as soon as it is written (it may load and delete
    it), so a long period never sits on disk at once. Daily files only (not ``unsorted``).

    ``unsorted``: write ``days`` files ``events-part-NNN-of-NNN.jsonl`` instead, each holding
    events of every day of the period in random order, as several sources writing at once
    produce (nothing promises sorted input). The same events, duplicate copies and malformed
    lines; no line is "late" since no file belongs to a day (``late_lines`` is 0).
    """
    if days < 1 or events < 0:
        raise ValueError("days must be >= 1 and events >= 0")
    if unsorted and on_file is not None:
        raise ValueError("on_file needs daily files (unsorted=False)")
    end = end or datetime.now(timezone.utc).date()
    start = end - timedelta(days=days - 1)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = _plan(np.random.default_rng(seed), events, days, start)
    result = GenerateResult(message_events=events)
    pending: dict[int, list[str]] = defaultdict(list)  # target day -> late + duplicate lines
    first_n = first_session = 0
    con = duckdb.connect()
    # the shuffled parts wait in Parquet until every day is rendered
    spill_dir = tempfile.TemporaryDirectory(prefix=".shuffle-", dir=out_dir) if unsorted else nullcontext(None)
    try:
        with spill_dir as spill:
            for day in range(days):
                n_messages, n_sessions, n_other = _build_day(con, plan, seed, day, first_n, first_session)
                first_n += n_messages
                first_session += n_sessions
                result.other_events += n_other
                day_date = start + timedelta(day)
                malformed = [(int(i), _malformed_line(seed, int(i), day_date))
                             for i in np.flatnonzero(plan.malformed_days == day)]
                result.malformed_lines += len(malformed)

                if spill is not None:
                    result.duplicate_lines += con.execute("SELECT count(*) FROM lines WHERE hold = -2").fetchall()[0][0]
                    _spill_shuffled(con, Path(spill), day, seed, days, malformed)
                    continue

                for target, line in con.execute("SELECT hold, line FROM lines WHERE hold >= 0 ORDER BY ts, n").fetchall():
                    pending[int(target)].append(line)
                    result.late_lines += 1
                for (line,) in con.execute("SELECT line FROM lines WHERE hold = -2 ORDER BY ts, n").fetchall():
                    pending[min(day + 1, days - 1)].append(line)
                    result.duplicate_lines += 1

                extra = pending.pop(day, []) + [line for _, line in malformed]
                path = out_dir / f"events-{day_date.isoformat()}.jsonl"
                _write_lines(con, path)
                with path.open("a", encoding="utf-8", newline="\n") as f:
                    f.writelines(line + "\n" for line in extra)
                result.files.append(path)
                if on_file is not None:
                    on_file(path)
            if spill is not None:
                result.files = _write_shuffled(con, Path(spill), out_dir, days)
    finally:
        con.close()
    return result
