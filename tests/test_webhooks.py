"""Delivery to real receivers on 127.0.0.1 (http.server, aiosmtpd): signatures verify with the
snippet documented in docs/alerts.md, a 500 then 200 is delivered exactly once, Slack and
PagerDuty formats, email; and end to end through Dagster: alerts fire once, a second run
sends nothing new, a dead channel does not fail the build, and no secret appears in logs,
the Dagster event log, the exports or the warehouse."""

import base64
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from alert_receivers import HttpReceiver, SmtpReceiver

from agent_analytics.alerts import events as ev
from agent_analytics.alerts.rules import parse_config
from agent_analytics.alerts.store import ensure_alert_tables

DOC = Path(__file__).parents[1] / "docs" / "alerts.md"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"receiver-signing-key-0123456789").decode()
PD_KEY = "R0UT1NGKEY0123456789abcdef"
SMTP_PASSWORD = "smtp-pass-9f8e7d6c"


def documented_verify():
    """The verification function exactly as docs/alerts.md shows it."""
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    return namespace["verify_webhook"]


def queue(path: Path, event: dict, channels: list[str]):
    with duckdb.connect(str(path)) as con:
        ensure_alert_tables(con)
        for channel in channels:
            con.execute(
                "insert into alerts.outbox (event_id, channel, event_type, episode_id, payload, created_at, status, attempts) "
                "values (?, ?, ?, ?, ?, now(), 'pending', 0)",
                [event["id"], channel, event["event"], event["data"].get("episode_id"), ev.encode(event)],
            )


def triggered(kind=ev.TRIGGERED):
    data = {"rule": "slow", "description": "P95 > 5s for 10 minutes", "condition": "p95_response_time > 5000 ms for 10m",
            "metric": "p95_response_time", "unit": "ms", "scope": "all", "severity": "critical", "episode_id": "ep_1",
            "started_at": "2026-11-10T12:00:00Z", "value": 7000.0}
    resolved = {"resolved_at": "2026-11-10T12:20:00Z"}
    data.update(resolved if kind == ev.RESOLVED else {"fired_at": "2026-11-10T12:10:00Z", "reminder": 0})
    return ev.envelope(kind, ev.event_id(kind, "ep_1"), datetime(2026, 11, 10, 12, 10, tzinfo=timezone.utc), data)


@pytest.fixture
def hook():
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


def test_signature_verifies_with_documented_snippet_and_500_then_200_is_one_delivery(tmp_path, hook, deliver):
    hook.script = [500]
    env = {"HOOK_URL": hook.url(), "HOOK_SECRET": WEBHOOK_SECRET}
    cfg = parse_config({"channels": {"hook": {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}},
                        "delivery": {"backoff_seconds": 2}}, Path("t.toml"))
    warehouse = tmp_path / "w.duckdb"
    event = triggered()
    queue(warehouse, event, ["hook"])
    result = deliver(warehouse, cfg, env)
    assert (result.delivered, result.failed_attempts, result.healthy) == (1, 1, True)
    assert deliver.sleeps == [2]  # one backoff before the second try
    assert [r.status for r in hook.requests] == [500, 200]
    assert len(hook.accepted()) == 1
    verify = documented_verify()
    for request in hook.requests:
        assert request.headers["webhook-id"] == event["id"]
        assert verify(WEBHOOK_SECRET, request.headers, request.body)
        assert not verify("whsec_" + base64.b64encode(b"another key").decode(), request.headers, request.body)
        assert not verify(WEBHOOK_SECRET, request.headers, request.body.replace(b"7000", b"7001"))
        assert json.loads(request.body) == event
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select attempt, status_code, outcome from alerts.deliveries order by attempt").fetchall() == [
            (1, 500, "failed"), (2, 200, "delivered")]
        assert con.execute("select status, attempts from alerts.outbox").fetchall() == [("delivered", 2)]
    # a second run sends nothing
    assert deliver(warehouse, cfg, env).delivered == 0
    assert len(hook.requests) == 2


def test_slack_pagerduty_and_email_formats(tmp_path, deliver):
    slack, pagerduty = HttpReceiver(), HttpReceiver(default=202)
    smtp = SmtpReceiver("bot", SMTP_PASSWORD)
    try:
        env = {
            "SLACK_URL": slack.url("/services/T0/B0/slacksecret"), "PD_URL": pagerduty.url("/v2/enqueue"), "PD_KEY": PD_KEY,
            "AGENT_ANALYTICS_SMTP_HOST": "127.0.0.1", "AGENT_ANALYTICS_SMTP_PORT": str(smtp.port),
            "AGENT_ANALYTICS_SMTP_TLS": "none", "AGENT_ANALYTICS_SMTP_USER": "bot",
            "AGENT_ANALYTICS_SMTP_PASSWORD": SMTP_PASSWORD,
            "AGENT_ANALYTICS_SMTP_FROM": "alerts@example.com",
        }
        cfg = parse_config({"channels": {
            "slack": {"type": "slack", "url_env": "SLACK_URL"},
            "pd": {"type": "pagerduty", "routing_key_env": "PD_KEY", "url_env": "PD_URL"},
            "mail": {"type": "email", "to": ["oncall@example.com"]},
        }}, Path("t.toml"))
        warehouse = tmp_path / "w.duckdb"
        queue(warehouse, triggered(), ["slack", "pd", "mail"])
        queue(warehouse, triggered(ev.RESOLVED), ["slack", "pd", "mail"])
        result = deliver(warehouse, cfg, env)
        assert (result.delivered, result.failed_attempts) == (6, 0)
        texts = [json.loads(r.body)["text"] for r in slack.requests]
        assert texts == ["ALERT [critical] slow (all agents): P95 > 5s for 10 minutes: 7000 ms",
                         "RESOLVED [critical] slow (all agents): now 7000 ms"]
        assert json.loads(slack.requests[0].body)["blocks"][0]["type"] == "section"
        pd = [json.loads(r.body) for r in pagerduty.requests]
        assert [(p["event_action"], p["dedup_key"], p["routing_key"]) for p in pd] == [
            ("trigger", "ep_1", PD_KEY), ("resolve", "ep_1", PD_KEY)]
        assert pd[0]["payload"]["severity"] == "critical" and pd[0]["payload"]["source"] == "agent-analytics"
        assert [m.rcpt_tos for m in smtp.messages] == [["oncall@example.com"], ["oncall@example.com"]]
        assert b"Subject: ALERT [critical] slow" in smtp.messages[0].content
        with duckdb.connect(str(warehouse), read_only=True) as con:
            sent = "select channel, status_code from alerts.deliveries where event_type = 'alert.triggered' order by 1"
            assert con.execute(sent).fetchall() == [
                ("mail", None), ("pd", 202), ("slack", 200)]
    finally:
        slack.close(), pagerduty.close(), smtp.close()


def test_dead_channel_waits_and_its_error_carries_no_secret(tmp_path, hook, deliver):
    hook.default = 503
    url = hook.url("/token-" + "s3cr3t" * 4)
    env = {"HOOK_URL": url, "HOOK_SECRET": WEBHOOK_SECRET}
    cfg = parse_config({"channels": {"hook": {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}},
                        "delivery": {"attempts_per_run": 2, "max_attempts": 4}}, Path("t.toml"))
    warehouse = tmp_path / "w.duckdb"
    queue(warehouse, triggered(), ["hook"])
    queue(warehouse, triggered(ev.RESOLVED), ["hook"])
    first = deliver(warehouse, cfg, env)
    # two tries of the first event; the second event is not tried in this run (channel down)
    assert (first.delivered, first.failed_attempts, first.still_pending, first.healthy) == (0, 2, 2, False)
    assert first.failing_channels == {"hook": "HTTP 503"}
    second = deliver(warehouse, cfg, env)
    assert (second.given_up, second.still_pending) == (1, 1)  # 4 tries in all: failed
    with duckdb.connect(str(warehouse), read_only=True) as con:
        dump = str(con.execute("select * from alerts.deliveries").fetchall()
                   + con.execute("select * from alerts.outbox").fetchall())
        outbox = "select status, attempts from alerts.outbox order by created_at, rowid"
        assert con.execute(outbox).fetchall() == [("failed", 4), ("pending", 0)]
    assert "s3cr3t" not in dump and WEBHOOK_SECRET not in dump


# ---------------------------------------------------------------- end to end through Dagster

DAY = "2026-11-10"


def message(event_id, at, ms, user="u1", cost=None, status="ok"):
    record = {"event_id": event_id, "type": "message", "occurred_at": f"{at}Z", "user_id": user, "agent_id": "support",
              "status": status, "llm_calls": []}
    if ms is not None:
        record["response_time_ms"] = ms
    if cost is not None:
        record["llm_calls"] = [{"provider": "anthropic", "model": "claude-sonnet-4", "input_tokens": 10, "output_tokens": 5,
                                "cost_usd": cost}]
    return json.dumps(record)


def probe(event_id, at):
    return json.dumps({"event_id": event_id, "type": "health_check", "occurred_at": f"{at}Z", "component": "api", "is_up": True})


# 11-09: u2 20:00 ok 2000 ms $1.25, u3 20:30 error -> summary: DAU 2, sessions 2, messages 2, $1.25, error rate 0.5, P95 2000
# 11-10 (P95 > 5000 ms for 3 minutes): 12:00, 12:01 slow then 12:02 fast (2 minutes: no alert);
# 12:05..12:08 slow (fires at 12:08), 12:09 fast (resolves at 12:09); probes 12:00..12:12 -> evaluated until 12:12
FIRST = [
    message("s1", "2026-11-09T20:00:00", 2000, "u2", cost=1.25), message("s2", "2026-11-09T20:30:00", None, "u3", status="error"),
    message("a0", f"{DAY}T12:00:10", 6000), message("a1", f"{DAY}T12:01:10", 6000), message("a2", f"{DAY}T12:02:10", 1000),
    *[message(f"b{m}", f"{DAY}T12:0{m}:10", 7000) for m in (5, 6, 7, 8)], message("b9", f"{DAY}T12:09:10", 1000),
    *[probe(f"h{m}", f"{DAY}T12:{m:02d}:00") for m in range(13)],
]
# loaded later: a slow message for 12:02 (would complete 12:00-12:02) and newer probes
LATE = [message("late", f"{DAY}T12:02:40", 9000), probe("h13", f"{DAY}T12:13:00"), probe("h14", f"{DAY}T12:14:00")]


def rules_file(path: Path, hook_url_env="HOOK_URL"):
    path.write_text(f"""
[delivery]
backoff_seconds = 0
attempts_per_run = 2
[daily_summary]
channels = ["hook"]
[channels.hook]
type = "webhook"
url_env = "{hook_url_env}"
secret_env = "HOOK_SECRET"
[channels.slack]
type = "slack"
url_env = "SLACK_URL"
[channels.pd]
type = "pagerduty"
routing_key_env = "PD_KEY"
url_env = "PD_URL"
[channels.mail]
type = "email"
to = ["oncall@example.com"]
[channels.dead]
type = "webhook"
url_env = "DEAD_URL"
secret_env = "HOOK_SECRET"
[rules.slow]
metric = "p95_response_time"
comparison = ">"
threshold = 5000
window = "3m"
severity = "critical"
channels = ["hook", "slack", "pd", "mail", "dead"]
""")


def test_end_to_end_fires_once_resolves_once_and_leaks_no_secret(tmp_path, monkeypatch, capfd):
    from agent_analytics.settings import load_settings
    from agent_analytics_cli.main import main
    from orchestration.build import run_build

    hook, slack, pagerduty = HttpReceiver(script=[500]), HttpReceiver(), HttpReceiver(default=202)
    smtp = SmtpReceiver("bot", SMTP_PASSWORD)
    saved = dict(os.environ)
    try:
        home = tmp_path / "home"
        dead_port = HttpReceiver()
        dead_url = dead_port.url("/dead-" + "x9" * 8)
        dead_port.close()  # nothing listens there any more
        secrets = {
            "HOOK_URL": hook.url("/hook-path-" + "k7" * 8), "HOOK_SECRET": WEBHOOK_SECRET,
            "SLACK_URL": slack.url("/services/T00/B00/" + "slk" * 6), "PD_URL": pagerduty.url("/v2/enqueue"),
            "PD_KEY": PD_KEY, "AGENT_ANALYTICS_SMTP_PASSWORD": SMTP_PASSWORD, "DEAD_URL": dead_url,
        }
        env = {
            "AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC",
            "AGENT_ANALYTICS_ALERT_RULES": str(tmp_path / "alerts.toml"),
            "AGENT_ANALYTICS_SMTP_HOST": "127.0.0.1", "AGENT_ANALYTICS_SMTP_PORT": str(smtp.port),
            "AGENT_ANALYTICS_SMTP_TLS": "none", "AGENT_ANALYTICS_SMTP_USER": "bot", **secrets,
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        rules_file(tmp_path / "alerts.toml")
        settings = load_settings()
        (tmp_path / "first.jsonl").write_text("\n".join(FIRST) + "\n")
        (tmp_path / "late.jsonl").write_text("\n".join(LATE) + "\n")

        assert main(["ingest", str(tmp_path / "first.jsonl")]) == 0
        assert run_build(settings)  # the dead channel warns but does not fail the build
        out = capfd.readouterr()
        assert "warning check: channels_delivering" in out.out

        bodies = [json.loads(r.body) for r in hook.accepted()]
        assert [b["event"] for b in bodies] == ["alert.triggered", "alert.resolved", "analytics.daily_summary"]
        assert [r.status for r in hook.requests] == [500, 200, 200, 200]
        fired, resolved, summary = (b["data"] for b in bodies)
        assert (fired["started_at"], fired["fired_at"], fired["value"]) == (f"{DAY}T12:05:00Z", f"{DAY}T12:08:00Z", 7000.0)
        assert (resolved["resolved_at"], resolved["value"]) == (f"{DAY}T12:09:00Z", 1000.0)
        assert summary == {"date": "2026-11-09", "time_zone": "UTC", "dau": 2, "sessions": 2, "messages": 2, "costs": 1.25,
                           "error_rate": 0.5, "p95_response_time_ms": 2000.0}
        verify = documented_verify()
        assert all(verify(WEBHOOK_SECRET, r.headers, r.body) for r in hook.requests)
        assert [json.loads(r.body)["event_action"] for r in pagerduty.requests] == ["trigger", "resolve"]
        assert len(slack.requests) == 2 and len(smtp.messages) == 2

        # the same job again, then late data: nothing new reaches any receiver
        assert run_build(settings)
        assert main(["ingest", str(tmp_path / "late.jsonl")]) == 0
        assert run_build(settings)
        assert len(hook.requests) == 4 and len(slack.requests) == 2 and len(pagerduty.requests) == 2 and len(smtp.messages) == 2
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            # the late message did land in its minute (P95 of 1000 and 9000 = 8600) ...
            p95 = "select p95_response_time_ms from fct_platform_minute where minute_at = '2026-11-10 12:02:00'"
            assert con.execute(p95).fetchall() == [(8600.0,)]
            # ... but the alert state is unchanged: one episode; the dead channel's events wait: the first was tried
            # 2 x 3 runs, the second never (a channel that failed an event is not tried again in the same run)
            assert con.execute("select count(*), min(status) from alerts.episodes").fetchall() == [(1, "resolved")]
            assert con.execute("select channel, status, attempts from alerts.outbox where status <> 'delivered' "
                               "order by attempts desc").fetchall() == [("dead", "pending", 6), ("dead", "pending", 0)]
            tables = "".join(str(con.execute(f"select * from alerts.{t}").fetchall())
                             for t in ("rule_state", "episodes", "outbox", "deliveries", "daily_summaries"))
        assert main(["alerts", "history"]) == 0
        assert main(["alerts", "list"]) == 0
        captured = capfd.readouterr()

        # no secret in captured output, the Dagster event log and run records, the exports or the warehouse
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            runs = instance.get_runs()
            assert len(runs) == 3
            dagster_text = "".join(repr(run) + "".join(repr(e) for e in instance.all_logs(run.run_id)) for run in runs)
        assert "channel dead failed" in dagster_text
        exports = "".join(p.read_text(errors="replace") for p in settings.exports_dir.rglob("*") if p.is_file())
        for name, value in secrets.items():
            for where, text in (("output", captured.out + captured.err + out.out + out.err), ("dagster", dagster_text),
                                ("exports", exports), ("warehouse", tables)):
                assert value not in text, f"{name} found in {where}"
    finally:
        hook.close(), slack.close(), pagerduty.close(), smtp.close()
        os.environ.clear()
        os.environ.update(saved)


def test_alerts_commands_bad_arguments(tmp_path, monkeypatch, capsys):
    from agent_analytics_cli.main import main

    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv("AGENT_ANALYTICS_ALERT_RULES", str(tmp_path / "alerts.toml"))
    assert main(["alerts", "list"]) == 2
    assert "no alert rules file at" in capsys.readouterr().err
    rules_file(tmp_path / "alerts.toml")
    assert main(["alerts", "test", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["agent-analytics: error: unknown rule 'nope' (rules: slow)"]
    (tmp_path / "alerts.toml").write_text(
        '[rules.x]\nmetric = "dau"\ncomparison = "<"\nthreshold = 5\nwindow = "2x"\nchannels = []\n'
    )
    assert main(["alerts", "list"]) == 2
    assert capsys.readouterr().err.strip().endswith("rules.x.window: '2x' is not a duration like 10m, 2h or 1d")


def test_alerts_test_sends_a_signed_test_event(tmp_path, monkeypatch, capsys, hook):
    from agent_analytics_cli.main import main

    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv("AGENT_ANALYTICS_ALERT_RULES", str(tmp_path / "alerts.toml"))
    monkeypatch.setenv("HOOK_URL", hook.url())
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    (tmp_path / "alerts.toml").write_text(
        '[channels.hook]\ntype = "webhook"\nurl_env = "HOOK_URL"\nsecret_env = "HOOK_SECRET"\n'
        '[rules.slow]\nmetric = "p95_response_time"\ncomparison = ">"\nthreshold = 5000\nchannels = ["hook"]\n')
    assert main(["alerts", "test", "slow"]) == 0
    assert "hook" in capsys.readouterr().out
    (request,) = hook.requests
    body = json.loads(request.body)
    assert body["event"] == "alert.test" and body["data"]["test"] is True
    assert documented_verify()(WEBHOOK_SECRET, request.headers, request.body)
