"""Dashboard and scheduled reports on the hand-made fixture (tests/fixtures/day1.jsonl, day2.jsonl).

Hand values for the ISO week 2026-W45 (Mon 11-02 .. Sun 11-08, UTC), from the table in
tests/test_end_to_end.py: 9 messages, 1 error (m4) -> error rate 11.11%; 6 sessions;
3 active users; cost 0.0035 + 0.05 + 0.001625 + 0.02 + 0.005 + 0.10 = 0.180125 -> $0.18;
DAU 3 (11-02), 2 (11-03), 0, 1 (11-05), 0, 0, 0 -> average 6/7 = 0.857 -> 0.9.
Top agents by sessions: Support Agent 3 (5 messages), Sales Agent 3 (4 messages).
Sales only: 4 messages, 3 sessions, users u2, u3, u1, cost 0.02 + 0.005 + 0.10 = $0.125 -> $0.13
(m5 unpriced), no errors; DAU 2, 1, 0, 1, 0, 0, 0 -> 4/7 = 0.571 -> 0.6.
The week before has no data, so every change reads "new".
"""

from __future__ import annotations

import csv
import email
import email.policy
import io
import json
import os
import socket
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from pypdf import PdfReader

from agent_analytics import mail
from agent_analytics.periods import (
    dashboard_pages,
    default_period_end,
    report_period,
)
from agent_analytics.reports.definitions import ReportConfigError, load_definitions
from agent_analytics.reports.produce import write_dashboard
from agent_analytics.settings import load_settings
from agent_analytics_cli.main import main
from orchestration.build import run_build

FIXTURES = Path(__file__).parent / "fixtures"
WEEK_OF = "2026-11-04"
WEEK_LABEL = "2026-W45"
SMTP_ENV = ("HOST", "PORT", "USER", "PASSWORD", "TLS", "FROM")
REPORTS_TOML = """
[[report]]
name = "weekly-all"
frequency = "weekly"
recipients = ["team@example.com", "cto@example.com"]
format = "both"
title = "Weekly analytics report"

[[report]]
name = "weekly-sales"
frequency = "weekly"
recipients = ["sales-lead@example.com"]
format = "both"
agents = ["sales"]
title = "Sales agent weekly"
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture ingested and built through Dagster, with two weekly report definitions."""
    home = tmp_path_factory.mktemp("home")
    (home / "reports.toml").write_text(REPORTS_TOML)
    patch = pytest.MonkeyPatch()
    saved_env = dict(os.environ)
    patch.setenv("AGENT_ANALYTICS_HOME", str(home))
    patch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    smtp = (f"{mail.HOST_VAR[:-4]}{v}" for v in SMTP_ENV)
    for name in ("AGENT_ANALYTICS_SESSION_TIMEOUT_MIN", "AGENT_ANALYTICS_REPORTS", *smtp):
        patch.delenv(name, raising=False)
    settings = load_settings()
    assert main(["ingest", str(FIXTURES / "day1.jsonl"), str(FIXTURES / "day2.jsonl")]) == 0
    assert run_build(settings)
    yield settings
    os.environ.clear()
    os.environ.update(saved_env)
    patch.undo()


def pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def summary_rows(text: str) -> dict[str, tuple[str, str]]:
    """Summary table rows as extracted: label, value, change on consecutive lines."""
    lines = [line.strip() for line in text.splitlines()]
    out = {}
    for label in ("DAU (average per day)", "Active users", "Sessions", "Messages", "Costs", "Error rate"):
        i = lines.index(label)
        out[label] = (lines[i + 1], lines[i + 2])
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler keeping every message; `refuse` answers DATA with 554."""

    def __init__(self, refuse: bool = False):
        self.messages: list = []
        self.refuse = refuse

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "554 5.7.1 Message rejected by policy"
        self.messages.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch):
    servers = []

    def start(refuse: bool = False) -> Inbox:
        inbox, port = Inbox(refuse), free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port)
        controller.start()
        servers.append(controller)
        monkeypatch.setenv(mail.HOST_VAR, "127.0.0.1")
        monkeypatch.setenv(mail.PORT_VAR, str(port))
        monkeypatch.setenv(mail.TLS_VAR, "none")
        monkeypatch.setenv(mail.FROM_VAR, "reports@example.com")
        return inbox

    yield start
    for controller in servers:
        controller.stop()


# --- periods and definitions -------------------------------------------------------------


def test_report_periods_and_labels():
    label, period = report_period("weekly", date(2026, 11, 4), "UTC")
    assert (label, period.start_date, period.end_date) == ("2026-W45", date(2026, 11, 2), date(2026, 11, 8))
    label, period = report_period("monthly", date(2026, 2, 10), "Europe/Berlin")
    assert (label, period.start_date, period.end_date) == ("2026-02", date(2026, 2, 1), date(2026, 2, 28))
    assert period.start == datetime(2026, 1, 31, 23, 0, tzinfo=timezone.utc)  # local midnight in Berlin
    label, period = report_period("daily", date(2026, 11, 26), "UTC")
    assert (label, period.days) == ("2026-11-26", 1)
    today = date(2026, 11, 27)  # a Friday
    assert default_period_end("daily", today) == date(2026, 11, 26)
    assert default_period_end("weekly", today) == date(2026, 11, 22)  # last Sunday
    assert default_period_end("weekly", date(2026, 11, 23)) == date(2026, 11, 22)  # a Monday: the week just ended
    assert default_period_end("monthly", today) == date(2026, 10, 31)
    slugs = [p.slug for p in dashboard_pages(datetime(2026, 11, 9, tzinfo=timezone.utc), "UTC")]
    assert slugs == ["day", "week", "month", "current-month", "previous-month"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[report]]\nname = "a"\nfrequency = "yearly"\n', "frequency 'yearly' must be one of daily, weekly, monthly"),
        ('[[report]]\nname = "a"\nfrequency = "daily"\nformat = "docx"\n', "format 'docx' must be one of pdf, csv, both"),
        ('[[report]]\nname = "a"\nfrequency = "daily"\nrecipients = ["not-an-address"]\n',
         "recipients must be a list of email addresses"),
        ('[[report]]\nname = "a b"\nfrequency = "daily"\n', "name 'a b' must be 1-64 letters"),
        ('[[report]]\nname = "a"\nfrequency = "daily"\ncolour = "red"\n', "unknown field 'colour'"),
        ('[[report]]\nname = "a"\nfrequency = "daily"\n[[report]]\nname = "a"\nfrequency = "weekly"\n',
         "report name 'a' is used twice"),
        ("[[report]\n", "not valid TOML"),
    ],
)
def test_bad_definitions_are_one_clear_line(tmp_path, monkeypatch, capsys, toml, message):
    path = tmp_path / "reports.toml"
    path.write_text(toml)
    with pytest.raises(ReportConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_definitions(path)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENT_ANALYTICS_REPORTS", str(path))
    assert main(["report", "--frequency", "daily"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("agent-analytics: error: ") and str(path) in err


# --- reports -----------------------------------------------------------------------------


def test_build_writes_dashboard_and_default_period_reports(built):
    folder = built.reports_dir / "dashboard"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["index.html", "day.html", "week.html", "month.html", "current-month.html", "previous-month.html"]
    )
    label, _ = report_period("weekly", default_period_end("weekly", datetime.now(timezone.utc).date()), "UTC")
    for name in ("weekly-all", "weekly-sales"):
        assert (built.reports_dir / name / f"{label}.pdf").stat().st_size > 1000
        assert (built.reports_dir / name / f"{label}.csv").read_text().startswith("date,dau,wau,mau,")


def test_weekly_report_without_smtp_writes_files_and_says_so(built, capsys):
    assert main(["report", "--frequency", "weekly", "--period-end", WEEK_OF]) == 0
    out = capsys.readouterr().out
    assert f"weekly-all {WEEK_LABEL}: wrote {built.reports_dir / 'weekly-all' / (WEEK_LABEL + '.pdf')}" in out
    assert "not emailed: SMTP is not configured" in out

    pages, text = pdf_text(built.reports_dir / "weekly-all" / f"{WEEK_LABEL}.pdf")
    assert pages >= 2
    assert "Weekly analytics report: Nov 02 - Nov 08, 2026" in text
    assert summary_rows(text) == {
        "DAU (average per day)": ("0.9", "new"),
        "Active users": ("3", "new"),
        "Sessions": ("6", "new"),
        "Messages": ("9", "new"),
        "Costs": ("$0.18", "new"),
        "Error rate": ("11.11%", "no data"),  # no messages before: no previous rate to compare with
    }
    assert text.index("Support Agent") < text.index("Sales Agent")  # 3 sessions each; 5 messages beat 4
    for section in ("User engagement", "Agent performance", "Cost analysis", "Token usage", "System health"):
        assert section in text

    rows = list(csv.DictReader(io.StringIO((built.reports_dir / "weekly-all" / f"{WEEK_LABEL}.csv").read_text())))
    assert [r["date"] for r in rows] == [f"2026-11-0{d}" for d in range(2, 9)]
    assert [int(r["messages"]) for r in rows] == [6, 2, 0, 1, 0, 0, 0]
    assert [int(r["dau"]) for r in rows] == [3, 2, 0, 1, 0, 0, 0]
    assert sum(int(r["sessions"]) for r in rows) == 6


def test_report_figures_equal_the_metrics_layer(built, capsys):
    """The PDF summary is the metrics document's overview, formatted; nothing recomputed."""
    main(["report", "--frequency", "weekly", "--name", "weekly-all", "--period-end", WEEK_OF])
    capsys.readouterr()
    assert main(["metrics", "--start", "2026-11-02", "--end", "2026-11-08", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = summary_rows(pdf_text(built.reports_dir / "weekly-all" / f"{WEEK_LABEL}.pdf")[1])
    o = doc["overview"]
    assert rows["Sessions"][0] == f"{o['sessions']['value']:,}"
    assert rows["Messages"][0] == f"{o['messages']['value']:,}"
    assert rows["Active users"][0] == f"{o['active_users']['value']:,}"
    assert rows["Error rate"][0] == f"{o['error_rate_pct']['value']:.2f}%"
    assert rows["Costs"][0] == f"${o['cost_usd']['value']:.2f}"
    assert rows["DAU (average per day)"][0] == f"{sum(d['dau'] for d in doc['daily']) / len(doc['daily']):.1f}"


def test_agent_filter_keeps_only_that_agent(built, capsys):
    assert main(["report", "--frequency", "weekly", "--name", "weekly-sales", "--period-end", WEEK_OF]) == 0
    _, text = pdf_text(built.reports_dir / "weekly-sales" / f"{WEEK_LABEL}.pdf")
    assert "sales" in text and "Sales Agent" in text
    assert "support" not in text.lower()
    assert summary_rows(text) == {
        "DAU (average per day)": ("0.6", "new"),
        "Active users": ("3", "new"),
        "Sessions": ("3", "new"),
        "Messages": ("4", "new"),
        "Costs": ("$0.13", "new"),  # 0.125 rounds half up to the cent
        "Error rate": ("0.00%", "no data"),  # no messages before: no previous rate
    }
    rows = list(csv.DictReader(io.StringIO((built.reports_dir / "weekly-sales" / f"{WEEK_LABEL}.csv").read_text())))
    assert [int(r["messages"]) for r in rows] == [2, 1, 0, 1, 0, 0, 0]
    assert sum(float(r["cost_usd"]) for r in rows) == pytest.approx(0.125)


def test_email_reaches_recipients_with_attachments(built, smtp_server, capsys):
    inbox = smtp_server()
    assert main(["report", "--frequency", "weekly", "--period-end", WEEK_OF]) == 0
    out = capsys.readouterr().out
    assert out.count("emailed to") == 2
    by_recipients = {tuple(rcpt): message for rcpt, message in inbox.messages}
    assert set(by_recipients) == {("team@example.com", "cto@example.com"), ("sales-lead@example.com",)}
    message = by_recipients[("team@example.com", "cto@example.com")]
    assert message["Subject"] == "Weekly analytics report: Nov 02 - Nov 08, 2026"
    assert message["From"] == "reports@example.com"
    body = message.get_body(("plain",)).get_content()
    assert "- Sessions: 6 (new vs previous period)" in body and "- Costs: $0.18 (new vs previous period)" in body
    attachments = {part.get_filename(): part.get_content() for part in message.iter_attachments()}
    assert set(attachments) == {f"{WEEK_LABEL}.pdf", f"{WEEK_LABEL}.csv"}
    assert attachments[f"{WEEK_LABEL}.pdf"] == (built.reports_dir / "weekly-all" / f"{WEEK_LABEL}.pdf").read_bytes()
    assert attachments[f"{WEEK_LABEL}.csv"] == (built.reports_dir / "weekly-all" / f"{WEEK_LABEL}.csv").read_text()
    sales = by_recipients[("sales-lead@example.com",)]
    assert sales["Subject"] == "Sales agent weekly: Nov 02 - Nov 08, 2026"


def test_refusing_mail_server_fails_loudly_and_keeps_the_files(built, smtp_server, capsys, monkeypatch):
    inbox = smtp_server(refuse=True)
    slept = []
    monkeypatch.setattr(mail.time, "sleep", slept.append)
    for report in ("weekly-all", "weekly-sales"):
        for suffix in ("pdf", "csv"):
            (built.reports_dir / report / f"{WEEK_LABEL}.{suffix}").unlink(missing_ok=True)
    assert main(["report", "--frequency", "weekly", "--period-end", WEEK_OF]) == 1
    err = capsys.readouterr().err
    assert "refused: 554 5.7.1 Message rejected by policy" in err and "the files are written" in err
    assert inbox.messages == []
    assert slept == [1.0, 2.0, 1.0, 2.0]  # two reports, three attempts each, exponential backoff
    for report in ("weekly-all", "weekly-sales"):
        assert (built.reports_dir / report / f"{WEEK_LABEL}.pdf").stat().st_size > 1000
        assert (built.reports_dir / report / f"{WEEK_LABEL}.csv").exists()


def test_scheduled_report_step_fails_on_a_down_server_and_is_retried(built, monkeypatch):
    from orchestration.defs.reports import definitions as reports_defs
    from orchestration.resources import AnalyticsSettings

    monkeypatch.setenv(mail.HOST_VAR, "127.0.0.1")
    monkeypatch.setenv(mail.PORT_VAR, str(free_port()))  # nothing listens there
    monkeypatch.setenv(mail.TLS_VAR, "none")
    monkeypatch.setenv(mail.PASSWORD_VAR, "s3cret-smtp-pass")
    monkeypatch.setattr(mail.time, "sleep", lambda seconds: None)
    target = built.reports_dir / "weekly-all" / "2026-W44.pdf"
    production_retry = reports_defs.RETRY
    monkeypatch.setattr(reports_defs, "RETRY", dg.RetryPolicy(max_retries=1, delay=0))  # one quick retry
    result = dg.materialize(  # the scheduled asset, with one quick retry instead of minutes of backoff
        [reports_defs.report_asset("weekly")],
        resources={"analytics": AnalyticsSettings(home=str(built.home))},
        run_config={"ops": {"weekly_reports": {"config": {"period_end": "2026-10-28", "send_email": True}}}},
        raise_on_error=False,
    )
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert kinds.count("STEP_UP_FOR_RETRY") == 1 and kinds.count("STEP_FAILURE") == 1
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data.error)
    assert "report email(s) failed; the files are written" in text and "unreachable" in text
    assert "s3cret-smtp-pass" not in text
    assert target.exists() and (built.reports_dir / "weekly-sales" / "2026-W44.csv").exists()
    monkeypatch.setattr(reports_defs, "RETRY", production_retry)
    assert reports_defs.report_asset("weekly").op.retry_policy == production_retry and production_retry.max_retries >= 3


# --- dashboard ---------------------------------------------------------------------------


def test_dashboard_opens_offline_in_chromium_and_shows_the_key_figures(built, tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Debian chromium is missing: .ci/run installs it (apt-get install chromium)")
    index = write_dashboard(built, now=datetime(2026, 11, 9, tzinfo=timezone.utc))
    week = index.with_name("week.html")
    screenshot = tmp_path / "week.png"
    problems, requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(week.as_uri())
            page.screenshot(path=str(screenshot), full_page=True)
            kpi = {k: page.inner_text(f'[data-kpi="{k}"] .value') for k in
                   ("active_users", "dau", "sessions", "messages", "cost_usd", "error_rate_pct")}
            sections = [page.inner_text(f"section#{s} h2") for s in
                        ("overview", "engagement", "performance", "cost", "tokens", "health")]
            charts = page.locator(".chart svg").count()
            body = page.inner_text("body")
            page.goto(index.as_uri())
            links = page.locator("a[href$='.html']").count()
        finally:
            browser.close()
    assert problems == []
    assert requests == [week.as_uri(), index.as_uri()]  # nothing but the two files: no CDN, no network
    assert kpi == {"active_users": "3", "dau": "0", "sessions": "6", "messages": "9", "cost_usd": "$0.18",
                   "error_rate_pct": "11.11%"}
    assert sections == ["Overview", "User engagement", "Agent performance", "Cost analysis", "Token usage", "System health"]
    assert charts >= 8
    assert "api\t2026-11-02 10:02\t2026-11-02 10:05\t3.0 min" in body  # the incident row
    for text in ("Support Agent", "Sales Agent", "anthropic", "Uptime", "P95", "Queue depth", "cost (USD)", "response time (s)"):
        assert text in body
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000
    from PIL import Image

    image = Image.open(screenshot)
    assert image.size[0] == 1300 and image.size[1] > 2000
    assert len(image.convert("RGB").getcolors(maxcolors=1_000_000)) > 50  # charts drawn, not a blank page
    assert links == 5  # the index links the five period pages


def test_each_schedule_asks_for_the_period_that_just_ended():
    from orchestration.definitions import defs

    cases = {  # scheduled tick (company time zone UTC here) -> period_end of the report run
        "daily_reports_schedule": (datetime(2026, 11, 27, 6, tzinfo=timezone.utc), "2026-11-26"),
        "weekly_reports_schedule": (datetime(2026, 11, 30, 6, tzinfo=timezone.utc), "2026-11-29"),  # Monday: Sun 29
        "monthly_reports_schedule": (datetime(2026, 12, 1, 6, tzinfo=timezone.utc), "2026-11-30"),
    }
    for name, (tick, period_end) in cases.items():
        schedule = defs.resolve_schedule_def(name)
        frequency = name.split("_")[0]
        assert schedule.job_name == f"{frequency}_reports_job"
        with dg.build_schedule_context(scheduled_execution_time=tick) as context:
            request = schedule.evaluate_tick(context).run_requests[0]
        assert request.run_key == f"{frequency}-{period_end}"
        assert request.run_config == {
            "ops": {f"{frequency}_reports": {"config": {"period_end": period_end, "send_email": True}}}
        }
    refresh = defs.resolve_job_def("refresh")
    keys = {k.to_user_string() for k in refresh.asset_layer.executable_asset_keys}
    assert "dashboard" in keys and not keys & {"daily_reports", "weekly_reports", "monthly_reports"}


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (PEM files), valid for a day."""
    import ipaddress
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_email_over_starttls_with_login(built, tmp_path, monkeypatch, capsys):
    """User, password and TLS from the environment: STARTTLS, then AUTH; a wrong password is refused."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, session.ssl is not None))
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"reports", b"correct horse"), handled=False)

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_tls, require_starttls=True,
                            authenticator=authenticate, auth_require_tls=True, auth_exclude_mechanism=["LOGIN"])
    controller.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server's certificate
        for name, value in ((mail.HOST_VAR, "127.0.0.1"), (mail.PORT_VAR, str(port)), (mail.TLS_VAR, "starttls"),
                            (mail.USER_VAR, "reports"), (mail.PASSWORD_VAR, "correct horse")):
            monkeypatch.setenv(name, value)
        assert main(["report", "--frequency", "weekly", "--name", "weekly-all", "--period-end", WEEK_OF]) == 0
        assert "emailed to team@example.com, cto@example.com" in capsys.readouterr().out
        assert len(inbox.messages) == 1 and logins and all(tls for _, _, tls in logins)

        monkeypatch.setenv(mail.PASSWORD_VAR, "wrong horse")
        monkeypatch.setattr(mail.time, "sleep", lambda seconds: None)
        assert main(["report", "--frequency", "weekly", "--name", "weekly-all", "--period-end", WEEK_OF]) == 1
        captured = capsys.readouterr()
        assert "refused: 535" in captured.err and "wrong horse" not in captured.err + captured.out
        assert len(inbox.messages) == 1
    finally:
        controller.stop()
