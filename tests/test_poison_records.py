"""Records that used to stop a load (or slip through a lenient parser) are quarantined with a
reason, and the valid lines of the same file still load (issue: no poison pills).

Every expected reason and value below is written by hand from the rule it tests.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from ingestion import pricing
from ingestion.load import ingest_paths
from ingestion.validate import MAX_DURATION_MS, AcceptedTimes
from tests.test_ingest import DROP, counts, line, message, query, raw, write_lines

UNPRICED_CALL = [{"provider": "openai", "model": "gpt-4o-2024-08-06", "input_tokens": 1000, "output_tokens": 100}]


def test_timestamps_at_the_edge_of_the_calendar_are_quarantined_and_the_file_loads(tmp_path, home):
    # Each of these crashed the load in pricing (a year-0 / year-10000 day is no Python date).
    edges = ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
             "1999-12-31T23:59:59Z"]
    lines = [message("ok-1", "2026-11-02T12:00:00Z", llm_calls=UNPRICED_CALL)]
    lines += [message(f"edge-{i}", at, llm_calls=UNPRICED_CALL) for i, at in enumerate(edges)]
    lines += [line(event_id="h-edge", type="health_check", occurred_at="9999-12-31T23:59:59Z", is_up=True),
              message("ok-2", "2000-01-01T00:00:00Z", llm_calls=UNPRICED_CALL)]
    path = write_lines(tmp_path / "edges.jsonl", lines)

    [result] = ingest_paths([path], home.warehouse, home.raw)

    assert counts(result) == (7, 2, 0, 5)
    early = "occurred_at before 2000-01-01 00:00 UTC (AGENT_ANALYTICS_EVENT_TIME_MIN)"
    late = "occurred_at more than 24 h after the load (AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H)"
    assert query(home, "select line_number, reason from ingest.quarantine order by line_number") == [
        (2, early), (3, early), (4, late), (5, early), (6, late)]
    # the valid lines are loaded and priced (gpt-4o on those days is in genai-prices)
    assert raw(home, "llm_calls", "event_id, cost_source") == [("ok-1", "estimated"), ("ok-2", "estimated")]


def test_the_accepted_range_is_a_setting(tmp_path, home):
    lines = [message("early", "2026-10-31T23:59:59Z"), message("first", "2026-11-01T00:00:00Z"),
             message("late", "2026-11-03T00:00:00Z")]
    path = write_lines(tmp_path / "range.jsonl", lines)
    accepted = AcceptedTimes(earliest=datetime(2026, 11, 1), ahead=timedelta(0))

    # a load "now" would accept 2026-11-03; one at 2026-11-02 12:00 does not (now + 0)
    import ingestion.load as load_module

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 11, 2, 12, 0, tzinfo=tz)

    original = load_module.datetime
    load_module.datetime = Frozen
    try:
        [result] = ingest_paths([path], home.warehouse, home.raw, accepted=accepted)
    finally:
        load_module.datetime = original

    assert counts(result) == (3, 1, 0, 2)
    assert query(home, "select line_number, reason from ingest.quarantine order by 1") == [
        (1, "occurred_at before 2026-11-01 00:00 UTC (AGENT_ANALYTICS_EVENT_TIME_MIN)"),
        (3, "occurred_at more than 0 h after the load (AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H)")]


def test_settings_give_the_accepted_range(monkeypatch):
    from agent_analytics.settings import SettingsError, load_settings

    settings = load_settings({"AGENT_ANALYTICS_EVENT_TIME_MIN": "2020-06-01", "AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H": "2"})
    assert AcceptedTimes.of(settings) == AcceptedTimes(datetime(2020, 6, 1), timedelta(hours=2))
    assert AcceptedTimes.of(load_settings({})) == AcceptedTimes(datetime(2000, 1, 1), timedelta(hours=24))
    assert load_settings({}).landing_quiet_s == 300
    assert load_settings({"AGENT_ANALYTICS_LANDING_QUIET_S": "0"}).landing_quiet_s == 0
    for env in ({"AGENT_ANALYTICS_EVENT_TIME_MIN": "0001-01-01"}, {"AGENT_ANALYTICS_EVENT_TIME_MIN": "soon"},
                {"AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H": "-1"}, {"AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H": "1e9"},
                {"AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H": "nan"}, {"AGENT_ANALYTICS_LANDING_QUIET_S": "-5"},
                {"AGENT_ANALYTICS_LANDING_QUIET_S": "inf"}, {"AGENT_ANALYTICS_CAPACITY_PER_MIN": "inf"},
                {"AGENT_ANALYTICS_HOME": "/tmp/back\\slash[1]"}):
        with pytest.raises(SettingsError):
            load_settings(env)


HUGE = 1.7e308
NUMBERS = [
    (message("rt-huge", response_time_ms=HUGE), "field response_time_ms out of range (over 86400000)"),
    (message("rt-day", response_time_ms=MAX_DURATION_MS), None),
    (message("rt-over", response_time_ms=MAX_DURATION_MS + 0.5), "field response_time_ms out of range (over 86400000)"),
    (line(event_id="h-huge", type="health_check", occurred_at="2026-11-02T12:00:00Z", is_up=True, latency_ms=HUGE),
     "field latency_ms out of range (over 86400000)"),
    (message("call-huge", llm_calls=[{**UNPRICED_CALL[0], "latency_ms": HUGE}]),
     "llm_calls[1]: field latency_ms out of range (over 86400000)"),
    (message("tool-huge", tool_calls=[{"name": "search", "latency_ms": 9e15}]),
     "tool_calls[1]: field latency_ms out of range (over 86400000)"),
    (line(event_id="q-big", type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=1_000_000_001),
     "field depth out of range (over 1000000000)"),
    (line(event_id="q-max", type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=1_000_000_000), None),
]


def test_every_number_has_an_upper_bound(tmp_path, home):
    path = write_lines(tmp_path / "numbers.jsonl", [text for text, _ in NUMBERS])
    [result] = ingest_paths([path], home.warehouse, home.raw)
    expected = [(n, reason) for n, (_, reason) in enumerate(NUMBERS, start=1) if reason]
    assert counts(result) == (8, 2, 0, 6)
    assert query(home, "select line_number, reason from ingest.quarantine order by 1") == expected
    assert raw(home, "messages", "event_id, response_time_ms") == [("rt-day", 86_400_000.0)]
    assert raw(home, "queue_samples", "event_id, depth") == [("q-max", 1_000_000_000)]


STRICT = [
    # JSON (RFC 8259)
    ('{"event_id":"tc-1","type":"message","occurred_at":"2026-11-02T12:00:00Z","user_id":"u","agent_id":"a",'
     '"status":"ok","response_time_ms":5,}', "not JSON (trailing comma)"),
    ('{"event_id":"tc-2","type":"message","occurred_at":"2026-11-02T12:00:00Z","user_id":"u","agent_id":"a",'
     '"status":"ok","response_time_ms":5,"tool_calls":[{"name":"x"} ,\t]}', "not JSON (trailing comma)"),
    ('{"event_id":"tc-3","type":"message","occurred_at":"2026-11-02T12:00:00Z","user_id":"u","agent_id":"a",'
     '"status":"ok","response_time_ms":5,"extra":{"k":1,}}', "not JSON (trailing comma)"),
    (message("tc-ok", agent_name="Commas ,} and ,] inside a \\\" string"), None),
    (message("nan", response_time_ms=DROP) .replace('"status":"ok"', '"status":"ok","response_time_ms":NaN'),
     "field response_time_ms must be a number"),
    # RFC 3339
    (message("t24", "2026-11-02T24:00:00Z"), "unparseable timestamp occurred_at"),
    (message("min60", "2026-11-02T12:60:00Z"), "unparseable timestamp occurred_at"),
    (message("off25", "2026-11-02T12:00:00+25:00"), "unparseable timestamp occurred_at"),
    (message("off-min", "2026-11-02T12:00:00+01:60"), "unparseable timestamp occurred_at"),
    (message("off-colon", "2026-11-02T12:00:00+0100"), "unparseable timestamp occurred_at"),
    (message("no-seconds", "2026-11-02T12:00Z"), "unparseable timestamp occurred_at"),
    (message("feb30", "2026-02-30T12:00:00Z"), "unparseable timestamp occurred_at"),
    (message("month13", "2026-13-02T12:00:00Z"), "unparseable timestamp occurred_at"),
    (message("leap", "2016-12-31T23:59:60Z"), None),
    (message("max-off", "2026-11-02T12:00:00.5+23:59"), None),
    (message("space", "2026-11-02 12:00:00z"), None),
]


def test_json_and_rfc3339_are_followed_strictly(tmp_path, home):
    path = write_lines(tmp_path / "strict.jsonl", [text for text, _ in STRICT])
    [result] = ingest_paths([path], home.warehouse, home.raw)
    expected = [(n, reason) for n, (_, reason) in enumerate(STRICT, start=1) if reason]
    assert counts(result) == (16, 4, 0, 12)
    assert query(home, "select line_number, reason from ingest.quarantine order by 1") == expected
    assert raw(home, "messages", "event_id, occurred_at") == [
        ("leap", datetime(2017, 1, 1, 0, 0)),  # 23:59:60 is read as the next second
        ("max-off", datetime(2026, 11, 1, 12, 1, 0, 500000)),
        ("space", datetime(2026, 11, 2, 12, 0)),
        ("tc-ok", datetime(2026, 11, 2, 12, 0)),
    ]
    assert json.loads(STRICT[3][0])["agent_name"] == 'Commas ,} and ,] inside a \\" string'


def test_a_price_lookup_that_raises_leaves_the_call_unpriced(tmp_path, home, monkeypatch):
    def broken(provider, model, price_date):
        raise RuntimeError("snapshot is corrupt")

    monkeypatch.setattr(pricing, "rates_for", broken)
    from ingestion import load

    load._rates.cache_clear()
    path = write_lines(tmp_path / "prices.jsonl", [message("m-1", llm_calls=UNPRICED_CALL)])
    try:
        [result] = ingest_paths([path], home.warehouse, home.raw)
    finally:
        load._rates.cache_clear()
    assert counts(result) == (1, 1, 0, 0)
    assert raw(home, "llm_calls", "event_id, cost_usd, cost_source") == [("m-1", None, "unpriced")]
