"""Deployments before and after: fct_deployments, the metrics document's `deployments` section
and `agent-analytics deployments`, on a hand fixture whose numbers are counted below.

The hand fixture (UTC; a 30-minute session timeout; as of 2026-11-14 02:00; period 2026-11-10..13):
  deployments: D1 support v2 2026-11-10 12:00; D2 support v3 2026-11-11 00:00 (12 h after D1);
               S1 sales v5 2026-11-12 06:00 (no sales traffic after it); F1 faq v1 2026-11-13 20:00
  support: m1 u1 11-10 08:00 1000 ms $0.01 150 tokens; m2 u1 08:10 error, no time, no call;
           m3 u2 11:00 2000 ms $0.02 300; m4 u1 13:00 3000 ms $0.03 300; m5 u3 20:00 5000 ms $0.01 100;
           m6 u2 11-11 01:00 error 500 ms, no call; m7 u2 01:20 1500 ms $0.02 200;
           m8 u4 09:00 2500 ms $0.04 400; m9 u1 13:00 9999 ms (after every window)
  sales:   s1 u5 11-11 10:00 4000 ms $0.05 1000 tokens
  faq:     f1 u6 11-13 15:00 1000 ms; f2 u6 21:00 3000 ms; f3 u6 11-14 03:00 (after as-of) 100 ms
The windows (the build's 168 h, clipped at the nearest of the previous deployment, the next one
and the as-of time; the same length on both sides):
  D1: next deployment 12 h later -> before [11-10 00:00, 12:00) = m1 m2 m3, after [12:00, 11-11 00:00) = m4 m5
  D2: previous deployment 12 h before -> before = D1's after (m4 m5), after [11-11 00:00, 12:00) = m6 m7 m8
  S1: as-of 44 h later -> before [11-10 10:00, 11-12 06:00) = s1, after [11-12 06:00, 11-14 02:00) = nothing
  F1: as-of 6 h later -> before [11-13 14:00, 20:00) = f1, after [20:00, 11-14 02:00) = f2 (f3 is after as-of)
Sessions: u1 08:00 (m1 m2), u1 13:00 (m4), u1 11-11 13:00 (m9), u2 11:00 (m3), u2 11-11 01:00 (m6 m7),
u3 20:00 (m5), u4 09:00 (m8), u5 (s1), u6 15:00 (f1), u6 21:00 (f2), u6 11-14 03:00 (f3).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import jsonschema
import pytest

from agent_analytics.comparison.document import METRICS
from agent_analytics.deployments.windows import WindowError, parse_window
from agent_analytics.exports import load_schema
from tests.service_server import SCRIPT

sys.path.insert(0, str(Path(__file__).parent))
import oracle  # noqa: E402  (tests/oracle.py: no code shared with the warehouse)

AS_OF = "2026-11-14T02:00:00Z"
PERIOD = ["--start", "2026-11-10", "--end", "2026-11-13", "--as-of", AS_OF]


def message(eid: str, at: str, user: str, agent: str = "support", status: str = "ok", rt: float | None = None,
            cost: float | None = None, tokens: tuple[int, int] = (0, 0), **extra) -> dict:
    event = {"event_id": eid, "type": "message", "occurred_at": at, "user_id": user, "agent_id": agent,
             "status": status, **({"response_time_ms": rt} if rt is not None else {}), **extra}
    if cost is not None:
        event["llm_calls"] = [{"provider": "openai", "model": "gpt-4o", "input_tokens": tokens[0],
                               "output_tokens": tokens[1], "cost_usd": cost}]
    return event


def deployment(eid: str, at: str, agent: str, version: str, description: str | None = None) -> dict:
    return {"event_id": eid, "type": "deployment", "occurred_at": at, "agent_id": agent, "agent_version": version,
            **({"description": description} if description else {})}


HAND = [
    deployment("D1", "2026-11-10T12:00:00Z", "support", "v2", "shorter prompts"),
    deployment("D2", "2026-11-11T00:00:00Z", "support", "v3"),
    deployment("S1", "2026-11-12T06:00:00Z", "sales", "v5"),
    deployment("F1", "2026-11-13T20:00:00Z", "faq", "v1"),
    message("m1", "2026-11-10T08:00:00Z", "u1", rt=1000, cost=0.01, tokens=(100, 50), agent_name="Support Agent"),
    message("m2", "2026-11-10T08:10:00Z", "u1", status="error"),
    message("m3", "2026-11-10T11:00:00Z", "u2", rt=2000, cost=0.02, tokens=(200, 100)),
    message("m4", "2026-11-10T13:00:00Z", "u1", rt=3000, cost=0.03, tokens=(300, 0)),
    message("m5", "2026-11-10T20:00:00Z", "u3", rt=5000, cost=0.01, tokens=(50, 50)),
    message("m6", "2026-11-11T01:00:00Z", "u2", status="error", rt=500),
    message("m7", "2026-11-11T01:20:00Z", "u2", rt=1500, cost=0.02, tokens=(100, 100)),
    message("m8", "2026-11-11T09:00:00Z", "u4", rt=2500, cost=0.04, tokens=(400, 0)),
    message("m9", "2026-11-11T13:00:00Z", "u1", rt=9999),
    message("s1", "2026-11-11T10:00:00Z", "u5", agent="sales", rt=4000, cost=0.05, tokens=(500, 500)),
    message("f1", "2026-11-13T15:00:00Z", "u6", agent="faq", rt=1000),
    message("f2", "2026-11-13T21:00:00Z", "u6", agent="faq", rt=3000),
    message("f3", "2026-11-14T03:00:00Z", "u6", agent="faq", rt=100),
]


def p95(values: list[float]) -> float:
    """The continuous P95 (linear between closest ranks), by hand."""
    ordered, position = sorted(values), 0.95 * (len(values) - 1)
    low = math.floor(position)
    return ordered[low] + (position - low) * (ordered[min(low + 1, len(ordered) - 1)] - ordered[low])


def window(messages, errors, users, sessions, session_messages, times, cost, tokens) -> dict:
    """A window's metrics from its counts, as the definitions say."""
    return {
        "messages": messages, "sessions": sessions, "users": users,
        "messages_per_session": session_messages / sessions if sessions else None,
        "error_rate_pct": errors / messages * 100 if messages else None,
        "avg_response_time_ms": sum(times) / len(times) if times else None,
        "p95_response_time_ms": p95(times) if times else None,
        "cost_per_message_usd": cost / messages if messages else None,
        "tokens_per_message": tokens / messages if messages else None,
    }


# (deployment_id, before, after, window hours, clipped by, window start, window end), counted from the docstring
D1_BEFORE = window(3, 1, 2, 2, 3, [1000, 2000], 0.03, 450)  # m1 m2 m3; sessions u1 08:00 (2), u2 11:00 (1)
D1_AFTER = window(2, 0, 2, 2, 2, [3000, 5000], 0.04, 400)  # m4 m5; sessions u1 13:00, u3 20:00
D2_AFTER = window(3, 1, 2, 2, 3, [500, 1500, 2500], 0.06, 600)  # m6 m7 m8; sessions u2 01:00 (2), u4 09:00
S1_BEFORE = window(1, 0, 1, 1, 1, [4000], 0.05, 1000)
NOTHING = window(0, 0, 0, 0, 0, [], 0, 0)
F1_BEFORE, F1_AFTER = window(1, 0, 1, 1, 1, [1000], 0, 0), window(1, 0, 1, 1, 1, [3000], 0, 0)
EXPECTED = [
    ("D1", D1_BEFORE, D1_AFTER, 12.0, "next deployment", "2026-11-10T00:00:00Z", "2026-11-11T00:00:00Z"),
    ("D2", D1_AFTER, D2_AFTER, 12.0, "previous deployment", "2026-11-10T12:00:00Z", "2026-11-11T12:00:00Z"),
    ("S1", S1_BEFORE, NOTHING, 44.0, "now", "2026-11-10T10:00:00Z", "2026-11-14T02:00:00Z"),
    ("F1", F1_BEFORE, F1_AFTER, 6.0, "now", "2026-11-13T14:00:00Z", "2026-11-14T02:00:00Z"),
]


def close(got, want) -> bool:
    """Numbers within 1e-9 relative, None only where None is wanted, in dicts and tuples."""
    if isinstance(want, dict):
        return got.keys() == want.keys() and all(close(got[k], want[k]) for k in want)
    if isinstance(want, (tuple, list)):
        return len(got) == len(want) and all(close(g, w) for g, w in zip(got, want, strict=True))
    if want is None or got is None:
        return got is want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def z_test_p(errors_a: int, n_a: int, errors_b: int, n_b: int) -> float | None:
    """Two-sided p of the pooled two-proportion z-test, with the normal tail written out."""
    pooled = (errors_a + errors_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return math.erfc(abs(errors_b / n_b - errors_a / n_a) / se / math.sqrt(2)) if se else None


def _env(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_") and k != "DAGSTER_HOME"}
    return {**environ, "AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC"}


def run(home: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *argv], env=_env(home), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("deployments") / "home"
    events = home.parent / "hand.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in HAND))
    for argv in (["ingest", str(events)], ["build"]):
        proc = run(home, *argv)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return home


def _json(home: Path, *argv: str) -> dict:
    proc = run(home, *argv, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_mart_holds_each_deployment_with_its_neighbours(built):
    import duckdb

    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("""select deployment_id, previous_version, cast(previous_deployed_at as varchar),
                                     cast(next_deployed_at as varchar), window_hours, window_ms,
                                     cast(before_start_at as varchar), cast(after_end_at as varchar)
                              from fct_deployments order by deployment_id""").fetchall()
    hour = 3_600_000
    assert rows == [  # the mart clips at the neighbouring deployments only ("now" is the reader's)
        ("D1", None, None, "2026-11-11 00:00:00", 168, 12 * hour, "2026-11-10 00:00:00", "2026-11-11 00:00:00"),
        ("D2", "v2", "2026-11-10 12:00:00", None, 168, 12 * hour, "2026-11-10 12:00:00", "2026-11-11 12:00:00"),
        ("F1", None, None, None, 168, 168 * hour, "2026-11-06 20:00:00", "2026-11-20 20:00:00"),
        ("S1", None, None, None, 168, 168 * hour, "2026-11-05 06:00:00", "2026-11-19 06:00:00"),
    ]


def test_the_documents_section_holds_the_hand_counts(built):
    doc = _json(built, "metrics", *PERIOD)
    jsonschema.validate(doc, load_schema())
    assert doc["schema_version"] == "3.2"
    section = doc["deployments"]
    assert section["window_hours"] == 168 and "agent-analytics deployments" in section["rank_tests"]
    assert [d["deployment_id"] for d in section["items"]] == ["D1", "D2", "S1", "F1"]  # oldest first
    for (eid, before, after, hours, clipped, start, end), item in zip(EXPECTED, section["items"], strict=True):
        assert (item["window_hours"], item["clipped_by"]) == (hours, clipped), eid
        assert (item["before"]["start"], item["after"]["end"]) == (start, end), eid
        assert item["before"]["end"] == item["after"]["start"] == item["deployed_at"], eid
        for side, want in (("before", before), ("after", after)):
            got = {k: v for k, v in item[side].items() if k not in ("start", "end")}
            assert close(got, want), (eid, side, got, want)
    d1, d2, s1 = section["items"][:3]
    assert (d1["agent_label"], d1["version"], d1["previous_version"], d1["description"]) == (
        "Support Agent (support)", "v2", None, "shorter prompts")
    assert (d2["version"], d2["previous_version"], d2["description"]) == ("v3", "v2", None)
    # changes: after - before; percent changes rounded to 0.1, the error rate in points
    c = d1["changes"]
    assert c["messages"] == {"difference": -1, "change_pct": -33.3, "test": None, "p_value": None, "ci_low": None,
                             "ci_high": None, "verdict": "n/a"}
    assert c["avg_response_time_ms"]["difference"] == 2500 and c["avg_response_time_ms"]["change_pct"] == 166.7
    assert c["avg_response_time_ms"]["test"] is None and c["avg_response_time_ms"]["verdict"] is None
    assert c["cost_per_message_usd"]["change_pct"] == 100.0 and c["tokens_per_message"]["change_pct"] == 33.3
    error = c["error_rate_pct"]
    assert error["difference"] == pytest.approx(-100 / 3) and error["change_pp"] == -33.33
    assert error["test"] == "two-proportion z-test" and error["verdict"] == "insufficient data"
    assert error["p_value"] == pytest.approx(z_test_p(1, 3, 0, 2), rel=1e-9)  # 0.3613
    # Wald interval of the difference, in points: sqrt(p_a (1 - p_a) / n_a), p_b = 0
    half = 1.959963984540054 * math.sqrt((1 / 3) * (2 / 3) / 3) * 100
    assert (error["ci_low"], error["ci_high"]) == pytest.approx((-100 / 3 - half, -100 / 3 + half), rel=1e-9)
    # no traffic after S1: no value, no test, no change
    assert s1["changes"]["error_rate_pct"]["p_value"] is None and s1["changes"]["error_rate_pct"]["change_pp"] is None
    assert s1["changes"]["messages"]["difference"] == -1 and s1["changes"]["avg_response_time_ms"]["difference"] is None


def test_the_section_follows_the_scope_and_the_period(built):
    doc = _json(built, "metrics", *PERIOD, "--agent", "support")
    assert [d["deployment_id"] for d in doc["deployments"]["items"]] == ["D1", "D2"]
    # the period 2026-11-11..12 holds D2 and S1 only (D1 is at 11-10 12:00)
    doc = _json(built, "metrics", "--start", "2026-11-11", "--end", "2026-11-12", "--as-of", AS_OF)
    assert [d["deployment_id"] for d in doc["deployments"]["items"]] == ["D2", "S1"]
    # as of 2026-11-12 06:00:00 + 1 h, S1's windows are 1 h long, clipped by now, with nothing after
    doc = _json(built, "metrics", "--start", "2026-11-12", "--end", "2026-11-12", "--as-of", "2026-11-12T07:00:00Z")
    (s1,) = doc["deployments"]["items"]
    assert (s1["window_hours"], s1["clipped_by"], s1["before"]["messages"], s1["after"]["messages"]) == (1.0, "now", 0, 0)


def test_the_section_equals_the_oracles(built):
    """tests/oracle.py recomputes the section from the raw events (no shared code), here on the
    hand fixture, every scope and a period cut by as-of; tests/test_oracle.py on generated data."""
    from tests.test_oracle import differences

    events = [built.parent / "hand.jsonl"]
    custom = {"kind": "custom", "start": date(2026, 11, 10), "end": date(2026, 11, 13)}
    for argv, period, agents, as_of in (
        (PERIOD, custom, None, AS_OF),
        ([*PERIOD, "--agent", "support", "--agent", "faq"], custom, ["support", "faq"], AS_OF),
        (["--start", "2026-11-12", "--end", "2026-11-12", "--as-of", "2026-11-12T07:00:00Z"],
         {"kind": "custom", "start": date(2026, 11, 12), "end": date(2026, 11, 12)}, None, "2026-11-12T07:00:00Z"),
    ):
        got = _json(built, "metrics", *argv)["deployments"]
        moment = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        want = oracle.compute(events, period, "UTC", moment, agents)["deployments"]
        assert want["items"], argv
        assert differences(got, want) == [], argv


def test_the_command_in_json_runs_the_comparisons_tests(built):
    doc = _json(built, "deployments", *PERIOD)
    assert doc["schema_version"] == "1.0" and doc["window_hours"] == 168 and doc["scope"] == {"agents": None}
    assert [d["deployment_id"] for d in doc["deployments"]] == ["D1", "D2", "S1", "F1"]
    d1 = doc["deployments"][0]
    assert (d1["before"], d1["after"]) == ({"start": "2026-11-10T00:00:00Z", "end": "2026-11-10T12:00:00Z"},
                                           {"start": "2026-11-10T12:00:00Z", "end": "2026-11-11T00:00:00Z"})
    m = d1["metrics"]
    assert [(m[k]["a"], m[k]["b"]) for k in ("messages", "users", "sessions")] == [(3, 2), (2, 2), (2, 2)]
    assert d1["users_in_both"] == 1  # u1
    for name, before, after in (("messages_per_session", 1.5, 1.0), ("error_rate_pct", 100 / 3, 0.0),
                                ("avg_response_time_ms", 1500, 4000), ("p50_response_time_ms", 1500, 4000),
                                ("p95_response_time_ms", 1950, 4900), ("cost_per_message_usd", 0.01, 0.02),
                                ("tokens_per_message", 150, 200)):
        assert (m[name]["a"], m[name]["b"]) == pytest.approx((before, after), rel=1e-9), name
    # every tested metric has its test; the samples are far below the thresholds
    assert {name: m[name]["test"] for name in m if m[name]["test"]} == {
        metric.name: metric.test for metric in METRICS if metric.test}
    assert all(m[metric.name]["verdict"] == "insufficient data" for metric in METRICS if metric.test)
    # the rank test of the response times: {1000, 2000} against {3000, 5000}, U = 0, exact p = 2 / C(4, 2)
    assert m["avg_response_time_ms"]["p_value"] == pytest.approx(2 / 6)
    assert m["error_rate_pct"]["p_value"] == pytest.approx(z_test_p(1, 3, 0, 2), rel=1e-9)
    assert "window 'after' has 2 users, fewer than 20: no verdict at all" in " ".join(d1["warnings"])
    # the document's section and the command agree on every shared value
    section = _json(built, "metrics", *PERIOD)["deployments"]["items"]
    for item, tested in zip(section, doc["deployments"], strict=True):
        for name in ("messages", "sessions", "users", "messages_per_session", "error_rate_pct",
                     "avg_response_time_ms", "p95_response_time_ms", "cost_per_message_usd", "tokens_per_message"):
            assert close((item["before"][name], item["after"][name]),
                         (tested["metrics"][name]["a"], tested["metrics"][name]["b"])), (item["deployment_id"], name)
    s1 = doc["deployments"][2]
    assert s1["metrics"]["messages"]["b"] == 0 and s1["metrics"]["avg_response_time_ms"]["b"] is None


def test_the_command_window_and_agent(built):
    doc = _json(built, "deployments", *PERIOD, "--window", "6h", "--agent", "support")
    assert doc["window_hours"] == 6 and doc["scope"] == {"agents": ["support"]}
    d1, d2 = doc["deployments"]
    # D1: 6 h < the 12 h to D2: before [06:00, 12:00) = m1 m2 m3, after [12:00, 18:00) = m4
    assert (d1["window_hours"], d1["clipped_by"], d1["after"]["end"]) == (6.0, None, "2026-11-10T18:00:00Z")
    assert (d1["metrics"]["messages"]["a"], d1["metrics"]["messages"]["b"]) == (3, 1)
    # D2: before [18:00, 00:00) = m5, after [00:00, 06:00) = m6 m7
    assert (d2["metrics"]["messages"]["a"], d2["metrics"]["messages"]["b"]) == (1, 2)
    assert d2["metrics"]["error_rate_pct"]["b"] == 50.0


def test_the_command_table(built):
    proc = run(built, "deployments", *PERIOD, "--agent", "support")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "Deployments  period 2026-11-10..2026-11-13 (2026-11-10 .. 2026-11-13, UTC)  as of 2026-11-14T02:00:00Z"
    assert "2026-11-10T12:00:00Z  Support Agent (support)  v2  shorter prompts" in lines
    assert "2026-11-11T00:00:00Z  Support Agent (support)  v3 (after v2)" in lines
    assert ("before 2026-11-10T12:00:00Z .. 2026-11-11T00:00:00Z, after .. 2026-11-11T12:00:00Z "
            "(12 h each, clipped by the previous deployment)") in lines
    rows = [line.split() for line in lines if line.strip().startswith("P95 response time")]
    assert rows[0][3:9] == ["1,950", "ms", "4,900", "ms", "+2,950", "ms"]
    assert not any(line != line.rstrip() for line in lines)


def test_the_terminal_view_lists_the_deployments(built):
    proc = run(built, "metrics", *PERIOD, "--agent", "support")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Deployments" in text
    assert "Support Agent (support)  v2" in text and "error rate 33.33% -> 0.00% (-33.33 pp" in text


@pytest.mark.parametrize("text, hours", [("12h", 12), ("7d", 168), ("1h", 1), ("366d", 8784)])
def test_window_lengths(text, hours):
    assert parse_window(text) == hours


@pytest.mark.parametrize("text", ["0h", "7", "7w", "-1d", "1.5h", "367d", ""])
def test_bad_windows_are_refused(text):
    with pytest.raises(WindowError, match="give hours or days"):
        parse_window(text)


def test_bad_arguments_are_one_line_and_exit_2(built):
    for argv, expected in ((["--window", "3x"], "--window '3x': give hours or days, e.g. 12h or 7d (1h to 366d)"),
                           (["--agent", "nobody"], "unknown agent 'nobody' (known agents: faq, sales, support)"),
                           (["--period", "fortnight"], "unknown period 'fortnight'")):
        proc = run(built, "deployments", *argv)
        assert proc.returncode == 2 and proc.stdout == "", argv
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(f"agent-analytics: error: {expected}")


def test_the_dashboard_pdf_and_email_list_the_deployments(built, tmp_path):
    from pypdf import PdfReader

    from agent_analytics.exports import MetricsQuery, metrics_document
    from agent_analytics.periods import Page
    from agent_analytics.reports import charts, dashboard, pdf, summary
    from agent_analytics.settings import load_settings

    settings = load_settings(_env(built))
    query = MetricsQuery(start="2026-11-10", end="2026-11-13", as_of=AS_OF, agents=["support"])
    doc = metrics_document(settings, query)
    previous = metrics_document(settings, MetricsQuery(start="2026-11-06", end="2026-11-09", as_of=AS_OF,
                                                       agents=["support"]))
    # dashboard: a Deployments section, one row per deployment, each metric before -> after
    page = Page("custom", "Custom", None)
    html = dashboard.render_page(page, doc, [page])
    assert '<section id="deployments"><h2>Deployments</h2>' in html
    assert ("<td>2026-11-10 12:00 UTC</td><td>Support Agent (support)</td><td>v2</td>"
            "<td>12 h before and after, clipped by the next deployment</td><td>3 -&gt; 2 (-33%)</td>") in html
    assert "<td>33.33% -&gt; 0.00% (-33.33 pp, insufficient data)</td>" in html
    # markers on the daily time series: a dashed line labelled with each version
    for name in ("dau_trend", "cost_trend"):
        axes = getattr(charts, name)(doc).axes[0]
        assert sorted(t.get_text() for t in axes.texts) == ["v2", "v3"], name
    # a page without deployments has no such section
    assert '<section id="deployments">' not in dashboard.render_page(page, previous, [page])
    # email summary and PDF
    text = summary.summary_text("Weekly report", doc, previous)
    assert ("- 2026-11-10 12:00 UTC  Support Agent (support)  v2: messages 3 -> 2 (-33%), error rate 33.33% -> 0.00% "
            "(-33.33 pp, insufficient data), avg response 1.5s -> 4.0s (+167%), cost per message $0.01 -> $0.02 (+100%)"
            ) in text.splitlines()
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.render_pdf("Weekly report", doc, previous))
    extracted = " ".join("\n".join(p.extract_text() for p in PdfReader(str(path)).pages).split())
    assert "Deployments Deployed Agent Version messages error rate avg response cost per message" in extracted
    assert "2026-11-11 00:00 UTC Support Agent (support) v3" in extracted
