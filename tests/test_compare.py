"""A/B comparison (`agent-analytics compare`, POST /v1/analytics/compare).

1. Seeded synthetic traffic where version B has 30% fewer errors and is 10% slower, read from
   marts tables like the build's: the verdicts say so (with the bootstrap intervals and, above
   BOOTSTRAP_MAX_UNITS, with the normal ones).
2. A/A: two samples of the same traffic, 200 seeds, through the same statistics function: no
   metric is flagged much more often than the 5% level.
3. On the hand fixture's values, the p-values and intervals agree with scipy and with exact
   enumerations computed here.
4. End to end: the hand fixture ingested and built, `compare` in JSON (every value against the
   hand count below), in the table, with its small-sample warnings, and its bad arguments.
5. The HTTP endpoint answers the command's document.

The hand fixture (HAND, 2026-11-10 UTC, agent support; a 30-minute session timeout):
  v1: a1 u1 10:00 1000 ms $0.01 150 tokens; a2 u1 10:05 2000 ms $0.02 300; a3 u1 10:10 error, no
      time, no call; a4 u2 11:00 3000 ms $0.03 450; a5 u2 13:00 4000 ms $0.01 200
  v2: b1 u2 13:10 2500 ms $0.02 250 (in a5's session, which is v1's); b2 u3 10:00 1500 ms $0.02
      200; b3 u3 10:20 3500 ms $0.02 200; b4 u1 15:00 error 500 ms, no call; b5 u4 12:00 5000 ms
      $0.04 600; b6 u4 12:10 6000 ms $0.04 600
  not compared: n1 (support, no version), s1 (agent sales), o1 (v1, 2026-11-01: before the period)
So v1: 5 messages, 1 error (20%), users u1 u2, sessions u1 10:00 (a1-a3), u2 11:00 (a4),
u2 13:00 (a5 b1: its first message is v1's) = 3 sessions of 3, 1, 2 messages (mean 2).
v2: 6 messages, 1 error (16.67%), users u1 u2 u3 u4, sessions u1 15:00 (b4), u3 10:00 (b2 b3),
u4 12:00 (b5 b6) = 3 sessions of 1, 2, 2 (mean 5/3). Users of both: u1, u2.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
from pathlib import Path

import duckdb
import httpx
import jsonschema
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from agent_analytics.comparison import CompareQuery, compare_document, load_schema
from agent_analytics.comparison import statistics as st
from agent_analytics.comparison.document import METRICS, compare_samples
from agent_analytics.comparison.samples import VersionSample
from agent_analytics.settings import load_settings
from tests.service_server import SCRIPT, make_tokens, start_server

TESTED = [m.name for m in METRICS if m.test]
VOLUMES = [m.name for m in METRICS if not m.test]


# ----------------------------------------------------------------- 1. a known effect


def synthetic_marts(path: Path, sessions: int, seed: int) -> None:
    """A warehouse file with fct_messages, fct_sessions and dim_agents as the build writes them
    (the columns the comparison reads): `sessions` sessions per version over 2026-11-14..20,
    each of 1 + Poisson(2) messages two minutes apart, from 2,000 users per version (a user sees
    one version). Version B's error rate is 0.7 x A's (5% -> 3.5%) and its response times 1.1 x
    A's (lognormal, median 2 s); cost, tokens and session lengths have the same distribution in
    both."""
    rng = np.random.default_rng(seed)
    messages, session_rows = [], []
    for version, error_rate, slowdown in (("v1", 0.05, 1.0), ("v2", 0.035, 1.1)):
        lengths = 1 + rng.poisson(2, sessions)
        first = pd.Timestamp("2026-11-14") + pd.to_timedelta(rng.uniform(0, 7 * 86400 - 3600, sessions), unit="s")
        session = np.repeat(np.arange(sessions), lengths)
        order = np.arange(len(session)) - np.repeat(np.cumsum(lengths) - lengths, lengths)  # 0, 1, ... in its session
        users = np.char.add(f"{version}-u", rng.integers(0, 2000, sessions).astype(str))
        session_rows.append(pd.DataFrame({
            "session_id": np.char.add(f"{version}-s", np.arange(sessions).astype(str)), "user_id": users,
            "agent_id": "support", "agent_version": version, "session_started_at": first, "message_count": lengths}))
        n = len(session)
        messages.append(pd.DataFrame({
            "message_id": np.char.add(f"{version}-m", np.arange(n).astype(str)), "user_id": users[session],
            "agent_id": "support", "agent_version": version,
            "occurred_at": first[session] + pd.to_timedelta(2 * order, unit="min"),
            "is_error": rng.random(n) < error_rate,
            "response_time_ms": rng.lognormal(math.log(2000), 0.5, n) * slowdown,
            "cost_usd": rng.lognormal(math.log(0.01), 1.0, n),
            "total_tokens": rng.integers(100, 4000, n),
        }))
    with duckdb.connect(str(path)) as con:
        sessions_frame, messages_frame = pd.concat(session_rows), pd.concat(messages)  # noqa: F841 (read by DuckDB)
        con.execute("create table dim_agents as select 'support' as agent_id, 'Support Agent' as agent_name")
        con.execute("create table fct_sessions as select * from sessions_frame")
        con.execute("create table fct_messages as select * replace (cast(cost_usd as decimal(38, 10)) as cost_usd) "
                    "from messages_frame")


@pytest.mark.parametrize("sessions, ci_method", [(2800, "bootstrap"), (6000, "normal")], ids=["bootstrap", "normal"])
def test_a_known_effect_is_detected_with_the_right_verdicts(tmp_path, sessions, ci_method):
    home = tmp_path / "home"
    home.mkdir()
    synthetic_marts(home / "warehouse.duckdb", sessions, seed=5)
    settings = load_settings({"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC"})
    doc = compare_document(settings, CompareQuery(agent="support", versions=("v1", "v2"), as_of="2026-11-20"))
    jsonschema.validate(doc, load_schema())
    m = doc["metrics"]
    # the sizes put the response times on the side of BOOTSTRAP_MAX_UNITS the case names
    assert (max(m["avg_response_time_ms"]["sample_a"], m["avg_response_time_ms"]["sample_b"])
            > st.BOOTSTRAP_MAX_UNITS) == (ci_method == "normal")
    assert doc["period"]["label"] == "7d" and doc["period"]["start_date"] == "2026-11-14"  # the default period
    assert m["sessions"]["a"] == m["sessions"]["b"] == sessions and doc["warnings"] == []
    verdicts = {name: row["verdict"] for name, row in m.items()}
    assert verdicts == {
        "messages": "n/a", "users": "n/a", "sessions": "n/a",
        "messages_per_session": "no significant difference",
        "error_rate_pct": "better",  # fewer errors
        "avg_response_time_ms": "worse", "p50_response_time_ms": "worse", "p95_response_time_ms": "worse",  # slower
        "cost_per_message_usd": "no significant difference", "tokens_per_message": "no significant difference",
    }
    # the estimates are near the effect put in, and every interval holds its difference
    assert m["error_rate_pct"]["b"] / m["error_rate_pct"]["a"] == pytest.approx(0.7, abs=0.12)
    for name in ("avg_response_time_ms", "p50_response_time_ms", "p95_response_time_ms"):
        assert m[name]["b"] / m[name]["a"] == pytest.approx(1.1, abs=0.04), name
    for name in TESTED:
        row = m[name]
        assert row["ci_low"] < row["difference"] < row["ci_high"] and row["difference"] == pytest.approx(row["b"] - row["a"])


# ----------------------------------------------------------------- 2. A/A


def aa_samples(rng: np.random.Generator, messages: int) -> VersionSample:
    """One version's sample of a fixed traffic: 10% errors, lognormal times and costs."""
    sessions = 1 + rng.poisson(2, messages // 3)
    return VersionSample(
        is_error=rng.random(messages) < 0.10,
        response_time_ms=rng.lognormal(math.log(2000), 0.6, messages),
        cost_usd=rng.lognormal(math.log(0.01), 1.0, messages),
        total_tokens=rng.integers(100, 4000, messages).astype(float),
        session_messages=sessions.astype(float),
        users=60,
    )


def test_an_aa_split_is_flagged_no_more_often_than_the_level():
    seeds = 200
    flagged = dict.fromkeys(TESTED, 0)
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        rows = compare_samples(aa_samples(rng, 240), aa_samples(rng, 240), seed=seed)
        for name in TESTED:
            assert rows[name]["verdict"] != "insufficient data"
            flagged[name] += rows[name]["verdict"] not in ("no significant difference",)
    # 200 draws of a 5% event: 10 expected, 17 is over two standard deviations (3.1) above
    assert {name: count / seeds for name, count in flagged.items() if count / seeds > 0.05 + 0.035} == {}


# ----------------------------------------------------------------- 3. against scipy, on the hand fixture

TIMES_A = np.array([1000.0, 2000, 3000, 4000])  # v1's timed messages: a1, a2, a4, a5
TIMES_B = np.array([2500.0, 1500, 3500, 500, 5000, 6000])  # v2's: b1..b6
COST_A = np.array([0.01, 0.02, 0.0, 0.03, 0.01])
COST_B = np.array([0.02, 0.02, 0.02, 0.0, 0.04, 0.04])


def exact_rank_test_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of U over every way to split the pooled values into groups of len(a) and
    len(b): the share of splits whose U is at least as far from its mean (no ties here)."""
    pooled = np.concatenate([a, b])
    mean = len(a) * len(b) / 2

    def u_of(b_values) -> float:
        return sum(1.0 for x in b_values for y in pooled if y not in b_values and x > y)

    observed = abs(u_of(list(b)) - mean)
    splits = [abs(u_of([pooled[i] for i in chosen]) - mean) for chosen in itertools.combinations(range(len(pooled)), len(b))]
    return sum(d >= observed - 1e-9 for d in splits) / len(splits)


def test_the_statistics_agree_with_scipy_on_the_hand_fixture():
    # error rate: v1 1 of 5, v2 1 of 6. The z-test's p is the chi-squared test's on the 2x2 table.
    result = st.two_proportion_test(1, 5, 1, 6)
    chi2_p = stats.chi2_contingency([[1, 4], [1, 5]], correction=False).pvalue
    assert result.p_value == pytest.approx(chi2_p, rel=1e-12)
    z, p_a, p_b = stats.norm.ppf(0.975), 1 / 5, 1 / 6
    half = z * math.sqrt(p_a * (1 - p_a) / 5 + p_b * (1 - p_b) / 6)
    assert (result.difference, result.low, result.high) == pytest.approx((p_b - p_a, p_b - p_a - half, p_b - p_a + half))

    # response times: the Mann-Whitney U p-value, against every split of the 10 values
    times = st.skewed_test(TIMES_A, TIMES_B, ("mean", "p50", "p95"))
    assert times["mean"].p_value == pytest.approx(exact_rank_test_p(TIMES_A, TIMES_B), rel=1e-12)
    assert times["mean"].p_value == pytest.approx(stats.mannwhitneyu(TIMES_B, TIMES_A).pvalue)
    assert times["p95"].difference == pytest.approx(5750 - 3850)  # np.quantile: 5000 + 0.75 x 1000, 3000 + 0.85 x 1000

    # the bootstrap interval against scipy's percentile bootstrap (both Monte Carlo: within 10% of its width)
    def p95(x, axis):
        return np.quantile(x, 0.95, axis=axis)

    cost = st.skewed_test(COST_A, COST_B, ("mean",))["mean"]
    for ours, statistic, a, b in ((times["mean"], np.mean, TIMES_A, TIMES_B), (times["p95"], p95, TIMES_A, TIMES_B),
                                  (cost, np.mean, COST_A, COST_B)):
        theirs = stats.bootstrap((a, b), lambda x, y, axis, f=statistic: f(y, axis=axis) - f(x, axis=axis),
                                 n_resamples=20_000, method="percentile", rng=np.random.default_rng(3)).confidence_interval
        width = theirs.high - theirs.low
        assert abs(ours.low - theirs.low) < 0.1 * width and abs(ours.high - theirs.high) < 0.1 * width


def test_above_the_bootstrap_size_the_interval_is_the_normal_one():
    rng = np.random.default_rng(8)
    a = rng.lognormal(math.log(2000), 0.6, st.BOOTSTRAP_MAX_UNITS + 5000)
    b = rng.lognormal(math.log(2100), 0.6, st.BOOTSTRAP_MAX_UNITS + 9000)
    ours = st.skewed_test(a, b, ("mean", "p95"))
    # the mean: Welch's normal interval
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    welch = (b.mean() - a.mean() - 1.959964 * se, b.mean() - a.mean() + 1.959964 * se)
    assert ours["mean"].low == pytest.approx(welch[0], abs=0.05 * 2 * 1.96 * se)
    assert ours["mean"].high == pytest.approx(welch[1], abs=0.05 * 2 * 1.96 * se)
    # the P95: as wide as scipy's bootstrap interval of the difference, give or take 15%
    theirs = stats.bootstrap((a, b), lambda x, y, axis: np.quantile(y, 0.95, axis=axis) - np.quantile(x, 0.95, axis=axis),
                             n_resamples=1000, method="percentile", rng=np.random.default_rng(4)).confidence_interval
    width = theirs.high - theirs.low
    assert abs(ours["p95"].low - theirs.low) < 0.15 * width and abs(ours["p95"].high - theirs.high) < 0.15 * width


# ----------------------------------------------------------------- 4. end to end


def message(eid: str, at: str, user: str, version: str | None, status: str = "ok", rt: float | None = None,
            cost: float | None = None, tokens: tuple[int, int] = (0, 0), agent: str = "support", **extra) -> str:
    event = {"event_id": eid, "type": "message", "occurred_at": at, "user_id": user, "agent_id": agent, "status": status,
             **({"agent_version": version} if version else {}), **({"response_time_ms": rt} if rt is not None else {}),
             **extra}
    if cost is not None:
        event["llm_calls"] = [{"provider": "openai", "model": "gpt-4o", "input_tokens": tokens[0],
                               "output_tokens": tokens[1], "cost_usd": cost}]
    return json.dumps(event)


D = "2026-11-10T"
HAND = [
    message("a1", D + "10:00:00Z", "u1", "v1", rt=1000, cost=0.01, tokens=(100, 50), agent_name="Support Agent"),
    message("a2", D + "10:05:00Z", "u1", "v1", rt=2000, cost=0.02, tokens=(200, 100)),
    message("a3", D + "10:10:00Z", "u1", "v1", status="error"),
    message("a4", D + "11:00:00Z", "u2", "v1", rt=3000, cost=0.03, tokens=(300, 150)),
    message("a5", D + "13:00:00Z", "u2", "v1", rt=4000, cost=0.01, tokens=(100, 100)),
    message("b1", D + "13:10:00Z", "u2", "v2", rt=2500, cost=0.02, tokens=(200, 50)),
    message("b2", D + "10:00:00Z", "u3", "v2", rt=1500, cost=0.02, tokens=(150, 50)),
    message("b3", D + "10:20:00Z", "u3", "v2", rt=3500, cost=0.02, tokens=(150, 50)),
    message("b4", D + "15:00:00Z", "u1", "v2", status="error", rt=500),
    message("b5", D + "12:00:00Z", "u4", "v2", rt=5000, cost=0.04, tokens=(400, 200)),
    message("b6", D + "12:10:00Z", "u4", "v2", rt=6000, cost=0.04, tokens=(400, 200)),
    message("n1", D + "12:00:00Z", "u5", None, rt=1000),
    message("s1", D + "12:00:00Z", "u6", "v1", rt=9000, cost=0.5, tokens=(10, 10), agent="sales"),
    message("o1", "2026-11-01T10:00:00Z", "u1", "v1", rt=100, cost=1.0, tokens=(10, 10)),
]
AS_OF = "2026-11-11"  # the default period, 7d, is 2026-11-05..11


def _env(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_") and k != "DAGSTER_HOME"}
    return {**environ, "AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC"}


def run(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *argv], env=_env(home), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A home with the hand fixture ingested and built (`agent-analytics build`: dbt, the
    checks, the serving copy the comparison reads)."""
    home = tmp_path_factory.mktemp("compare") / "home"
    events = home.parent / "hand.jsonl"
    events.write_text("\n".join(HAND) + "\n")
    for argv in (["ingest", str(events)], ["build"]):
        proc = run(home, *argv)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home


def compare(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return run(home, "compare", "--agent", "support", "--versions", "v1", "v2", "--as-of", AS_OF, *argv)


def test_compare_json_holds_the_hand_counts(built):
    proc = compare(built, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, load_schema())
    assert doc["agent"] == {"agent_id": "support", "agent_name": "Support Agent", "label": "Support Agent (support)"}
    assert doc["versions"] == {"a": "v1", "b": "v2"} and doc["users_in_both"] == 2
    assert (doc["period"]["label"], doc["period"]["start_date"], doc["period"]["end_date"]) == ("7d", "2026-11-05", "2026-11-11")
    expected = {  # (a, b) from the module docstring's table
        "messages": (5, 6), "users": (2, 4), "sessions": (3, 3),
        "messages_per_session": (6 / 3, 5 / 3),
        "error_rate_pct": (20.0, 100 / 6),
        "avg_response_time_ms": (2500.0, 19000 / 6),
        "p50_response_time_ms": (2500.0, 3000.0),  # (2000 + 3000) / 2; (2500 + 3500) / 2
        "p95_response_time_ms": (3850.0, 5750.0),
        "cost_per_message_usd": (0.07 / 5, 0.14 / 6),
        "tokens_per_message": (1100 / 5, 1850 / 6),  # 150 + 300 + 0 + 450 + 200; 250 + 200 + 200 + 0 + 600 + 600
    }
    samples = {"messages": (5, 6), "users": (2, 4), "sessions": (3, 3), "messages_per_session": (3, 3),
               "avg_response_time_ms": (4, 6), "p50_response_time_ms": (4, 6), "p95_response_time_ms": (4, 6)}
    for name, (a, b) in expected.items():
        row = doc["metrics"][name]
        assert (row["a"], row["b"], row["difference"]) == pytest.approx((a, b, b - a)), name
        assert (row["sample_a"], row["sample_b"]) == samples.get(name, (5, 6)), name
        assert row["verdict"] == ("n/a" if name in VOLUMES else "insufficient data"), name
    # the p-values and intervals are the statistics' own on the hand values (sorted, as the
    # command reads them: the seeded bootstrap depends on the order, the engine's row order must not)
    rows = doc["metrics"]
    times = st.skewed_test(np.sort(TIMES_A), np.sort(TIMES_B), ("mean", "p50", "p95"))
    assert rows["p95_response_time_ms"]["p_value"] == pytest.approx(exact_rank_test_p(TIMES_A, TIMES_B))
    assert (rows["p95_response_time_ms"]["ci_low"], rows["p95_response_time_ms"]["ci_high"]) == pytest.approx(
        (times["p95"].low, times["p95"].high))
    assert rows["error_rate_pct"]["p_value"] == pytest.approx(stats.chi2_contingency([[1, 4], [1, 5]], correction=False).pvalue)
    assert rows["messages"]["p_value"] is None and rows["messages"]["ci_low"] is None
    assert doc["warnings"] == [
        "version 'v1' has 5 messages, fewer than 100: no verdict on the metrics per message",
        "version 'v1' has 3 sessions, fewer than 30: no verdict on messages per session",
        "version 'v1' has 2 users, fewer than 20: no verdict at all (a user's messages are not independent of each other)",
        "version 'v2' has 6 messages, fewer than 100: no verdict on the metrics per message",
        "version 'v2' has 3 sessions, fewer than 30: no verdict on messages per session",
        "version 'v2' has 4 users, fewer than 20: no verdict at all (a user's messages are not independent of each other)",
        "2 users sent messages to both versions: the versions' samples are not fully independent",
    ]
    # the same period given explicitly, and the versions the other way round: every difference turns sign
    swapped = json.loads(run(built, "compare", "--agent", "support", "--versions", "v2", "v1", "--start", "2026-11-05",
                             "--end", "2026-11-11", "--as-of", AS_OF, "--format", "json").stdout)
    for name in expected:
        assert swapped["metrics"][name]["difference"] == pytest.approx(-doc["metrics"][name]["difference"]), name


def test_compare_table(built):
    proc = compare(built)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "A/B comparison  Support Agent (support): A = v1, B = v2"
    assert lines[1].startswith("period 7d (2026-11-05 .. 2026-11-11, UTC)")
    rows = {line[2:22].strip(): line for line in lines if line.startswith("  ") and not line.startswith("  --")}
    assert rows["messages"].split() == ["messages", "5", "6", "+1", "n/a"]
    assert rows["error rate"].split()[2:6] == ["20.00%", "16.67%", "-3.33", "pp"]
    assert rows["P95 response time"].split()[3:9] == ["3,850", "ms", "5,750", "ms", "+1,900", "ms"]
    assert rows["cost per message"].split()[3:5] == ["$0.014000", "$0.023333"]
    assert all(rows[m.label].endswith("insufficient data") for m in METRICS if m.test)
    assert "warning: version 'v2' has 4 users, fewer than 20: no verdict at all" in proc.stdout
    assert not any(line != line.rstrip() for line in lines)


@pytest.mark.parametrize("argv, expected", [
    (["--agent", "nobody", "--versions", "v1", "v2"], "unknown agent 'nobody' (known agents: sales, support)"),
    (["--agent", "support", "--versions", "v1", "v9"],
     "agent 'support' has no messages of version 'v9' in 7d (2026-11-05..2026-11-11); versions with messages: v1 (5), v2 (6)"),
    (["--agent", "support", "--versions", "v1", "v1"], "--versions v1 v1: give two different versions"),
    (["--agent", "support", "--versions", "v1", "v2", "--period", "fortnight"],
     "unknown period 'fortnight': use today, week, month or Nd (e.g. 30d)"),
    (["--agent", "support", "--versions", "v1", "v2", "--period", "7d", "--month", "2026-11"],
     "give only one of --period, --month"),
    (["--agent", "support", "--versions", "v1"], "argument --versions: expected 2 arguments"),
    (["--versions", "v1", "v2"], "the following arguments are required: --agent"),
    (["--agent", "support", "--versions", "v1", "v2", "--format", "csv"], "argument --format: invalid choice: 'csv'"),
], ids=["unknown-agent", "version-without-messages", "same-version", "bad-period", "two-periods", "one-version",
        "no-agent", "bad-format"])
def test_bad_arguments_are_one_line_and_exit_2(built, argv, expected):
    proc = run(built, "compare", *argv, "--as-of", AS_OF)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(f"agent-analytics: error: {expected}"), proc.stderr


def test_before_the_first_build_compare_says_so(tmp_path):
    proc = run(tmp_path / "empty", "compare", "--agent", "support", "--versions", "v1", "v2")
    assert proc.returncode == 2 and proc.stderr.startswith("agent-analytics: error: no warehouse at ")


# ----------------------------------------------------------------- 5. HTTP


def test_the_http_endpoint_answers_the_commands_document(built):
    tokens = make_tokens(built, reader="read", sender="ingest")
    server = start_server(built, built.parent / "server.log")
    try:
        client = httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {tokens['reader']}"})
        body = {"agent": "support", "versions": ["v1", "v2"], "as_of": AS_OF}
        response = client.post("/v1/analytics/compare", json=body)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        printed = json.loads(compare(built, "--format", "json").stdout)
        assert {k: v for k, v in response.json().items() if k != "generated_at"} == \
            {k: v for k, v in printed.items() if k != "generated_at"}
        for request_body, status, error in (
            ({**body, "versions": ["v1", "v1"]}, 400, "--versions v1 v1: give two different versions"),
            ({**body, "agent": "nobody"}, 400, "unknown agent 'nobody'"),
            ({**body, "period": "fortnight"}, 400, "unknown period 'fortnight'"),
            ({**body, "versions": ["v1"]}, 400, "versions: List should have at least 2 items"),
            ({**body, "version": "v1"}, 400, "unknown key 'version'"),
            ({"versions": ["v1", "v2"]}, 400, "agent: Field required"),
        ):
            response = client.post("/v1/analytics/compare", json=request_body)
            assert response.status_code == status and response.json()["error"].startswith(error), response.text
        assert client.post("/v1/analytics/compare", content=b"[1]").json()["error"].startswith("the body must be one JSON object")
        sender = {"Authorization": f"Bearer {tokens['sender']}"}
        assert client.post("/v1/analytics/compare", json=body, headers=sender).status_code == 403
        assert httpx.post(f"{server.url}/v1/analytics/compare", json=body).status_code == 401
    finally:
        server.stop()
