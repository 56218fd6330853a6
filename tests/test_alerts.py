"""Alert rules and evaluation on hand-made marts (no dbt, no Dagster): the rules file, the
streak logic, firing once, resolving once, re-runs and late data, daily rules.

The minute marts are written by hand with the values each test needs; expected episodes are
derived in the comments."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from agent_analytics.alerts.evaluate import State, Step, advance, evaluate
from agent_analytics.alerts.rules import AlertsConfigError, load_config, parse_config
from agent_analytics.settings import load_settings

EXAMPLE = Path(__file__).parents[1] / "config" / "alerts.example.toml"
T0 = datetime(2026, 11, 10, 12, 0)
CHANNELS = {"hook": {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}}


def config(rules: dict, **extra):
    return parse_config({"channels": CHANNELS, "rules": rules, **extra}, Path("test.toml"))


def test_example_file_has_the_guides_four_alerts():
    cfg = load_config(EXAMPLE)
    assert {name: r.condition_text() for name, r in cfg.rules.items()} == {
        "daily_cost_over_budget": "daily_cost > 50 USD for 1d",
        "p95_response_time_slow": "p95_response_time > 5000 ms for 10m",
        "error_rate_high": "error_rate > 2 % for 5m",
        "dau_low": "dau < 500 users for 1d",
    }
    assert cfg.rules["p95_response_time_slow"].channels == ("oncall_email", "oncall_pagerduty")
    assert cfg.rules["p95_response_time_slow"].remind_every_steps == 60
    assert cfg.channels["oncall_sms"].type == "webhook"
    assert cfg.summary_channels == ("dashboard_webhook", "team_slack")


@pytest.mark.parametrize(
    "rules, channels, message",
    [
        ({"r": {"metric": "latency", "comparison": ">", "threshold": 1, "channels": ["hook"]}}, CHANNELS, "rules.r.metric: 'latency' is not one of"),
        ({"r": {"metric": "dau", "comparison": "=", "threshold": 1, "channels": ["hook"]}}, CHANNELS, "rules.r.comparison"),
        ({"r": {"metric": "dau", "comparison": "<", "threshold": "500", "channels": ["hook"]}}, CHANNELS, "rules.r.threshold: must be a number"),
        ({"r": {"metric": "dau", "comparison": "<", "threshold": 5, "window": "10m", "channels": ["hook"]}}, CHANNELS, "use whole days"),
        ({"r": {"metric": "error_rate", "comparison": ">", "threshold": 2, "window": "5x", "channels": ["hook"]}}, CHANNELS, "is not a duration"),
        ({"r": {"metric": "uptime", "comparison": "<", "threshold": 99, "scope": "support", "channels": ["hook"]}}, CHANNELS, "platform-wide"),
        ({"r": {"metric": "dau", "comparison": "<", "threshold": 5, "channels": ["nowhere"]}}, CHANNELS, "unknown channel 'nowhere'"),
        ({}, {"s": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}}, "channels.s.url: secrets and URLs come from the environment"),
        ({}, {"s": {"type": "slack", "url_env": "https://hooks.slack.com/x"}}, "must name an environment variable"),
    ],
)
def test_bad_rules_give_one_line_naming_the_field(rules, channels, message):
    with pytest.raises(AlertsConfigError) as error:
        parse_config({"channels": channels, "rules": rules}, Path("alerts.toml"))
    text = str(error.value)
    assert message in text and text.startswith("alerts.toml: ") and "\n" not in text


def test_unreadable_toml_is_one_line(tmp_path):
    path = tmp_path / "alerts.toml"
    path.write_text("[rules.x\nmetric = 1\n")
    with pytest.raises(AlertsConfigError, match="not valid TOML"):
        load_config(path)


def steps(values, final=True):
    return [Step(T0 + timedelta(minutes=i), T0 + timedelta(minutes=i + 1), i, v, final) for i, v in enumerate(values)]


def test_streak_shorter_than_window_does_not_fire():
    rule = config({"r": {"metric": "p95_response_time", "comparison": ">", "threshold": 5000, "window": "3m", "channels": ["hook"]}}).rules["r"]
    state, out = advance(rule, "all", State(), steps([6000, 6000, 1000, 6000, 6000, None]))
    assert out == [] and state.episode_id is None and state.evaluated_through == T0 + timedelta(minutes=5)


def test_condition_that_holds_fires_once_and_resolves_once():
    rule = config({"r": {"metric": "p95_response_time", "comparison": ">", "threshold": 5000, "window": "3m", "channels": ["hook"]}}).rules["r"]
    # minutes 0..5 hold, 6 does not: fires at the end of minute 2 (3 minutes held), resolves at minute 6
    state, out = advance(rule, "all", State(), steps([6000, 7000, 8000, 9000, 6000, 5001, 5000]))
    assert [(t.kind, t.started_at, t.at, t.value) for t in out] == [
        ("triggered", T0, T0 + timedelta(minutes=3), 8000),
        ("resolved", T0, T0 + timedelta(minutes=6), 5000),
    ]
    assert out[0].episode_id == out[1].episode_id and state.episode_id is None


def test_reminder_every_n_steps_while_it_holds():
    rule = config({"r": {"metric": "error_rate", "comparison": ">", "threshold": 2, "window": "2m", "remind_every": "3m",
                         "channels": ["hook"]}}).rules["r"]
    state, out = advance(rule, "all", State(), steps([5, 5, 5, 5, 5, 5, 5, 0]))
    # fires after minute 1 (2 minutes held), a reminder 3 minutes later (minute 4); minute 7 does not hold: resolved
    assert [(t.kind, t.number, t.at) for t in out] == [
        ("triggered", 0, T0 + timedelta(minutes=2)),
        ("reminder", 1, T0 + timedelta(minutes=5)),
        ("resolved", 0, T0 + timedelta(minutes=7)),
    ]


# ---------------------------------------------------------------- evaluate() on a hand-made warehouse

MINUTE_DDL = """
create table fct_messages (occurred_at timestamp);
create table fct_health_checks (checked_at timestamp, is_up boolean);
create table fct_queue_samples (sampled_at timestamp, depth integer);
create table fct_platform_minute (minute_at timestamp, messages integer, errors integer, avg_response_time_ms double,
                                  p50_response_time_ms double, p95_response_time_ms double);
create table fct_agent_minute (minute_at timestamp, agent_id varchar, messages integer, errors integer,
                               avg_response_time_ms double, p50_response_time_ms double, p95_response_time_ms double);
create table fct_agent_daily (activity_date date, agent_id varchar, cost_usd decimal(18, 6), active_users integer);
create table fct_daily_activity (activity_date date, dau integer);
"""


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute(MINUTE_DDL)
    yield connection
    connection.close()


def add_minutes(con, p95_by_minute: dict[int, float], probes_until: int):
    for minute, p95 in p95_by_minute.items():
        at = T0 + timedelta(minutes=minute)
        con.execute("insert into fct_platform_minute values (?, 1, 0, ?, ?, ?)", [at, p95, p95, p95])
        con.execute("insert into fct_messages values (?)", [at + timedelta(seconds=5)])
    for minute in range(probes_until + 1):
        con.execute("insert into fct_health_checks values (?, true)", [T0 + timedelta(minutes=minute)])


def outbox(con):
    return con.execute("select event_type, channel, json_extract_string(payload, '$.data.started_at') from alerts.outbox order by rowid").fetchall()


SLOW = {"slow": {"metric": "p95_response_time", "comparison": ">", "threshold": 5000, "window": "3m", "channels": ["hook"]}}


def test_evaluate_fires_once_resolves_once_and_reruns_send_nothing(con):
    settings = load_settings({})
    cfg = config(SLOW)
    now = datetime(2026, 11, 11, tzinfo=timezone.utc)
    # 12:00-12:01 slow (2 min < 3: nothing), 12:02 fast; 12:05-12:08 slow, 12:09 fast; probes to 12:12
    add_minutes(con, {0: 6000, 1: 6000, 2: 1000, 5: 7000, 6: 7000, 7: 7000, 8: 7000, 9: 1000}, probes_until=12)
    result = evaluate(con, cfg, settings, now)
    # watermark: newest event 12:12:00, less 1 minute still arriving -> minutes before 12:12
    assert result.watermark == T0 + timedelta(minutes=12)
    assert outbox(con) == [("alert.triggered", "hook", "2026-11-10T12:05:00Z"), ("alert.resolved", "hook", "2026-11-10T12:05:00Z")]
    assert con.execute("select started_at, fired_at, resolved_at, trigger_value, status from alerts.episodes").fetchall() == [
        (T0 + timedelta(minutes=5), T0 + timedelta(minutes=8), T0 + timedelta(minutes=9), 7000.0, "resolved")
    ]
    # the same job again: nothing new
    assert evaluate(con, cfg, settings, now).events == []
    # late data for 12:02 (now slow: 12:00-12:02 would be a 3-minute streak) and 12:09: already evaluated, no effect
    con.execute("update fct_platform_minute set p95_response_time_ms = 9000 where minute_at in (?, ?)",
                [T0 + timedelta(minutes=2), T0 + timedelta(minutes=9)])
    assert evaluate(con, cfg, settings, now).events == []
    assert len(outbox(con)) == 2 and con.execute("select count(*) from alerts.episodes").fetchall() == [(1,)]


def test_episode_open_across_runs_fires_once_and_resolves_later(con):
    settings = load_settings({})
    cfg = config(SLOW)
    now = datetime(2026, 11, 11, tzinfo=timezone.utc)
    add_minutes(con, {0: 6000, 1: 6000, 2: 6000, 3: 6000}, probes_until=4)  # evaluated: minutes 0..3
    first = evaluate(con, cfg, settings, now)
    assert [e[0] for e in first.events] == ["alert.triggered"]
    add_minutes(con, {4: 6000, 5: 6000}, probes_until=0)
    con.execute("insert into fct_health_checks values (?, true)", [T0 + timedelta(minutes=7)])  # evaluated: 4..6
    second = evaluate(con, cfg, settings, now)
    # minutes 4, 5 still hold (no repeat); minute 6 has no messages, so no P95: resolved at 12:06
    assert [e[0] for e in second.events] == ["alert.resolved"]
    assert con.execute("select resolved_at from alerts.episodes").fetchall() == [(T0 + timedelta(minutes=6),)]


def test_no_data_beyond_the_clock_is_evaluated(con):
    add_minutes(con, {0: 6000, 1: 6000, 2: 6000, 3: 6000}, probes_until=4)
    # the clock says 12:02:30: the newest event counts only up to then -> minutes 12:00, 12:01
    result = evaluate(con, config(SLOW), load_settings({}), datetime(2026, 11, 10, 12, 2, 30, tzinfo=timezone.utc))
    assert result.watermark == T0 + timedelta(minutes=2)  # exclusive: minutes 12:00 and 12:01
    assert result.events == []  # two slow minutes of a 3-minute window
    assert con.execute("select evaluated_through from alerts.rule_state").fetchall() == [(T0 + timedelta(minutes=1),)]


def test_daily_cost_fires_on_the_day_so_far_and_dau_waits_for_the_day_to_end(con):
    settings = load_settings({"AGENT_ANALYTICS_TZ": "UTC"})
    cfg = config({
        "cost": {"metric": "daily_cost", "comparison": ">", "threshold": 50, "channels": ["hook"]},
        "dau_low": {"metric": "dau", "comparison": "<", "threshold": 500, "channels": ["hook"]},
        "agent_cost": {"metric": "agent_daily_cost", "comparison": ">", "threshold": 40, "channels": ["hook"]},
    })
    # Nov 9 (complete): cost 30 + 15 = 45, DAU 480. Nov 10 so far (until 12:00): cost 41 + 10 = 51, DAU 120.
    con.execute("""insert into fct_agent_daily values
        ('2026-11-09', 'support', 30, 300), ('2026-11-09', 'sales', 15, 200),
        ('2026-11-10', 'support', 41, 100), ('2026-11-10', 'sales', 10, 30)""")
    con.execute("insert into fct_daily_activity values ('2026-11-09', 480), ('2026-11-10', 120)")
    con.execute("insert into fct_messages values (?)", [T0 + timedelta(seconds=30)])
    result = evaluate(con, cfg, settings, datetime(2026, 11, 11, tzinfo=timezone.utc))
    rows = con.execute("select rule_name, scope, started_at, fired_at, trigger_value from alerts.episodes order by 1").fetchall()
    assert rows == [
        # support's Nov 10 so far: 41 > 40, fired at the watermark (12:00)
        ("agent_cost", "support", datetime(2026, 11, 10), T0, 41.0),
        # Nov 10 so far: 51 > 50, fired at the watermark; Nov 9 (45) did not exceed
        ("cost", "all", datetime(2026, 11, 10), T0, 51.0),
        # Nov 9 ended with 480 < 500; Nov 10 (120 so far) is not judged before it ends
        ("dau_low", "all", datetime(2026, 11, 9), datetime(2026, 11, 10), 480.0),
    ]
    assert len(result.events) == 3
    # a later run the same day (cost now 70): the day's episode is already open, nothing new
    con.execute("update fct_agent_daily set cost_usd = 60 where activity_date = '2026-11-10' and agent_id = 'support'")
    con.execute("insert into fct_messages values (?)", [T0 + timedelta(hours=3)])
    assert evaluate(con, cfg, settings, datetime(2026, 11, 11, tzinfo=timezone.utc)).events == []


def test_rejected_files_and_quarantined_lines_alert_on_the_clock_without_any_data(con):
    """A landing file moved to rejected/ pages someone even when no event has loaded yet (the
    data watermark is empty): the ingest metrics count on the company day of the clock."""
    from ingestion.ingest_tables import ensure_ingest_schema

    ensure_ingest_schema(con)
    settings = load_settings({"AGENT_ANALYTICS_TZ": "Europe/Berlin"})
    cfg = config({
        "rejected": {"metric": "rejected_files", "comparison": ">", "threshold": 0, "channels": ["hook"]},
        "quarantine": {"metric": "quarantined_lines", "comparison": ">=", "threshold": 3, "channels": ["hook"]},
    })
    # 23:30 UTC on Nov 9 is 00:30 on Nov 10 in Berlin: both rows count on Nov 10
    con.execute("""insert into ingest.rejected_files values
        ('a.jsonl.gz', '/l/rejected/a.jsonl.gz', 'not a readable gzip file', '2026-11-09 23:30:00'),
        ('b.jsonl', null, 'a symbolic link', '2026-11-10 08:00:00')""")
    con.execute("""insert into ingest.quarantine values
        ('b1', 'c.jsonl', 1, 'not JSON', 'x', '2026-11-10 09:00:00'),
        ('b1', 'c.jsonl', 2, 'not JSON', 'y', '2026-11-10 09:00:00')""")
    now = datetime(2026, 11, 10, 11, 0, tzinfo=timezone.utc)
    result = evaluate(con, cfg, settings, now)
    assert result.watermark is None  # no event data at all
    rows = con.execute("select rule_name, started_at, trigger_value from alerts.episodes order by 1").fetchall()
    assert rows == [("rejected", datetime(2026, 11, 9, 23, 0), 2.0)]  # Berlin midnight of Nov 10, in UTC
    # a third quarantined line the same day: the quarantine rule (>= 3) fires too
    con.execute("insert into ingest.quarantine values ('b2', 'd.jsonl', 7, 'empty line', '', '2026-11-10 10:30:00')")
    assert [e[0] for e in evaluate(con, cfg, settings, now).events] == ["alert.triggered"]
    assert con.execute("select trigger_value from alerts.episodes where rule_name = 'quarantine'").fetchall() == [(3.0,)]
