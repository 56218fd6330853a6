"""The comparison document: per metric both versions' values, the difference B - A with its
confidence interval and p-value, the test, the verdict; the warnings about small samples.
Schema: agent_analytics/schema/ab_comparison.schema.json; definitions:
docs/metric-definitions.md, *A/B comparison*."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from agent_analytics.comparison import statistics as st
from agent_analytics.comparison.samples import VersionSample
from agent_analytics.comparison.statistics import Interval
from agent_analytics.periods import Period, iso

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema" / "ab_comparison.schema.json"
Z_TEST = "two-proportion z-test"
RANK_TEST = "Mann-Whitney U"


@dataclass(frozen=True)
class Metric:
    name: str
    label: str  # in the terminal table
    unit: str  # the independent unit the test counts: message, session or user
    test: str | None  # None: a volume, reported without a test or verdict
    better: str | None  # "lower", or None: no direction is better (volumes, messages per session)


METRICS = (
    Metric("messages", "messages", "message", None, None),
    Metric("users", "users", "user", None, None),
    Metric("sessions", "sessions", "session", None, None),
    # More messages in a session can be engagement or an agent that needs more turns: no verdict
    # of better or worse, only whether it is higher or lower.
    Metric("messages_per_session", "messages per session", "session", RANK_TEST, None),
    Metric("error_rate_pct", "error rate", "message", Z_TEST, "lower"),
    Metric("avg_response_time_ms", "avg response time", "message", RANK_TEST, "lower"),
    Metric("p50_response_time_ms", "P50 response time", "message", RANK_TEST, "lower"),
    Metric("p95_response_time_ms", "P95 response time", "message", RANK_TEST, "lower"),
    Metric("cost_per_message_usd", "cost per message", "message", RANK_TEST, "lower"),
    Metric("tokens_per_message", "tokens per message", "message", RANK_TEST, "lower"),
)
THRESHOLDS = {"min_messages": st.MIN_MESSAGES, "min_sessions": st.MIN_SESSIONS, "min_users": st.MIN_USERS,
              "min_expected_count": st.MIN_EXPECTED}
# The levels and thresholds every document of tests states.
TEST_SETTINGS = {"confidence_level": st.CONFIDENCE, "significance_level": st.ALPHA, "thresholds": THRESHOLDS}


def compare_samples(a: VersionSample, b: VersionSample, seed: int = st.SEED) -> dict[str, dict]:
    """Every metric of METRICS for versions A and B (JSON-ready, keyed by metric name)."""
    times = st.skewed_test(a.response_time_ms, b.response_time_ms, ("mean", "p50", "p95"), seed)
    errors_a, errors_b = int(a.is_error.sum()), int(b.is_error.sum())
    tested: dict[str, tuple[float | None, float | None, Interval, int, int]] = {
        "messages_per_session": _skewed(a.session_messages, b.session_messages, seed),
        "error_rate_pct": (
            _ratio(errors_a, a.messages, 100), _ratio(errors_b, b.messages, 100),
            scaled(st.two_proportion_test(errors_a, a.messages, errors_b, b.messages), 100), a.messages, b.messages,
        ),
        "cost_per_message_usd": _skewed(a.cost_usd, b.cost_usd, seed),
        "tokens_per_message": _skewed(a.total_tokens, b.total_tokens, seed),
    }
    for name, stat in (("avg", "mean"), ("p50", "p50"), ("p95", "p95")):
        values = st.statistic(a.response_time_ms, stat), st.statistic(b.response_time_ms, stat)
        tested[f"{name}_response_time_ms"] = (*values, times[stat], len(a.response_time_ms), len(b.response_time_ms))
    volumes = {"messages": (a.messages, b.messages), "users": (a.users, b.users), "sessions": (a.sessions, b.sessions)}
    result = {}
    for metric in METRICS:
        if metric.test is None:
            value_a, value_b = volumes[metric.name]
            result[metric.name] = _row(metric, value_a, value_b, Interval(value_b - value_a, None, None, None),
                                       value_a, value_b, "n/a")
            continue
        value_a, value_b, interval, n_a, n_b = tested[metric.name]
        sufficient = enough(metric, n_a, n_b, a.users, b.users, errors_a + errors_b, a.messages + b.messages)
        result[metric.name] = _row(metric, value_a, value_b, interval, n_a, n_b, verdict(metric, interval, sufficient))
    return result


def verdict(metric: Metric, interval: Interval, enough: bool) -> str:
    """better / worse (B against A, for a metric where lower is better), higher / lower (no
    direction is better), no significant difference, or insufficient data. Significant means
    p < ALPHA and an interval without 0, so a verdict never contradicts the interval shown."""
    if not enough:
        return "insufficient data"
    if not interval.significant:
        return "no significant difference"
    lower = interval.difference < 0
    if metric.better is None:
        return "lower" if lower else "higher"
    return "better" if lower == (metric.better == "lower") else "worse"


def enough(metric: Metric, n_a: int, n_b: int, users_a: int, users_b: int, errors: int, messages: int) -> bool:
    """Whether both samples (n_a, n_b units; users_a, users_b users; errors of messages in
    both) are large enough for the metric's test to mean something."""
    least = st.MIN_SESSIONS if metric.unit == "session" else st.MIN_MESSAGES
    if min(n_a, n_b) < least or min(users_a, users_b) < st.MIN_USERS:
        return False
    if metric.test == Z_TEST:  # the normal approximation needs enough errors and successes
        pooled = errors / messages
        return min(n_a, n_b) * min(pooled, 1 - pooled) >= st.MIN_EXPECTED
    return True


def warnings(versions: tuple[str, str], a: VersionSample, b: VersionSample, users_in_both: int,
             kind: str = "version") -> list[str]:
    """One line per reason a verdict may be missing or weaker than it looks; `kind` names what
    A and B are (versions; the windows before and after a deployment)."""
    lines = []
    for version, sample in zip(versions, (a, b), strict=True):
        if sample.messages < st.MIN_MESSAGES:
            lines.append(f"{kind} {version!r} has {sample.messages} messages, fewer than {st.MIN_MESSAGES}: "
                         "no verdict on the metrics per message")
        if sample.sessions < st.MIN_SESSIONS:
            lines.append(f"{kind} {version!r} has {sample.sessions} sessions, fewer than {st.MIN_SESSIONS}: "
                         "no verdict on messages per session")
        if sample.users < st.MIN_USERS:
            lines.append(f"{kind} {version!r} has {sample.users} users, fewer than {st.MIN_USERS}: no verdict at all "
                         "(a user's messages are not independent of each other)")
    errors, messages = int(a.is_error.sum() + b.is_error.sum()), a.messages + b.messages
    if messages and min(a.messages, b.messages) >= st.MIN_MESSAGES:
        pooled = errors / messages
        if min(a.messages, b.messages) * min(pooled, 1 - pooled) < st.MIN_EXPECTED:
            lines.append(f"fewer than {st.MIN_EXPECTED} errors (or successes) expected in a {kind} at the pooled "
                         f"error rate {pooled * 100:.2f}%: no verdict on the error rate")
    if users_in_both:
        lines.append(f"{users_in_both} users sent messages to both {kind}s: the {kind}s' samples are not fully "
                     "independent")
    return lines


def comparison_document(*, agent: dict, versions: tuple[str, str], period: Period, as_of: datetime,
                        a: VersionSample, b: VersionSample, users_in_both: int) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        **stamp(period, as_of),
        "agent": agent,
        "versions": {"a": versions[0], "b": versions[1]},
        **TEST_SETTINGS,
        "users_in_both": users_in_both,
        "metrics": compare_samples(a, b),
        "warnings": warnings(versions, a, b, users_in_both),
    }


def stamp(period: Period, as_of: datetime) -> dict:
    """When a document was made, the time it counts up to, its time zone and period."""
    return {"generated_at": iso(datetime.now(timezone.utc)), "as_of": iso(as_of), "time_zone": period.tz,
            "period": period.describe()}


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _skewed(a: np.ndarray, b: np.ndarray, seed: int) -> tuple[float | None, float | None, Interval, int, int]:
    return st.statistic(a, "mean"), st.statistic(b, "mean"), st.skewed_test(a, b, ("mean",), seed)["mean"], len(a), len(b)


def _ratio(numerator: int, denominator: int, scale: float) -> float | None:
    return numerator / denominator * scale if denominator else None


def scaled(interval: Interval, factor: float) -> Interval:
    """A proportion's interval in percentage points."""

    def scale(value: float | None) -> float | None:
        return None if value is None else value * factor

    return Interval(scale(interval.difference), scale(interval.low), scale(interval.high), interval.p_value)


def _row(metric: Metric, value_a, value_b, interval: Interval, n_a: int, n_b: int, verdict_text: str) -> dict:
    return {
        "unit": metric.unit,
        "a": value_a,
        "b": value_b,
        "difference": interval.difference,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "p_value": interval.p_value,
        "test": metric.test,
        "better": metric.better,
        "sample_a": n_a,
        "sample_b": n_b,
        "verdict": verdict_text,
    }
