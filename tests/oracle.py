"""The oracle: every metric of the JSON export computed again, straight from the raw events.

A deliberately simple second implementation of docs/metric-definitions.md (and
docs/events.md for what a valid record is). It shares no code with the
warehouse (nothing from `agent_analytics`, `ingestion` or `orchestration`): it reads the JSON
lines with a Python loop, validates each record by hand, keeps the first record of every
`event_id`, prices LLM calls one by one with genai-prices, sessionizes with a loop and
computes every number with plain pandas / numpy / Decimal over the exact windows.

    compute(files, period, tz, as_of, agents, settings) -> dict shaped like
    agent_analytics/schema/analytics_export.schema.json (`generated_at` is simply now)

`period` is one of
    {"kind": "rolling", "days": N, "label": "week"}       -- the N local days ending with as_of's day
    {"kind": "custom", "start": date, "end": date}        -- the local days start..end
    {"kind": "month", "month": "YYYY-MM"}                 -- a calendar month in `tz`
Every window is [local midnight of the first day, min(as_of, local midnight after the last
day)); a period that starts at or after as_of raises ValueError. `settings` may override any
key of DEFAULT_SETTINGS.

Choices made where the definitions leave room (the most literal reading each time):

* Validity. A record is valid when it is a JSON object with the fields and types of the
  contract. JSON null reads as an absent field. Every string field, when present, must be a
  non-empty string; `event_id` at most 200 characters. "number" = a JSON number (not a
  boolean), finite, >= 0; "integer" = a JSON number written without fraction or exponent,
  >= 0. `cache_read_tokens` may not exceed `input_tokens` ("part of input_tokens").
  `llm_calls` / `tool_calls` absent = no calls; a tool call needs a `name`, its `latency_ms`
  and `status` are optional. `occurred_at`: `YYYY-MM-DD[T|t| ]HH:MM:SS[.fraction]` with `Z` or
  `+-HH:MM` or no offset (= UTC); the fraction is truncated to microseconds. An empty line,
  invalid UTF-8 or invalid JSON (also the non-standard NaN / Infinity) is skipped. A UTF-8
  BOM at the start of a file is ignored. Duplicates: the first *valid* record of an
  `event_id` wins, in file order, files in the given order (invalid records claim no id).
* Provider names: lower-cased, then the OpenTelemetry aliases of PROVIDER_ALIASES.
* Price of an estimated call: genai-prices `calc_price` at 12:00 UTC of the call's UTC
  day (the message's `occurred_at`), with input, cache read and output tokens;
  LookupError -> unpriced.
* Period labels: rolling = the label given (default `Nd`); custom = `YYYY-MM-DD..YYYY-MM-DD`;
  month = `YYYY-MM`. The previous period is the same number of local days just before (a
  month: the month before), with the same `kind` and the label `previous <label>`. When the
  period is partial, the previous one ends `end - local midnight of end_date` after the local
  midnight of the day N days before end_date (a month: the same day of the previous month,
  or all of it when it has no such day), at most at its own full_end.
* Timestamps in the document: `YYYY-MM-DDTHH:MM:SSZ`, with `.ffffff` only when the instant
  has microseconds. `period.days` = (end - start) / 24 h as a float.
* Daily rows are the local days start_date..end_date, each counted inside the window; DAU /
  WAU / MAU of a day count the users of its 1 / 7 / 30 days up to min(day end, end).
* `scope.agents`: the agent ids given, unique and sorted; null for all.
* `note`: null when the period has messages in scope, else NO_MESSAGES.
* Exact values are Fractions (rates, means) or Decimals (money) until they are written.
  `change_pct` = (value - previous) / previous * 100 rounded half away from zero to 0.1, null
  when previous is 0 or either is null; `change_pp` = value - previous rounded the same way to
  0.01, null when either is null. `trend` compares the exact values (up / down / unchanged;
  new when previous is 0 and value is not, except for rates in points; "no data" when either
  is null).
* A ratio without a denominator (error rate, averages, per-message / session / user costs,
  tokens per message) is null.
* Agent name: from the latest message (by occurred_at, then event_id) that carries one, over
  all loaded data; else the id. All known agents (all-agents scope) = every agent_id of any
  valid message or deployment, over all loaded data (not only the period).
* Sessions are built over all loaded messages (any time, both statuses), per (user, agent),
  ordered by (occurred_at, event_id); a gap of exactly the timeout stays in the session; a gap
  run is cut into 24 h windows [r, r + 24 h), [r + 24 h, r + 48 h), ... from the run's first
  message r. Duration uses the `response_time_ms` of the last message in that order.
* Distribution shares: largest remainder on units of 0.01 %; equal remainders go to the
  earlier bucket.
* Every `share_pct` outside the distributions is part / total * 100 rounded half up to 0.01;
  0 when the total is 0.
* `cost.by_agent` / `tokens.by_agent` list the agents with a message in the period (also
  those without LLM calls); `by_provider` / `by_model` the (provider[, model]) pairs with
  calls. Sorted by the value desc, then by name(s) asc. `performance.tools` sorted by p95 desc
  (null last), then tool name.
* `weekly`, `cost.by_week` / `by_month`: the ISO weeks (Monday start) / months of the daily
  rows, summed from them; a week is partial with fewer than 7 days or a partial day.
* `forecast.trend_pct`: (weekly - week before) / week before * 100 rounded half up to 0.1;
  null when the week before is 0.
* Status labels apply the thresholds to the exact value. Without a value (no messages, no
  probes, no timed messages) the label is "No data".
* Changes of health windows compare with the window of the same length just before
  (`current`: the minute before); the response-time percentiles with the previous period.
* Uptime / incidents: probes of all components in [E - w, E). An incident is a maximal run of
  down probes of one component (ordered by occurred_at, event_id) over all loaded data; it
  ends at that component's next up probe (whenever that is), or never; a window counts the
  incidents with start < window end and end > window start, and the minutes of the overlap.
* Request volume: minutes are UTC minutes [m, m + 60 s); current = [floor_min(E) - 1 min,
  floor_min(E)); peak = the busiest minute from the local midnight of end_date (the day of
  the period's last instant) up to E;
  earliest minute on ties; headroom = (capacity - peak) / capacity * 100. An empty current or
  peak window is null (so is headroom) unless some message (any scope) lies at or after the
  window's end, then 0.
* Queues: one row per queue with samples in [start, end) (sorted by name); latest_depth = the
  last sample (occurred_at, event_id) with occurred_at <= E over all loaded data.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import hmac
import json
import math
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import oracle_deployments  # tests/oracle_deployments.py, beside this file
import pandas as pd
from genai_prices import Usage, calc_price

SCHEMA_VERSION = "3.2"
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1  # one microsecond, the unit of every timestamp below
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

DEFAULT_SETTINGS = {
    "session_timeout_minutes": 30,
    "capacity_per_min": 500,
    "error_rate_thresholds_pct": (0.5, 1.0, 2.0),  # Excellent < a <= Good < b <= Acceptable < c <= Poor
    "response_time_thresholds_ms": (2000, 4000, 6000),  # Fast, Good, Acceptable, Slow
    "uptime_threshold_pct": 99.9,  # >= Healthy, else Degraded
    "user_id_hash_key": None,  # a key: user ids shown as u_ + the first 16 hex digits of HMAC-SHA256(key, id)
}
TOP_N = 10

PROVIDER_ALIASES = {
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "gemini": "google",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "mistral_ai": "mistral",
}

TYPES = ("message", "health_check", "queue_sample", "deployment")
DURATION_BUCKETS = (("<1 min", 0, 60_000), ("1-5 min", 60_000, 300_000), ("5-10 min", 300_000, 600_000),
                    ("10+ min", 600_000, float("inf")))
MESSAGE_BUCKETS = (("1-2", 1, 2), ("3-5", 3, 5), ("6-10", 6, 10), ("11+", 11, float("inf")))
NO_DATA = "No data"
NO_MESSAGES = "No messages in this period and scope: counts are 0 and ratios have no value."


# ============================================================================ reading + validation

_TS = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?")


def parse_timestamp(text: str) -> datetime | None:
    """RFC 3339 text -> aware UTC datetime; no offset = UTC; None when not a timestamp."""
    m = _TS.fullmatch(text)
    if not m:
        return None
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC)
    except ValueError:
        return None
    if offset and offset not in ("Z", "z"):
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        shift = timedelta(hours=hours, minutes=minutes)
        value = value - shift if offset[0] == "+" else value + shift
    return value


def _string(v) -> bool:
    return isinstance(v, str) and len(v) >= 1


def _opt_string(v) -> bool:
    return v is None or _string(v)


def _number(v) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        return False
    if isinstance(v, Decimal) and (not v.is_finite() or abs(float(v)) == float("inf")):
        return False
    return v >= 0


def _opt_number(v) -> bool:
    return v is None or _number(v)


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _reject_constant(name: str):
    raise ValueError(f"not JSON: {name}")


def validate(obj) -> dict | None:
    """The record, normalized, when it is valid per the contract; else None."""
    if not isinstance(obj, dict):
        return None
    event_id, kind, at = obj.get("event_id"), obj.get("type"), obj.get("occurred_at")
    if not (_string(event_id) and len(event_id) <= 200):
        return None
    if kind not in TYPES or not isinstance(at, str):
        return None
    ts = parse_timestamp(at)
    if ts is None:
        return None
    rec = {"event_id": event_id, "type": kind, "ts": ts}
    if kind == "message":
        if not (_string(obj.get("user_id")) and _string(obj.get("agent_id"))):
            return None
        for name in ("agent_name", "agent_version", "conversation_id", "error_type"):
            if not _opt_string(obj.get(name)):
                return None
        status, rt = obj.get("status"), obj.get("response_time_ms")
        if status not in ("ok", "error") or not _opt_number(rt):
            return None
        if status == "ok" and rt is None:
            return None
        llm_calls, tool_calls = obj.get("llm_calls"), obj.get("tool_calls")
        llm_calls = [] if llm_calls is None else llm_calls
        tool_calls = [] if tool_calls is None else tool_calls
        if not isinstance(llm_calls, list) or not isinstance(tool_calls, list):
            return None
        calls = []
        for c in llm_calls:
            if not isinstance(c, dict):
                return None
            if not (_string(c.get("provider")) and _string(c.get("model"))):
                return None
            inp, out, cache = c.get("input_tokens"), c.get("output_tokens"), c.get("cache_read_tokens")
            if not (_integer(inp) and _integer(out)) or not (cache is None or _integer(cache)):
                return None
            if cache is not None and cache > inp:
                return None
            if not (_opt_number(c.get("cost_usd")) and _opt_number(c.get("latency_ms"))):
                return None
            calls.append({
                "provider": c["provider"], "model": c["model"], "input_tokens": inp, "output_tokens": out,
                "cache_read_tokens": cache or 0,
                "cost_usd": None if c.get("cost_usd") is None else Decimal(c["cost_usd"]),
            })
        tools = []
        for t in tool_calls:
            if not isinstance(t, dict):
                return None
            if not (_string(t.get("name")) and _opt_number(t.get("latency_ms")) and _opt_string(t.get("status"))):
                return None
            tools.append({
                "name": t["name"],
                "latency_ms": None if t.get("latency_ms") is None else float(t["latency_ms"]),
                "status": t.get("status"),
            })
        rec.update(
            user_id=obj["user_id"], agent_id=obj["agent_id"], agent_name=obj.get("agent_name"), status=status,
            response_time_ms=None if rt is None else float(rt), llm_calls=calls, tool_calls=tools,
        )
    elif kind == "health_check":
        if not _opt_string(obj.get("component")) or not isinstance(obj.get("is_up"), bool):
            return None
        if not _opt_number(obj.get("latency_ms")):
            return None
        rec.update(component=obj.get("component"), is_up=obj["is_up"])
    elif kind == "queue_sample":
        if not _opt_string(obj.get("queue")) or not _integer(obj.get("depth")):
            return None
        rec.update(queue=obj.get("queue"), depth=obj["depth"])
    else:  # deployment
        if not (_string(obj.get("agent_id")) and _string(obj.get("agent_version"))):
            return None
        if not _opt_string(obj.get("description")):
            return None
        rec.update(agent_id=obj["agent_id"], agent_version=obj["agent_version"], description=obj.get("description"))
    return rec


def read_records(files: list[Path]) -> list[dict]:
    """Valid records of the files, first occurrence of each event_id only, in file order."""
    seen: set[str] = set()
    records = []
    for path in files:
        path = Path(path)
        data = gzip.open(path, "rb").read() if path.name.endswith(".gz") else path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue
            rec = validate(obj)
            if rec is None or rec["event_id"] in seen:
                continue
            seen.add(rec["event_id"])
            records.append(rec)
    return records


# ============================================================================ pricing


def normalize_provider(name: str) -> str:
    key = name.lower()
    return PROVIDER_ALIASES.get(key, key)


def price_call(provider: str, model: str, inp: int, cache: int, out: int, ts: datetime) -> Decimal | None:
    """genai-prices estimate at 12:00 UTC of the call's UTC day; None when the model has no price."""
    when = datetime.combine(ts.astimezone(UTC).date(), time(12), tzinfo=UTC)
    try:
        found = calc_price(
            Usage(input_tokens=inp, cache_read_tokens=cache, output_tokens=out),
            model_ref=model, provider_id=provider, genai_request_timestamp=when,
        )
    except LookupError:
        return None
    return Decimal(found.total_price)


# ============================================================================ the loaded data


def to_us(dt: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive = UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


class Dataset:
    """The valid, deduplicated events as flat tables (timestamps in epoch microseconds)."""

    def __init__(self, records: list[dict]):
        msgs, calls, tools, health, queues, deployments = [], [], [], [], [], []
        known_agents: set[str] = set()
        for r in records:
            us = to_us(r["ts"])
            if r["type"] == "message":
                m = len(msgs)
                known_agents.add(r["agent_id"])
                cost, inp, out = Decimal(0), 0, 0
                for c in r["llm_calls"]:
                    provider = normalize_provider(c["provider"])
                    price = c["cost_usd"]  # reported cost wins
                    if price is None:
                        price = price_call(provider, c["model"], c["input_tokens"], c["cache_read_tokens"],
                                           c["output_tokens"], r["ts"])
                    calls.append({"m": m, "us": us, "agent": r["agent_id"], "provider": provider,
                                  "model": c["model"], "inp": c["input_tokens"], "out": c["output_tokens"],
                                  "cost": price, "unpriced": price is None})
                    cost += price or Decimal(0)
                    inp += c["input_tokens"]
                    out += c["output_tokens"]
                for t in r["tool_calls"]:
                    tools.append({"m": m, "us": us, "agent": r["agent_id"], "name": t["name"],
                                  "lat": np.nan if t["latency_ms"] is None else t["latency_ms"],
                                  "err": t["status"] == "error"})
                msgs.append({"eid": r["event_id"], "us": us, "user": r["user_id"], "agent": r["agent_id"],
                             "name": r["agent_name"], "err": r["status"] == "error",
                             "rt": np.nan if r["response_time_ms"] is None else r["response_time_ms"],
                             "cost": cost})
            elif r["type"] == "health_check":
                health.append({"eid": r["event_id"], "us": us, "component": r["component"], "up": r["is_up"]})
            elif r["type"] == "queue_sample":
                queues.append({"eid": r["event_id"], "us": us, "queue": r["queue"], "depth": r["depth"]})
            else:
                known_agents.add(r["agent_id"])
                deployments.append({"eid": r["event_id"], "us": us, "agent": r["agent_id"], "version": r["agent_version"],
                                    "description": r["description"]})

        def frame(rows, columns):
            return pd.DataFrame(rows, columns=columns)

        self.messages = frame(msgs, ["eid", "us", "user", "agent", "name", "err", "rt", "cost"])
        self.calls = frame(calls, ["m", "us", "agent", "provider", "model", "inp", "out", "cost", "unpriced"])
        self.tools = frame(tools, ["m", "us", "agent", "name", "lat", "err"])
        self.health = frame(health, ["eid", "us", "component", "up"])
        self.queues = frame(queues, ["eid", "us", "queue", "depth"])
        for df, cols in ((self.messages, ["us"]), (self.calls, ["m", "us", "inp", "out"]), (self.tools, ["m", "us"]),
                         (self.health, ["us"]), (self.queues, ["us", "depth"])):
            for col in cols:
                df[col] = df[col].astype("int64")
        self.messages["rt"] = self.messages["rt"].astype("float64")
        self.tools["lat"] = self.tools["lat"].astype("float64")
        self.known_agents = sorted(known_agents)
        self.deployments = deployments

        # latest agent name by (occurred_at, event_id)
        self.agent_names: dict[str, str] = {}
        named = sorted((m for m in msgs if m["name"] is not None), key=lambda m: (m["us"], m["eid"]))
        for m in named:
            self.agent_names[m["agent"]] = m["name"]

        self.incidents = self._incidents(health)
        self._sessions: dict[int, pd.DataFrame] = {}

    @staticmethod
    def _incidents(health: list[dict]) -> list[tuple[int, int | None, str]]:
        """(start, end or None, component) of every maximal run of down probes of one component."""
        out = []
        by_component: dict = {}
        for h in health:
            by_component.setdefault(h["component"], []).append(h)
        for component, probes in by_component.items():
            probes.sort(key=lambda h: (h["us"], h["eid"]))
            start = None
            for h in probes:
                if not h["up"] and start is None:
                    start = h["us"]
                elif h["up"] and start is not None:
                    out.append((start, h["us"], component))
                    start = None
            if start is not None:
                out.append((start, None, component))
        return out

    def sessions(self, timeout_minutes: int) -> pd.DataFrame:
        """One row per session: user, agent, start (us), messages, duration (ms)."""
        if timeout_minutes in self._sessions:
            return self._sessions[timeout_minutes]
        timeout = timeout_minutes * MINUTE
        rows = []
        m = self.messages
        users, agents, uss, rts = m["user"].tolist(), m["agent"].tolist(), m["us"].tolist(), m["rt"].tolist()
        eids = m["eid"].tolist()
        order = sorted(range(len(m)), key=lambda i: (users[i], agents[i], uss[i], eids[i]))
        current = None  # [user, agent, start, count, last_us, last_rt]
        run_start = window = None
        prev_key = prev_us = None
        for i in order:
            key, us = (users[i], agents[i]), uss[i]
            new = False
            if key != prev_key or us - prev_us > timeout:
                run_start, window, new = us, 0, True
            else:
                w = (us - run_start) // DAY
                if w != window:
                    window, new = w, True
            if new:
                if current:
                    rows.append(current)
                current = [key[0], key[1], us, 0, us, 0.0]
            current[3] += 1
            current[4] = us
            current[5] = 0.0 if np.isnan(rts[i]) else rts[i]
            prev_key, prev_us = key, us
        if current:
            rows.append(current)
        df = pd.DataFrame(
            [(u, a, s, n, (last - s) / 1000 + rt) for u, a, s, n, last, rt in rows],
            columns=["user", "agent", "start", "n", "dur"],
        )
        df["start"] = df["start"].astype("int64")
        df["n"] = df["n"].astype("int64")
        df["dur"] = df["dur"].astype("float64")
        self._sessions[timeout_minutes] = df
        return df


_CACHE: dict[tuple, Dataset] = {}


def load(files: list[Path]) -> Dataset:
    key = tuple((str(Path(f).resolve()), Path(f).stat().st_mtime_ns, Path(f).stat().st_size) for f in files)
    if key not in _CACHE:
        _CACHE[key] = Dataset(read_records(files))
    return _CACHE[key]


# ============================================================================ small helpers


def iso(us: int) -> str:
    dt = from_us(us)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def percentile(values, q: float) -> float | None:
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype="float64"), q))


def exact_mean(values) -> Fraction | None:
    """The exact mean of the non-NaN values (a float is exactly a fraction); None without any."""
    values = [Fraction(v) for v in values if not np.isnan(v)]
    return sum(values, Fraction(0)) / len(values) if values else None


def exact_ratio(a, b) -> Fraction | None:
    """a / b exactly; None when b is 0 (a ratio without a denominator has no value)."""
    return Fraction(a) / Fraction(b) if b else None


def dsum(values) -> Decimal:
    total = Decimal(0)
    for v in values:
        if v is not None:
            total += v
    return total


def num(value):
    """An exact value as it appears in the document: int stays int, None stays None, else float."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, np.integer):
        return int(value)
    return float(value)


def round_half_up(value, places: int) -> float:
    """An exact value rounded half away from zero to `places` decimals."""
    scaled = Fraction(value) * 10**places
    units = math.floor(abs(scaled) + Fraction(1, 2))
    return float(Fraction(units if scaled >= 0 else -units, 10**places))


def change_pct(value, previous) -> float | None:
    """(value - previous) / previous * 100 exactly, rounded half up to 0.1; null when previous is 0 or None."""
    if value is None or previous is None or previous == 0:
        return None
    return round_half_up((Fraction(value) - Fraction(previous)) / Fraction(previous) * 100, 1)


def change_pp(value, previous) -> float | None:
    """value - previous in percentage points, rounded half up to 0.01; null when either is None."""
    if value is None or previous is None:
        return None
    return round_half_up(Fraction(value) - Fraction(previous), 2)


def trend(value, previous, points: bool = False) -> str:
    if value is None or previous is None:
        return "no data"
    if previous == 0 and not points:
        return "unchanged" if value == 0 else "new"
    return "up" if value > previous else "down" if value < previous else "unchanged"


def compared(value, previous) -> dict:
    """{value, previous, change_pct, trend} of two exact values (either may be None)."""
    return {"value": num(value), "previous": num(previous), "change_pct": change_pct(value, previous),
            "trend": trend(value, previous)}


def compared_pp(value, previous) -> dict:
    """{value, previous, change_pp, trend} of two exact rates in percent (either may be None)."""
    return {"value": num(value), "previous": num(previous), "change_pp": change_pp(value, previous),
            "trend": trend(value, previous, points=True)}


def largest_remainder(counts: list[int]) -> list[float]:
    """Percent shares rounded to 0.01 adding to exactly 100.00 (all 0 without a total)."""
    total = sum(counts)
    if total == 0:
        return [0.0] * len(counts)
    units = [c * 10_000 for c in counts]
    floors = [u // total for u in units]
    remainders = [u % total for u in units]
    left = 10_000 - sum(floors)
    for i in sorted(range(len(counts)), key=lambda i: (-remainders[i], i))[:left]:
        floors[i] += 1
    return [f / 100 for f in floors]


def share(part, total) -> float:
    """part / total * 100 rounded half up to 0.01 (every share_pct of the document)."""
    return round_half_up(Fraction(part) / Fraction(total) * 100, 2) if total else 0.0


# ============================================================================ periods


def midnight(d: date, zone: ZoneInfo) -> int:
    return to_us(datetime.combine(d, time(0), tzinfo=zone))


def local_date(us: int, zone: ZoneInfo) -> date:
    return from_us(us).astimezone(zone).date()


def windows(period: dict, as_of_us: int, zone: ZoneInfo) -> dict:
    """The period and its previous period as instants: label, first/last day, start, end, full_end."""
    kind = period["kind"]
    if kind == "rolling":
        n = int(period["days"])
        last = local_date(as_of_us - US, zone)  # an as_of at local midnight ends with the day before
        first = last - timedelta(days=n - 1)
        label = period.get("label") or f"{n}d"
    elif kind == "custom":
        first, last = (v if isinstance(v, date) else date.fromisoformat(v) for v in (period["start"], period["end"]))
        label = f"{first.isoformat()}..{last.isoformat()}"
    elif kind == "month":
        year, month = (int(x) for x in period["month"].split("-"))
        first = date(year, month, 1)
        last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
        label = f"{year:04d}-{month:02d}"
    else:
        raise ValueError(f"unknown period kind {kind!r}")
    start, full_end = midnight(first, zone), midnight(last + timedelta(days=1), zone)
    if start >= as_of_us:
        raise ValueError("the period starts at or after as_of")
    end = min(as_of_us, full_end)

    if kind == "month":
        p_last = first - timedelta(days=1)
        p_first = p_last.replace(day=1)
    else:
        n_days = (last - first).days + 1
        p_first, p_last = first - timedelta(days=n_days), first - timedelta(days=1)
    p_start, p_full_end = midnight(p_first, zone), midnight(p_last + timedelta(days=1), zone)
    p_end = p_full_end
    if end < full_end:  # partial: the previous period stops at the same point of its corresponding day
        end_date = local_date(end - US, zone)
        into_day = end - midnight(end_date, zone)
        if kind == "month":
            try:
                anchor = p_first.replace(day=end_date.day)
            except ValueError:  # no such day in the previous month: all of it
                anchor = None
        else:
            anchor = end_date - timedelta(days=n_days)
        if anchor is not None:
            p_end = min(midnight(anchor, zone) + into_day, p_full_end)
    return {"kind": kind, "label": label, "start": start, "end": end, "full_end": full_end,
            "p_start": p_start, "p_end": p_end, "p_full_end": p_full_end}


# ============================================================================ compute


def compute(files: list[Path], period: dict, tz: str, as_of: datetime, agents: list[str] | None,
            settings: dict | None = None) -> dict:
    s = {**DEFAULT_SETTINGS, **(settings or {})}
    ds = load(files)
    zone = ZoneInfo(tz)
    as_of_us = to_us(as_of)

    def local(us: int) -> datetime:
        return from_us(us).astimezone(zone)

    def day_start(d: date) -> int:
        return midnight(d, zone)

    # ---------------------------------------------------------------- period
    w = windows(period, as_of_us, zone)
    kind, label = w["kind"], w["label"]
    start, end, full_end = w["start"], w["end"], w["full_end"]
    p_start, p_end, p_full_end = w["p_start"], w["p_end"], w["p_full_end"]

    def period_doc(lab: str, a: int, b: int, full: int) -> dict:
        return {"label": lab, "kind": kind, "start": iso(a), "end": iso(b), "full_end": iso(full),
                "start_date": local(a).date().isoformat(), "end_date": local(b - US).date().isoformat(),
                "days": (b - a) / DAY, "partial": b < full}

    start_date, end_date = local(start).date(), local(end - US).date()
    dates = [start_date + timedelta(days=i) for i in range((end_date - start_date).days + 1)]
    p_end_date = local(p_end - US).date()

    # ---------------------------------------------------------------- scope + local calendar
    scope = None if agents is None else sorted(set(agents))
    M, C, T, S = ds.messages, ds.calls, ds.tools, ds.sessions(int(s["session_timeout_minutes"]))
    if scope is None:
        m_in, c_in, t_in, s_in = (pd.Series(True, index=df.index) for df in (M, C, T, S))
    else:
        m_in, c_in, t_in, s_in = (df["agent"].isin(scope) for df in (M, C, T, S))
    m_local = [local(u) for u in M["us"].tolist()]
    m_date = pd.Series([d.date() for d in m_local], index=M.index, dtype=object)
    m_hour = pd.Series([d.hour for d in m_local], index=M.index, dtype="int64")

    def mwin(a: int, b: int) -> pd.Series:
        return m_in & (M["us"] >= a) & (M["us"] < b)

    def cwin(a: int, b: int) -> pd.Series:
        return c_in & (C["us"] >= a) & (C["us"] < b)

    def swin(a: int, b: int) -> pd.Series:
        return s_in & (S["start"] >= a) & (S["start"] < b)

    def cost_of(mask: pd.Series) -> Decimal:
        return dsum(C.loc[mask, "cost"].tolist())

    def additive(a: int, b: int) -> dict:
        """The additive metrics of [a, b) in scope, exact (cost as Decimal)."""
        mm, cm = mwin(a, b), cwin(a, b)
        inp, out = int(C.loc[cm, "inp"].sum()), int(C.loc[cm, "out"].sum())
        return {"messages": int(mm.sum()), "sessions": int(swin(a, b).sum()), "errors": int(M.loc[mm, "err"].sum()),
                "cost_usd": cost_of(cm), "input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
                "llm_calls": int(cm.sum())}

    # users per local date, counted up to the period's end (the last day may be cut)
    users_by_date: dict[date, set] = {}
    upto_end = m_in & (M["us"] < end)
    for d, u in zip(m_date[upto_end].tolist(), M.loc[upto_end, "user"].tolist(), strict=True):
        users_by_date.setdefault(d, set()).add(u)

    def distinct_users(last_day: date, days: int) -> int:
        found: set = set()
        for i in range(days):
            found |= users_by_date.get(last_day - timedelta(days=i), set())
        return len(found)

    # ---------------------------------------------------------------- the period's rows
    pm, pc, ps = mwin(start, end), cwin(start, end), swin(start, end)
    pt = t_in & (T["us"] >= start) & (T["us"] < end)
    qm, qc, qs = mwin(p_start, p_end), cwin(p_start, p_end), swin(p_start, p_end)
    msgs, calls, tools, sess = M[pm], C[pc], T[pt], S[ps]
    prev_msgs, prev_calls, prev_sess = M[qm], C[qc], S[qs]

    totals_exact = additive(start, end)
    n_messages, n_errors, n_sessions = totals_exact["messages"], totals_exact["errors"], totals_exact["sessions"]
    users = msgs["user"].nunique()
    total_cost = totals_exact["cost_usd"]
    timed = msgs["rt"].tolist()
    totals = {k: num(v) for k, v in totals_exact.items()}

    def error_pct(mask: pd.Series) -> Fraction | None:
        return exact_ratio(int(M.loc[mask, "err"].sum()) * 100, int(mask.sum()))

    # ---------------------------------------------------------------- daily and weekly rows
    daily, day_costs = [], {}
    for d in dates:
        day_end = day_start(d + timedelta(days=1))
        a, b = day_start(d), min(end, day_end)
        add = additive(a, b)
        day_costs[d] = add["cost_usd"]
        dm = M[mwin(a, b)]
        daily.append({
            "date": d.isoformat(), "partial": end < day_end,
            "dau": len(users_by_date.get(d, ())), "wau": distinct_users(d, 7), "mau": distinct_users(d, 30),
            **{k: num(v) for k, v in add.items()},
            "cost_per_message": num(exact_ratio(add["cost_usd"], add["messages"])),
            "avg_response_time_ms": num(exact_mean(dm["rt"].tolist())),
            "error_rate": num(exact_ratio(add["errors"], add["messages"])),
        })

    weekly = []
    for week in sorted({d - timedelta(days=d.weekday()) for d in dates}):
        rows = [r for d, r in zip(dates, daily, strict=True) if d - timedelta(days=d.weekday()) == week]
        row = {"week_start": week.isoformat(), "days": len(rows),
               "partial": len(rows) < 7 or any(r["partial"] for r in rows)}
        for key in ("sessions", "messages", "errors", "input_tokens", "output_tokens", "total_tokens", "llm_calls"):
            row[key] = sum(r[key] for r in rows)
        row["cost_usd"] = float(dsum(day_costs[date.fromisoformat(r["date"])] for r in rows))
        weekly.append(row)

    # ---------------------------------------------------------------- overview
    prev_errors = int(prev_msgs["err"].sum())
    dau_prev = M.loc[mwin(day_start(p_end_date), p_end), "user"].nunique()
    overview = {
        "active_users": compared(users, prev_msgs["user"].nunique()),
        "dau": {**compared(daily[-1]["dau"], dau_prev), "date": end_date.isoformat(), "partial": end < full_end},
        "sessions": compared(n_sessions, len(prev_sess)),
        "messages": compared(n_messages, len(prev_msgs)),
        "active_agents": compared(msgs["agent"].nunique(), prev_msgs["agent"].nunique()),
        "cost_usd": compared(total_cost, dsum(prev_calls["cost"].tolist())),
        "error_rate_pct": compared_pp(exact_ratio(n_errors * 100, n_messages),
                                      exact_ratio(prev_errors * 100, len(prev_msgs))),
    }

    # ---------------------------------------------------------------- engagement
    series = [{k: r[k] for k in ("date", "partial", "dau", "wau", "mau")} for r in daily]
    durations, sizes = sess["dur"].tolist(), sess["n"].tolist()

    def distribution(values, buckets) -> list[dict]:
        counts = [sum(1 for v in values if lo <= v < hi) for _, lo, hi in buckets]
        shares = largest_remainder(counts)
        return [{"bucket": b[0], "sessions": c, "share_pct": sh} for b, c, sh in zip(buckets, counts, shares, strict=True)]

    message_buckets = [(lab, lo, hi + 1) for lab, lo, hi in MESSAGE_BUCKETS]  # integer ranges -> [lo, hi + 1)
    engagement = {
        "series": series,
        "sessions": n_sessions,
        "avg_session_duration_ms": num(exact_mean(durations)),
        "messages_per_session": num(exact_mean([float(x) for x in sizes])),
        "session_duration_distribution": distribution(durations, DURATION_BUCKETS),
        "messages_per_session_distribution": distribution(sizes, message_buckets),
    }

    # ---------------------------------------------------------------- performance
    def label_of(agent: str) -> str:
        name = ds.agent_names.get(agent, agent)
        return name if name == agent else f"{name} ({agent})"

    def agent_figures(agent: str, mm: pd.DataFrame, cc: pd.DataFrame, ss: pd.DataFrame) -> dict:
        am, ac, asess = mm[mm["agent"] == agent], cc[cc["agent"] == agent], ss[ss["agent"] == agent]
        inp, out = int(ac["inp"].sum()), int(ac["out"].sum())
        errors = int(am["err"].sum())
        return {"sessions": len(asess), "messages": len(am), "errors": errors, "llm_calls": len(ac),
                "avg_session_duration_ms": exact_mean(asess["dur"].tolist()), "cost_usd": dsum(ac["cost"].tolist()),
                "error_rate_pct": exact_ratio(errors * 100, len(am)), "avg_response_time_ms": exact_mean(am["rt"].tolist()),
                "input_tokens": inp, "output_tokens": out, "total_tokens": inp + out,
                "avg_tokens_per_message": exact_ratio(inp + out, len(am))}

    agent_ids = ds.known_agents if scope is None else scope
    agent_rows = []
    for a in agent_ids:
        now = agent_figures(a, msgs, calls, sess)
        before = agent_figures(a, prev_msgs, prev_calls, prev_sess)
        vs = {k: compared(now[k], before[k])
              for k in ("sessions", "messages", "cost_usd", "avg_response_time_ms", "total_tokens")}
        vs["error_rate_pct"] = compared_pp(now["error_rate_pct"], before["error_rate_pct"])
        agent_rows.append({"agent_id": a, "agent_name": ds.agent_names.get(a, a), "agent_label": label_of(a),
                           **{k: num(v) for k, v in now.items()}, "vs_previous": vs})
    agent_rows.sort(key=lambda r: (-r["messages"], r["agent_id"]))

    hourly = []
    for h in range(24):
        hm = msgs[m_hour[pm] == h]
        hourly.append({"hour": h, "messages": len(hm), "avg_response_time_ms": num(exact_mean(hm["rt"].tolist())),
                       "p95_response_time_ms": percentile(hm["rt"].tolist(), 95)})

    tool_rows = []
    for name in sorted(set(tools["name"].tolist())):
        tm = tools[tools["name"] == name]
        tool_rows.append({"tool_name": name, "calls": len(tm), "avg_latency_ms": num(exact_mean(tm["lat"].tolist())),
                          "p95_latency_ms": percentile(tm["lat"].tolist(), 95),
                          "error_share_pct": num(exact_ratio(int(tm["err"].sum()) * 100, len(tm)))})
    tool_rows.sort(key=lambda r: (r["p95_latency_ms"] is None, -(r["p95_latency_ms"] or 0), r["tool_name"]))

    error_rate = exact_ratio(n_errors * 100, n_messages)
    performance = {
        "active_agents": msgs["agent"].nunique(),
        "agents": agent_rows,
        "avg_response_time_ms": num(exact_mean(timed)),
        "p50_response_time_ms": percentile(timed, 50),
        "p95_response_time_ms": percentile(timed, 95),
        "p99_response_time_ms": percentile(timed, 99),
        "hourly": hourly,
        "hour_by_hour": _hour_by_hour(M[m_in], start, end, zone),
        "messages": n_messages,
        "errors": n_errors,
        "error_rate_pct": num(error_rate),
        "success_rate_pct": None if error_rate is None else num(100 - error_rate),
        "tools": tool_rows,
    }

    # ---------------------------------------------------------------- cost
    def grouped(frame: pd.DataFrame, keys: list[str]) -> dict[tuple, pd.DataFrame]:
        return {k if isinstance(k, tuple) else (k,): g for k, g in frame.groupby(keys, sort=True)}

    def cost_rows(keys: list[str]) -> list[dict]:
        before = {k: dsum(g["cost"].tolist()) for k, g in grouped(prev_calls, keys).items()}
        rows = []
        for k, g in grouped(calls, keys).items():
            c, p = dsum(g["cost"].tolist()), before.get(k, Decimal(0))
            rows.append({**dict(zip(keys, k, strict=True)), "cost_usd": float(c), "share_pct": share(c, total_cost),
                         "calls": len(g), "unpriced_calls": int(g["unpriced"].sum()),
                         "previous_cost_usd": float(p), "change_pct": change_pct(c, p), "_exact": c})
        rows.sort(key=lambda r: (-r["_exact"], *(r[k] for k in keys)))
        return [{k: v for k, v in r.items() if k != "_exact"} for r in rows]

    # every agent with a message in the period, also without LLM calls (cost 0)
    agent_costs = {a: dsum(g["cost"].tolist()) for a, g in calls.groupby("agent")}
    prev_agent_costs = {a: dsum(g["cost"].tolist()) for a, g in prev_calls.groupby("agent")}
    by_agent = []
    for a in sorted(set(msgs["agent"].tolist())):
        c, p = agent_costs.get(a, Decimal(0)), prev_agent_costs.get(a, Decimal(0))
        by_agent.append({"agent_id": a, "agent_label": label_of(a), "cost_usd": float(c),
                         "share_pct": share(c, total_cost), "previous_cost_usd": float(p), "change_pct": change_pct(c, p),
                         "_exact": c})
    by_agent.sort(key=lambda r: (-r["_exact"], r["agent_id"]))
    by_agent = [{k: v for k, v in r.items() if k != "_exact"} for r in by_agent]

    months = sorted({(d.year, d.month) for d in dates})
    unpriced = calls[calls["unpriced"]]
    u_in, u_out = int(unpriced["inp"].sum()), int(unpriced["out"].sum())
    weekly_spend = cost_of(cwin(end - 7 * DAY, end))
    week_before = cost_of(cwin(end - 14 * DAY, end - 7 * DAY))
    cost = {
        "total_usd": float(total_cost),
        "by_provider": cost_rows(["provider"]),
        "by_agent": by_agent,
        "by_model": cost_rows(["provider", "model"]),
        "by_day": [{"date": r["date"], "partial": r["partial"], "cost_usd": r["cost_usd"]} for r in daily],
        "by_week": [{"week_start": r["week_start"], "cost_usd": r["cost_usd"]} for r in weekly],
        "by_month": [{"month": f"{y:04d}-{mo:02d}",
                      "cost_usd": float(dsum(c for d, c in day_costs.items() if (d.year, d.month) == (y, mo)))}
                     for y, mo in months],
        "cost_per_message_usd": num(exact_ratio(total_cost, n_messages)),
        "cost_per_session_usd": num(exact_ratio(total_cost, n_sessions)),
        "cost_per_user_usd": num(exact_ratio(total_cost, users)),
        "unpriced": {"calls": len(unpriced), "input_tokens": u_in, "output_tokens": u_out, "total_tokens": u_in + u_out},
        "forecast": {
            "weekly_spend_usd": float(weekly_spend),
            "projected_monthly_usd": float(Fraction(weekly_spend) * 52 / 12),
            "trend_pct": change_pct(weekly_spend, week_before),
        },
    }

    # ---------------------------------------------------------------- tokens
    t_in, t_out = totals_exact["input_tokens"], totals_exact["output_tokens"]
    t_total = t_in + t_out
    p_in, p_out = int(prev_calls["inp"].sum()), int(prev_calls["out"].sum())

    def token_sums(frame: pd.DataFrame) -> tuple[int, int]:
        return int(frame["inp"].sum()), int(frame["out"].sum())

    prev_agent_tokens = {a: sum(token_sums(g)) for a, g in prev_calls.groupby("agent")}
    tok_agents = []
    for a in sorted(set(msgs["agent"].tolist())):
        i, o = token_sums(calls[calls["agent"] == a])
        p = prev_agent_tokens.get(a, 0)
        tok_agents.append({"agent_id": a, "agent_label": label_of(a), "input_tokens": i, "output_tokens": o,
                           "total_tokens": i + o, "share_pct": share(i + o, t_total),
                           "avg_tokens_per_message": num(exact_ratio(i + o, int((msgs["agent"] == a).sum()))),
                           "previous_total_tokens": p, "change_pct": change_pct(i + o, p)})
    tok_agents.sort(key=lambda r: (-r["total_tokens"], r["agent_id"]))
    prev_model_tokens = {k: sum(token_sums(g)) for k, g in grouped(prev_calls, ["provider", "model"]).items()}
    tok_models = []
    for (p_name, mo), g in grouped(calls, ["provider", "model"]).items():
        i, o = token_sums(g)
        p = prev_model_tokens.get((p_name, mo), 0)
        tok_models.append({"provider": p_name, "model": mo, "input_tokens": i, "output_tokens": o,
                           "total_tokens": i + o, "share_pct": share(i + o, t_total),
                           "previous_total_tokens": p, "change_pct": change_pct(i + o, p)})
    tok_models.sort(key=lambda r: (-r["total_tokens"], r["provider"], r["model"]))
    tokens = {
        "input_tokens": t_in,
        "output_tokens": t_out,
        "total_tokens": t_total,
        "input_share_pct": share(t_in, t_total),
        "output_share_pct": share(t_out, t_total),
        "avg_tokens_per_message": num(exact_ratio(t_total, n_messages)),
        "vs_previous": {"input_tokens": compared(t_in, p_in), "output_tokens": compared(t_out, p_out),
                        "total_tokens": compared(t_total, p_in + p_out)},
        "by_agent": tok_agents,
        "by_model": tok_models,
    }

    # ---------------------------------------------------------------- health (at the period end E)
    E = end
    H = ds.health
    ert = s["error_rate_thresholds_pct"]
    rtt = s["response_time_thresholds_ms"]

    def error_status(pct) -> str:
        if pct is None:
            return NO_DATA
        return "Excellent" if pct < ert[0] else "Good" if pct < ert[1] else "Acceptable" if pct < ert[2] else "Poor"

    def response_status(ms: float | None) -> str:
        if ms is None:
            return NO_DATA
        return "Fast" if ms < rtt[0] else "Good" if ms < rtt[1] else "Acceptable" if ms < rtt[2] else "Slow"

    def uptime_pct(a: int, b: int) -> tuple[int, Fraction | None]:
        probes = H[(H["us"] >= a) & (H["us"] < b)]
        return len(probes), exact_ratio(int(probes["up"].sum()) * 100, len(probes))

    uptime = []
    for name, width in (("24h", DAY), ("7d", 7 * DAY), ("30d", 30 * DAY)):
        a = E - width
        n, pct = uptime_pct(a, E)
        _, before = uptime_pct(a - width, a)
        overlapping = [(st, en) for st, en, _ in ds.incidents if st < E and (en is None or en > a)]
        minutes = sum((min(en if en is not None else E, E) - max(st, a)) / MINUTE for st, en in overlapping)
        uptime.append({"window": name, "probes": n, "uptime_pct": num(pct),
                       "status": NO_DATA if pct is None else ("Healthy" if pct >= Fraction(str(s["uptime_threshold_pct"]))
                                                              else "Degraded"),
                       "incidents": len(overlapping), "downtime_minutes": float(minutes),
                       "previous_uptime_pct": num(before), "change_pp": change_pp(pct, before)})

    a30 = E - 30 * DAY
    incidents = [
        {"component": c, "started_at": iso(st), "ended_at": iso(en) if en is not None and en <= E else None,
         "downtime_minutes": float((min(en if en is not None else E, E) - max(st, a30)) / MINUTE)}
        for st, en, c in sorted(ds.incidents, key=lambda i: (-i[0], i[2]))
        if st < E and (en is None or en > a30)
    ]

    minute_end = E - E % MINUTE
    error_windows = []
    for name, width, b in (("current", MINUTE, minute_end), ("1h", HOUR, E), ("24h", DAY, E), ("7d", 7 * DAY, E)):
        mask = mwin(b - width, b)
        pct, before = error_pct(mask), error_pct(mwin(b - 2 * width, b - width))
        error_windows.append({"window": name, "messages": int(mask.sum()), "error_rate_pct": num(pct),
                              "status": error_status(pct), "previous_error_rate_pct": num(before),
                              "change_pp": change_pp(pct, before)})

    prev_timed = prev_msgs["rt"].tolist()
    response_time = {}
    for q in (50, 95, 99):
        now, before = performance[f"p{q}_response_time_ms"], percentile(prev_timed, q)
        response_time |= {f"p{q}_ms": now, f"p{q}_status": response_status(now), f"p{q}_previous_ms": before,
                          f"p{q}_change_pct": change_pct(now, before)}

    def reaches(b: int) -> bool:
        """Whether the warehouse holds a message (any scope) at or after b: else an empty window has no data."""
        return bool((M["us"] >= b).any())

    current_n = int(mwin(minute_end - MINUTE, minute_end).sum())
    current = current_n if current_n or reaches(minute_end) else None
    # the local day of the period's last instant, from its midnight up to E
    per_minute = (M.loc[mwin(day_start(end_date), E), "us"] // MINUTE).value_counts()
    if len(per_minute):
        peak = int(per_minute.max())
        peak_minute = iso(int(min(k for k, v in per_minute.items() if v == peak)) * MINUTE)
    else:
        peak, peak_minute = (0 if reaches(E) else None), None
    capacity = int(s["capacity_per_min"])
    request_volume = {
        "current_per_min": current,
        "peak_per_min_today": peak,
        "peak_minute": peak_minute,
        "capacity_per_min": capacity,
        "headroom_pct": None if peak is None else num(exact_ratio((capacity - peak) * 100, capacity)),
    }

    Q = ds.queues
    queue_rows = []
    in_period = Q[(Q["us"] >= start) & (Q["us"] < end)]
    for name in sorted(set(in_period["queue"].dropna().tolist())):
        samples = in_period[in_period["queue"] == name]["depth"].tolist()
        upto = Q[(Q["queue"] == name) & (Q["us"] <= E)].sort_values(["us", "eid"])
        queue_rows.append({"queue": name, "latest_depth": int(upto["depth"].iloc[-1]),
                           "avg_depth": float(np.mean(samples)), "max_depth": int(max(samples)),
                           "p95_depth": percentile([float(x) for x in samples], 95)})

    health = {"uptime": uptime, "incidents": incidents, "error_rate": error_windows, "response_time": response_time,
              "request_volume": request_volume, "queues": queue_rows}

    goal_rows = []
    for g in s.get("goals", []):
        agent = g.get("agent")
        if (scope is not None or agent is not None) and (agent is None or (scope is not None and agent not in scope)):
            continue  # company goals: the all-agents document; an agent's: documents whose scope holds it
        if agent is None:
            values = _goal_values(_plain({"daily": daily, "totals": totals, "performance": performance, "cost": cost}))
        else:
            values = _goal_values(compute(files, period, tz, as_of, [agent], {**s, "goals": []}))
        months = (full_end - start) / (end - start) if kind == "month" else Fraction(
            calendar.monthrange(end_date.year, end_date.month)[1] * DAY, end - start)
        goal_rows.append(_goal_row(g, values, months))

    return _plain({
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso(to_us(datetime.now(UTC))),  # not compared
        "as_of": iso(as_of_us),
        "time_zone": tz,
        "period": period_doc(label, start, end, full_end),
        "previous_period": period_doc(f"previous {label}", p_start, p_end, p_full_end),
        "scope": {"agents": scope},
        "note": None if n_messages else NO_MESSAGES,
        "totals": totals,
        "overview": overview,
        "engagement": engagement,
        "performance": performance,
        "cost": cost,
        "tokens": tokens,
        "health": health,
        "goals": {"problem": None, "items": goal_rows},
        "budgets": _budgets(C, [b for b in s.get("budgets", []) if scope is None or b.get("agent") in scope],
                            end, s.get("company_tz", "UTC")),
        "deployments": _deployments(ds, S, start, end, as_of_us, scope, label_of),
        "bills": [],  # no bills among the raw files compared here (tests/test_bills.py checks them by hand)
        "users": _users(M, C, S, m_in, c_in, s_in, start, end, dates, day_start, zone, end_date,
                        end < full_end, s["user_id_hash_key"]),
        "daily": daily,
        "weekly": weekly,
    })


def _deployments(ds: Dataset, sessions: pd.DataFrame, start: int, end: int, as_of_us: int,
                 scope: list[str] | None, label_of) -> dict:
    """The `deployments` section (tests/oracle_deployments.py) from the dataset's tables."""
    tokens: dict[int, int] = {}
    for m, inp, out in zip(ds.calls["m"].tolist(), ds.calls["inp"].tolist(), ds.calls["out"].tolist(), strict=True):
        tokens[m] = tokens.get(m, 0) + inp + out
    messages = [{"index": i, **row} for i, row in enumerate(ds.messages[["us", "user", "agent", "err", "rt", "cost"]]
                                                           .to_dict("records"))]
    return oracle_deployments.section(ds.deployments, messages, tokens, sessions[["agent", "start", "n"]].to_dict("records"),
                                      start, end, as_of_us, scope, label_of, iso)
def _shown(user: str, key: str | None) -> str:
    return user if key is None else "u_" + hmac.new(key.encode(), user.encode(), hashlib.sha256).hexdigest()[:16]


def _hour_by_hour(msgs: pd.DataFrame, start: int, end: int, zone: ZoneInfo) -> list[dict]:
    """Every local hour of [start, end): a new hour begins wherever the local (date, hour, UTC
    offset) changes, walking the window in 15-minute steps."""
    starts, key = [], None
    for us in range(start, end, 15 * MINUTE):
        t = from_us(us).astimezone(zone)
        k = (t.date(), t.hour, t.utcoffset())
        if k != key:
            starts.append((us, t))
            key = k
    rows = []
    for i, (us, t) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else us + 60 * MINUTE
        hm = msgs[(msgs["us"] >= us) & (msgs["us"] < min(stop, end))]
        errors = int(hm["err"].sum())
        rows.append({"hour_start": iso(us), "date": t.date().isoformat(), "hour": t.hour, "partial": stop > end,
                     "messages": len(hm), "errors": errors, "error_rate_pct": num(exact_ratio(errors * 100, len(hm))),
                     "p95_response_time_ms": percentile(hm["rt"].tolist(), 95)})
    return rows


def _users(M, C, S, m_in, c_in, s_in, start, end, dates, day_start, zone, end_date, partial, key) -> dict:
    """Top users of [start, end) by messages, sessions and cost (ties by user id), and per local
    day the active users split into new (first message ever, in scope, on that day) and returning."""
    mm = m_in & (M["us"] >= start) & (M["us"] < end)
    figures: dict[str, dict] = {}
    for i in M.index[mm]:
        u = M.at[i, "user"]
        f = figures.setdefault(u, {"messages": 0, "sessions": 0, "errors": 0, "cost_usd": Decimal(0),
                                   "total_tokens": 0, "agents": set(), "days": set()})
        f["messages"] += 1
        f["errors"] += int(M.at[i, "err"])
        f["cost_usd"] += M.at[i, "cost"]
        f["agents"].add(M.at[i, "agent"])
        f["days"].add(from_us(M.at[i, "us"]).astimezone(zone).date())
    cm = c_in & (C["us"] >= start) & (C["us"] < end)
    for m, inp, out in zip(C.loc[cm, "m"], C.loc[cm, "inp"], C.loc[cm, "out"], strict=True):
        figures[M.at[m, "user"]]["total_tokens"] += int(inp) + int(out)
    for u in S.loc[s_in & (S["start"] >= start) & (S["start"] < end), "user"]:
        figures[u]["sessions"] += 1

    def ranking(measure: str) -> list[dict]:
        order = sorted(figures, key=lambda u: (-figures[u][measure], u))[:TOP_N]
        return [{"rank": i + 1, "user_id": _shown(u, key), "messages": figures[u]["messages"],
                 "sessions": figures[u]["sessions"], "errors": figures[u]["errors"],
                 "cost_usd": figures[u]["cost_usd"], "total_tokens": figures[u]["total_tokens"],
                 "agents": len(figures[u]["agents"]), "active_days": len(figures[u]["days"])}
                for i, u in enumerate(order)]

    first_seen = M[m_in].groupby("user")["us"].min().to_dict()
    active: dict[date, set] = {}
    for i in M.index[mm]:
        active.setdefault(from_us(M.at[i, "us"]).astimezone(zone).date(), set()).add(M.at[i, "user"])
    days = []
    for d in dates:
        users = active.get(d, set())
        new = sum(1 for u in users if first_seen[u] >= day_start(d))
        days.append({"date": d.isoformat(), "partial": partial and d == end_date, "active_users": len(users),
                     "new_users": new, "returning_users": len(users) - new})
    return {"top_n": TOP_N, "user_ids_hashed": key is not None,
            "top_users": {"by_messages": ranking("messages"), "by_sessions": ranking("sessions"),
                          "by_cost": ranking("cost_usd")},
            "new_vs_returning": days}


GOAL_UNITS = {"dau": "users", "sessions_per_month": "sessions", "cost_per_month": "USD", "cost_per_user": "USD",
              "error_rate": "%", "response_time": "ms"}


def _goal_values(doc: dict) -> dict:
    """What goals compare, from a document's plain values: the average of its daily DAU rounded
    half up to 0.1 (null without messages), its totals, its cost per user, error rate and
    response times."""
    perf, days = doc["performance"], doc["daily"]
    return {
        "dau": round_half_up(Fraction(sum(d["dau"] for d in days), len(days)), 1) if perf["messages"] else None,
        "sessions_per_month": doc["totals"]["sessions"],
        "cost_per_month": doc["totals"]["cost_usd"],
        "cost_per_user": doc["cost"]["cost_per_user_usd"],
        "error_rate": perf["error_rate_pct"],
        "response_time": {"avg": perf["avg_response_time_ms"], "p50": perf["p50_response_time_ms"],
                          "p95": perf["p95_response_time_ms"], "p99": perf["p99_response_time_ms"]},
    }


def _goal_row(g: dict, values: dict, months) -> dict:
    """One goal: a total per month is compared through its projection (the window's total times
    how often the window fits in its month), every other metric through its value."""
    statistic = g.get("statistic", "avg" if g["metric"] == "response_time" else None)
    value = values[g["metric"]][statistic] if statistic else values[g["metric"]]
    monthly = g["metric"] in ("sessions_per_month", "cost_per_month")
    projection = None if not monthly or value is None else Fraction(value) * months
    compared = projection if monthly else value
    target = g["target"]
    met = None
    if compared is not None:
        met = compared >= target if g["direction"] == "at_least" else compared <= target
    return {
        "name": g["name"], "description": g.get("description", ""), "metric": g["metric"], "statistic": statistic,
        "agent_id": g.get("agent"), "unit": GOAL_UNITS[g["metric"]], "direction": g["direction"],
        "target": float(target), "actual": None if value is None else float(value),
        "projection": None if projection is None else float(projection),
        "compared": "projection" if monthly else "actual",
        "gap": None if compared is None else float(Fraction(compared) - Fraction(target)),
        "progress_pct": None if compared is None or target == 0 else float(Fraction(compared) * 100 / Fraction(target)),
        "on_track": met,
    }


def _budgets(C: pd.DataFrame, budgets: list[dict], end: int, company_tz: str) -> dict:
    """Each budget against the company-time-zone month holding `end`, from the priced calls:
    the cost of [month start, end) and of the last 7 company days up to `end`, their rate per
    elapsed day (a day in progress counts as its elapsed fraction), the forecast at that rate
    over the rest of the month, exact with Decimal / Fraction."""
    zone = ZoneInfo(company_tz)
    last = local_date(end - US, zone)
    day_start, day_end = midnight(last, zone), midnight(last + timedelta(days=1), zone)
    elapsed = Fraction(end - day_start, day_end - day_start)
    month_start, week_start = midnight(last.replace(day=1), zone), midnight(last - timedelta(days=6), zone)
    left = calendar.monthrange(last.year, last.month)[1] - last.day + 1 - elapsed
    rows = []
    for b in budgets:
        mine = C["agent"] == b["agent"] if "agent" in b else C["provider"] == b["provider"] if "provider" in b else True
        spend = dsum(C.loc[mine & (C["us"] >= month_start) & (C["us"] < end), "cost"].tolist())
        week = dsum(C.loc[mine & (C["us"] >= week_start) & (C["us"] < end), "cost"].tolist())
        rate = Fraction(week) / (6 + elapsed)
        forecast = Fraction(spend) + rate * left
        amount = Fraction(str(b["budget_usd"]))
        if spend >= amount:
            exhausted, status = 0, "exceeded"
        else:
            exhausted = None if rate == 0 else (amount - Fraction(spend)) / rate
            status = "forecast_over" if forecast > amount else "on_track"
        rows.append({
            "name": b["name"], "description": b.get("description", ""),
            "scope": "agent" if "agent" in b else "provider" if "provider" in b else "company",
            "agent_id": b.get("agent"), "provider": b.get("provider"), "month": f"{last:%Y-%m}",
            "budget_usd": float(amount), "spend_usd": spend, "last_7_days_usd": week, "run_rate_usd_per_day": rate,
            "forecast_usd": forecast, "percent_used": Fraction(spend) * 100 / amount, "forecast_pct": forecast * 100 / amount,
            "days_until_exhausted": exhausted, "status": status,
        })
    return {"problem": None, "month": f"{last:%Y-%m}", "time_zone": company_tz, "days_left_in_month": left, "items": rows}


def _plain(value):
    """numpy scalars -> Python numbers, recursively (for json and jsonschema)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (Decimal, Fraction)):
        return float(value)
    return value
