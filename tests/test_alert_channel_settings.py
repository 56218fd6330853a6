"""Malformed channel settings (issue 12, section 3): a URL, key or secret that cannot be used
is one line naming the channel, the variable and the problem (never the value); the
commands exit 2 with it; delivery leaves that channel's events pending with the reason and
delivers every other channel; no form of the secret reaches an output, a log, Dagster's run
storage or the warehouse. Real receivers on 127.0.0.1."""

import json
import os
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
from alert_receivers import HttpReceiver, SmtpReceiver
from test_webhooks import queue

from agent_analytics import mail
from agent_analytics.alerts import events as ev
from agent_analytics.alerts.channels import send
from agent_analytics.alerts.rules import channel_problem, channel_problems, parse_config
from agent_analytics.redaction import Redactor

TOKEN = "XOXBsecretTOKEN0123456789"  # the secret part of every URL below
SLACK = "https://hooks.slack.com/services/T000/B000/"
HOOK_SECRET = "plain-signing-secret-42"

# (value of $SLACK_URL, the problem channel_problem reports)
MALFORMED_URLS = [
    (SLACK + TOKEN + " tail", "contains whitespace"),
    (" " + SLACK + TOKEN + "\u00a0x", "contains whitespace"),  # no-break space inside
    ("hooks.slack.com/services/T000/B000/" + TOKEN, "has no scheme (it must start with https:// or http://)"),
    ("localhost:8080/" + TOKEN, "has no scheme (it must start with https:// or http://)"),
    (SLACK + TOKEN + "\x01", "contains a control character"),
    (SLACK + TOKEN[:5] + "\n" + TOKEN[5:], "contains a control character"),
    (SLACK + TOKEN + "\u200b", "contains a control character"),  # zero-width space (format character)
    ("https://hooks.slack.com:44x3/services/" + TOKEN, "has an invalid port (a number from 1 to 65535)"),
    ("https://hooks.slack.com:99999/services/" + TOKEN, "has an invalid port (a number from 1 to 65535)"),
    ("https://hooks.slack.com:0/services/" + TOKEN, "has an invalid port (a number from 1 to 65535)"),
    ("", "is empty"),
    ("  ", "is empty"),
    ("ftp://hooks.slack.com/" + TOKEN, "has a scheme other than https:// or http://"),
    ("file:///etc/" + TOKEN, "has a scheme other than https:// or http://"),
    ("https:///services/" + TOKEN, "has no host"),
    ("https://user:" + TOKEN + "@hooks.slack.com/x", "has a user name or password before the host (not supported)"),
    ("https://[::1/services/" + TOKEN, "has an invalid host"),
    ("https://hooks.slack.com/services/" + TOKEN + "é", "contains a non-ASCII character (percent-encode it)"),
    ("https://hooks.slack.com/services/" + TOKEN + "\udcff", "is not valid UTF-8"),  # a byte os.environ could not decode
]


def slack_channel_config():
    return parse_config({"channels": {"ops-slack": {"type": "slack", "url_env": "SLACK_URL"},
                                      "hook": {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}}},
                        Path("t.toml"))


@pytest.mark.parametrize("value, problem", MALFORMED_URLS)
def test_malformed_url_is_one_line_naming_channel_and_variable_never_the_value(value, problem):
    cfg = slack_channel_config()
    line = channel_problem(cfg.channels["ops-slack"], {"SLACK_URL": value})
    assert line == f"channel 'ops-slack': URL in $SLACK_URL {problem}"
    assert TOKEN not in line and TOKEN[:5] not in line


@pytest.mark.parametrize("value, problem", MALFORMED_URLS)
def test_send_returns_the_problem_instead_of_raising(value, problem):
    # before the fix urllib/http.client raised InvalidURL / ValueError quoting the URL's path
    cfg = slack_channel_config()
    attempt = send(cfg.channels["ops-slack"], alert_event(), "{}", {"SLACK_URL": value}, timeout=2)
    assert (attempt.ok, attempt.status_code, attempt.error) == (False, None, f"channel 'ops-slack': URL in $SLACK_URL {problem}")


def test_usable_values_and_unset_variables_are_no_problem():
    cfg = slack_channel_config()
    for url in (SLACK + TOKEN, "http://127.0.0.1:8080/hook?x=1", "https://[::1]:443/a", " https://h.example/x\n"):
        assert channel_problem(cfg.channels["ops-slack"], {"SLACK_URL": url}) is None
    assert channel_problems(cfg, {}) == {}  # not configured yet: `alerts list` says "missing", events wait


@pytest.mark.parametrize("channel, env, line", [
    ({"type": "webhook", "url_env": "U", "secret_env": "S"}, {"U": "https://h.example/x", "S": "whsec_" + TOKEN[:7]},
     "channel 'c': signing secret in $S starts with whsec_ but the rest is not valid base64"),
    ({"type": "webhook", "url_env": "U", "secret_env": "S"}, {"U": "https://h.example/x", "S": "abc\x00" + TOKEN},
     "channel 'c': signing secret in $S contains a control character"),
    ({"type": "webhook", "url_env": "U", "secret_env": "S"}, {"U": "https://h.example/x", "S": ""},
     "channel 'c': signing secret in $S is empty"),
    ({"type": "pagerduty", "routing_key_env": "K"}, {"K": TOKEN[:8] + " " + TOKEN[8:]},
     "channel 'c': routing key in $K contains whitespace"),
    ({"type": "pagerduty", "routing_key_env": "K"}, {"K": TOKEN + "\x07"},
     "channel 'c': routing key in $K contains a control character"),
    ({"type": "pagerduty", "routing_key_env": "K", "url_env": "U"}, {"K": TOKEN, "U": "events.pagerduty.com/v2/enqueue"},
     "channel 'c': URL in $U has no scheme (it must start with https:// or http://)"),
    ({"type": "email", "to": ["a@example.com"]}, {mail.HOST_VAR: "127.0.0.1", mail.PASSWORD_VAR: "pässwörd" + TOKEN},
     f"channel 'c': {mail.PASSWORD_VAR} must hold printable ASCII characters only"),
    ({"type": "email", "to": ["a@example.com"]}, {mail.HOST_VAR: "smtp.example.com\r\nX"},
     f"channel 'c': {mail.HOST_VAR} contains whitespace or a control character"),
])
def test_keys_secrets_and_smtp_settings_are_checked_too(channel, env, line):
    cfg = parse_config({"channels": {"c": channel}}, Path("t.toml"))
    assert channel_problem(cfg.channels["c"], env) == line


def test_redactor_masks_the_forms_exceptions_quote():
    url = SLACK + TOKEN
    redact = Redactor([url])
    texts = [
        f"URL can't contain control characters. '/services/T000/B000/{TOKEN}' (found at least ' ')",  # the path alone
        f"unknown url type: {url!r}",
        json.dumps({"message": f"failed: {TOKEN}"}),  # the last path segment
        f"quoted {url.replace(':', '%3A')}",  # percent-encoded
    ]
    for text in texts:
        assert TOKEN not in redact(text), text
    with_control = SLACK + TOKEN + "\x01"
    redact = Redactor([with_control])
    assert TOKEN not in redact(f"URL can't contain control characters. {'/services/T000/B000/' + TOKEN + chr(1)!r}")
    assert TOKEN not in redact(json.dumps({"m": with_control}))  # \u0001 in JSON
    assert redact("channel hook failed: HTTP 503") == "channel hook failed: HTTP 503"  # ordinary text untouched
    assert Redactor(["https://h.example:99x/" + TOKEN])("nonnumeric port: '99x' at /" + TOKEN) == "nonnumeric port: '99x' at ***"


def test_smtp_password_that_smtplib_cannot_send_is_a_mail_error_without_the_password():
    # smtplib encodes the login as ASCII: a non-ASCII password raised UnicodeEncodeError out of mail.send
    smtp = SmtpReceiver("bot", "secret")
    try:
        password = "pässwort-" + TOKEN
        settings = mail.SmtpSettings("127.0.0.1", smtp.port, "none", "a@example.com", "bot", password)
        message = mail.build_message("a@example.com", ["b@example.com"], "s", "b")
        with pytest.raises(mail.MailError) as raised:
            mail.send(settings, message, timeout_s=5)
        assert "UnicodeEncodeError" in str(raised.value) and TOKEN not in str(raised.value)
        env = {mail.HOST_VAR: "127.0.0.1", mail.PASSWORD_VAR: password}
        with pytest.raises(mail.MailError, match=f"^{mail.PASSWORD_VAR} must hold printable ASCII characters only$"):
            mail.smtp_settings(env)
    finally:
        smtp.close()


# ---------------------------------------------------------------- delivery: one channel never stops another


def alert_event(n=1):
    data = {"rule": "slow", "description": "", "condition": "p95_response_time > 5000 ms for 3m", "metric": "p95_response_time",
            "unit": "ms", "scope": "all", "severity": "critical", "episode_id": f"ep_{n}", "started_at": "2026-11-10T12:00:00Z",
            "fired_at": "2026-11-10T12:03:00Z", "value": 7000.0, "reminder": 0}
    at = datetime(2026, 11, 10, 12, 3, tzinfo=timezone.utc)
    return ev.envelope(ev.TRIGGERED, ev.event_id(ev.TRIGGERED, f"ep_{n}"), at, data)


def warehouse_text(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        return "".join(str(con.execute(f"select * from alerts.{t}").fetchall()) for t in ("outbox", "deliveries"))


@pytest.mark.parametrize("value, problem", MALFORMED_URLS[:11])
def test_misconfigured_channel_waits_with_its_reason_and_the_others_deliver(tmp_path, value, problem, deliver):
    hook = HttpReceiver()
    try:
        env = {"SLACK_URL": value, "HOOK_URL": hook.url(), "HOOK_SECRET": HOOK_SECRET}
        cfg = slack_channel_config()
        warehouse = tmp_path / "w.duckdb"
        # the misconfigured channel's event is queued first: before the fix its exception ended the run
        queue(warehouse, alert_event(1), ["ops-slack", "hook"])
        queue(warehouse, alert_event(2), ["ops-slack", "hook"])
        result = deliver(warehouse, cfg, env)
        line = f"channel 'ops-slack': URL in $SLACK_URL {problem}"
        assert (result.delivered, result.still_pending, result.failed_attempts, result.healthy) == (2, 2, 0, False)
        assert result.misconfigured_channels == {"ops-slack": line}
        assert len(hook.accepted()) == 2
        with duckdb.connect(str(warehouse), read_only=True) as con:
            outbox = "select channel, status, attempts, last_error from alerts.outbox order by channel, event_id"
            assert con.execute(outbox).fetchall() == [
                ("hook", "delivered", 1, None), ("hook", "delivered", 1, None),
                ("ops-slack", "pending", 0, line), ("ops-slack", "pending", 0, line)]
            assert con.execute("select distinct channel from alerts.deliveries").fetchall() == [("hook",)]  # nothing was tried
        assert TOKEN not in warehouse_text(warehouse)
        # fixed: the waiting events go out on the next run, each once
        slack = HttpReceiver()
        try:
            env["SLACK_URL"] = slack.url("/services/T000/B000/" + TOKEN)
            again = deliver(warehouse, cfg, env)
            assert (again.delivered, again.healthy, len(slack.accepted()), len(hook.requests)) == (2, True, 2, 2)
        finally:
            slack.close()
    finally:
        hook.close()


class NotHttp:
    """A TCP server on 127.0.0.1 that answers every connection with a line that is not HTTP."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH " + TOKEN.encode() + b"\r\n\r\n")

    def close(self):
        self.sock.close()


def test_receiver_that_does_not_speak_http_is_a_failed_attempt_not_a_crash(tmp_path, deliver):
    # http.client.BadStatusLine is no OSError: before the fix it escaped send() and ended the run
    garbage, hook = NotHttp(), HttpReceiver()
    try:
        env = {"SLACK_URL": f"http://127.0.0.1:{garbage.port}/services/" + TOKEN, "HOOK_URL": hook.url(),
               "HOOK_SECRET": HOOK_SECRET}
        cfg = slack_channel_config()
        warehouse = tmp_path / "w.duckdb"
        queue(warehouse, alert_event(1), ["ops-slack", "hook"])
        result = deliver(warehouse, cfg, env)
        assert result.failing_channels == {"ops-slack": "not an HTTP answer: BadStatusLine"}
        assert (result.delivered, result.failed_attempts, len(hook.accepted())) == (1, 3, 1)
        assert TOKEN not in warehouse_text(warehouse)
    finally:
        garbage.close(), hook.close()


# ---------------------------------------------------------------- the commands


def rules(path: Path):
    path.write_text(
        '[channels.ops-slack]\ntype = "slack"\nurl_env = "SLACK_URL"\n'
        '[channels.hook]\ntype = "webhook"\nurl_env = "HOOK_URL"\nsecret_env = "HOOK_SECRET"\n'
        '[rules.slow]\nmetric = "p95_response_time"\ncomparison = ">"\nthreshold = 5000\nwindow = "3m"\n'
        'severity = "critical"\nchannels = ["hook", "ops-slack"]\n')


@pytest.mark.parametrize("value, problem", MALFORMED_URLS)
@pytest.mark.parametrize("command", [["alerts", "list"], ["alerts", "test", "slow"]])
def test_alerts_list_and_test_exit_2_with_one_line(tmp_path, monkeypatch, capfd, command, value, problem):
    from agent_analytics_cli.main import main

    hook = HttpReceiver()
    try:
        monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("AGENT_ANALYTICS_ALERT_RULES", str(tmp_path / "alerts.toml"))
        monkeypatch.setenv("HOOK_URL", hook.url())
        monkeypatch.setenv("HOOK_SECRET", HOOK_SECRET)
        monkeypatch.setenv("SLACK_URL", value)
        rules(tmp_path / "alerts.toml")
        assert main(command) == 2
        out, err = capfd.readouterr()
        assert err.splitlines() == [f"agent-analytics: error: channel 'ops-slack': URL in $SLACK_URL {problem}"]
        assert out == "" and hook.requests == []
    finally:
        hook.close()


def test_unset_variable_is_still_listed_as_missing(tmp_path, monkeypatch, capsys):
    from agent_analytics_cli.main import main

    monkeypatch.setenv("AGENT_ANALYTICS_ALERT_RULES", str(tmp_path / "alerts.toml"))
    for name in ("SLACK_URL", "HOOK_URL", "HOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    rules(tmp_path / "alerts.toml")
    assert main(["alerts", "list"]) == 0
    assert "ops-slack                    slack      missing SLACK_URL" in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------- end to end: build, then grep the whole home


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def test_build_with_a_malformed_slack_url_delivers_the_rest_and_leaks_nothing(tmp_path, monkeypatch, capfd):
    from agent_analytics.settings import load_settings
    from agent_analytics_cli.main import main
    from orchestration.build import run_build

    hook = HttpReceiver()
    saved = dict(os.environ)
    try:
        home = tmp_path / "home"
        bad_url = SLACK + TOKEN + " x"  # a space: what the issue reported
        env = {"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC",
               "AGENT_ANALYTICS_ALERT_RULES": str(home / "alerts.toml"),
               "SLACK_URL": bad_url, "HOOK_URL": hook.url("/hook-" + "q8" * 8), "HOOK_SECRET": HOOK_SECRET}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        home.mkdir()
        rules(home / "alerts.toml")
        # 12:00..12:03 slow -> fires at 12:02 (3 minutes); 12:04 has no message -> resolves (the 12:05 probe
        # moves the watermark past it)
        lines = [json.dumps({"event_id": f"m{i}", "type": "message", "occurred_at": f"2026-11-10T12:0{i}:10Z", "user_id": "u1",
                             "agent_id": "support", "status": "ok", "response_time_ms": 7000, "llm_calls": []}) for i in range(4)]
        lines.append(json.dumps({"event_id": "h5", "type": "health_check", "occurred_at": "2026-11-10T12:05:00Z",
                                 "component": "api", "is_up": True}))
        (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
        assert main(["ingest", str(tmp_path / "events.jsonl")]) == 0
        settings = load_settings()
        assert run_build(settings)  # before the fix: "build failed in step(s): alert_deliveries"
        out, err = capfd.readouterr()
        line = "channel 'ops-slack': URL in $SLACK_URL contains whitespace"
        # the build's summary names the channel and the problem (never the value); the run's
        # log in Dagster's storage has it as a warning too
        assert f"warning check: channels_delivering (misconfigured_channels: {line})" in out
        assert "Traceback" not in err
        assert [json.loads(r.body)["event"] for r in hook.accepted()] == ["alert.triggered", "alert.resolved"]
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            assert con.execute("select channel, event_type, status, attempts, last_error from alerts.outbox "
                               "order by channel, created_at, event_type desc").fetchall() == [
                ("hook", "alert.triggered", "delivered", 1, None), ("hook", "alert.resolved", "delivered", 1, None),
                ("ops-slack", "alert.triggered", "pending", 0, line), ("ops-slack", "alert.resolved", "pending", 0, line)]
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            (run,) = instance.get_runs()
            checks = [e.dagster_event.event_specific_data for e in instance.all_logs(run.run_id)
                      if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
                      and e.dagster_event.event_specific_data.asset_check_key.name == "channels_delivering"]
        (check,) = checks
        assert not check.passed and check.metadata["misconfigured_channels"].value == line
        assert main(["alerts", "test", "slow"]) == 2
        out, err = capfd.readouterr()
        assert err.splitlines() == [f"agent-analytics: error: {line}"]
        # every file under the home: dagster run storage (SQLite), compute logs, the warehouse, exports
        everything = all_bytes(home)
        assert (home / "dagster").is_dir() and settings.warehouse_path.stat().st_size > 0
        tables = warehouse_text(settings.warehouse_path)  # DuckDB may compress strings: also read them back
        for secret in (TOKEN, bad_url, HOOK_SECRET, "q8" * 8):
            assert secret.encode() not in everything, secret
            assert secret not in tables, secret
    finally:
        hook.close()
        os.environ.clear()
        os.environ.update(saved)


def test_a_receiver_that_redirects_is_a_failed_attempt_not_a_delivery(tmp_path):
    # urllib turned the POST into a GET without the body at the new location and counted its 200
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class Moved(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append(("POST", self.path))
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            seen.append(("GET", self.path))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = slack_channel_config()
        env = {"SLACK_URL": f"http://127.0.0.1:{server.server_address[1]}/services/{TOKEN}"}
        attempt = send(cfg.channels["ops-slack"], alert_event(), "{}", env, timeout=5)
        assert (attempt.ok, attempt.status_code, attempt.error) == (False, 302, "HTTP 302")
        assert seen == [("POST", f"/services/{TOKEN}")]
    finally:
        server.shutdown(), server.server_close()


def test_a_short_secret_is_still_masked_verbatim():
    from agent_analytics.redaction import Redactor

    assert Redactor(["pw1"])("login failed for password pw1") == "login failed for password ***"
