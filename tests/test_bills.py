"""Provider bills (docs/bills.md): `bills import` accounting and quarantine, re-import and a
corrected export, the reconciliation mart and `bills show`, against figures worked out by hand.

The fixture, in company time America/New_York (calls of the month are those whose messages
fall on its local days):

- openai gpt-4o in October: 0.40 on Oct 5 and Oct 10, then its price went up mid-month, 0.60
  on Oct 20 and 0.60 at 2026-11-01T02:00Z, which is still Oct 31 in New York: 2.00 in all;
- openai acme-internal-1 on Oct 15: 100 + 20 tokens, no reported cost and no known price
  (unpriced: 1 call, 120 tokens);
- anthropic claude on Oct 12: 0.25;
- openai gpt-4o on Nov 3: 1.00.

october.csv bills openai 1.50 + 0.70 (gpt-4o, two projects) + 0.05 (acme-internal-1),
anthropic 0.26 and google 3.00 (no calls at all), plus three bad rows. november.csv bills
openai 1.30, then november-fixed.csv corrects it to 1.02.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[1]
TZ = "America/New_York"


def _message(event_id: str, at: str, provider: str, model: str, tokens: tuple[int, int], cost: float | None) -> str:
    call = {"provider": provider, "model": model, "input_tokens": tokens[0], "output_tokens": tokens[1]}
    if cost is not None:
        call["cost_usd"] = cost
    return json.dumps({"event_id": event_id, "type": "message", "occurred_at": at, "user_id": "u1",
                       "agent_id": "support", "status": "ok", "response_time_ms": 1000, "llm_calls": [call]})


EVENTS = [
    _message("e1", "2026-10-05T15:00:00Z", "openai", "gpt-4o", (1000, 100), 0.40),
    _message("e2", "2026-10-10T15:00:00Z", "openai", "gpt-4o", (1000, 100), 0.40),
    _message("e3", "2026-10-20T15:00:00Z", "openai", "gpt-4o", (1000, 100), 0.60),
    _message("e4", "2026-11-01T02:00:00Z", "openai", "gpt-4o", (1000, 100), 0.60),
    _message("e5", "2026-10-15T12:00:00Z", "openai", "acme-internal-1", (100, 20), None),
    _message("e6", "2026-10-12T12:00:00Z", "anthropic", "claude-3-5-sonnet-20241022", (500, 50), 0.25),
    _message("e7", "2026-11-03T12:00:00Z", "openai", "gpt-4o", (1000, 100), 1.00),
]

OCTOBER = """provider,month,amount_usd,model,project,currency
OpenAI,2026-10,1.50,gpt-4o,proj-a,USD
openai,2026-10,0.70,GPT-4o,proj-b,USD
openai,2026-10,0.05,acme-internal-1,proj-a,USD
Anthropic,2026-10,0.26,,,USD
google,2026-10,3.00,,,USD
openai,2026-1O,1.00,,,USD
,2026-10,1.00,,,USD
openai,2026-10,-2,,,USD
"""
NOVEMBER = "provider,month,amount_usd\nopenai,2026-11,1.30\n"
NOVEMBER_FIXED = "provider,month,amount_usd\r\nopenai,2026-11,1.02\r\n"


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent_analytics_cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("bills")
    (base / "events.jsonl").write_text("\n".join(EVENTS) + "\n")
    for name, text in (("october.csv", OCTOBER), ("november.csv", NOVEMBER), ("november-fixed.csv", NOVEMBER_FIXED)):
        (base / name).write_bytes(text.encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    env.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ=TZ, PYTHONPATH=str(ROOT))
    assert _cli(env, "ingest", str(base / "events.jsonl")).returncode == 0
    outputs = {name: _cli(env, "bills", "import", str(base / name))
               for name in ("october.csv", "november.csv", "november-fixed.csv")}
    outputs["again"] = _cli(env, "bills", "import", str(base / "october.csv"))
    build = _cli(env, "build")
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return base, env, outputs


def _mart(base: Path) -> dict:
    with duckdb.connect(str(base / "home" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("""select provider, strftime(bill_month, '%Y-%m'), model, estimate_usd, bill_usd, diff_usd,
                                     diff_pct, is_flagged, unpriced_calls, unpriced_tokens
                              from fct_bill_reconciliation""").fetchall()
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def test_import_prints_the_accounting_and_quarantines_bad_rows_with_reasons(built):
    base, env, outputs = built
    october = outputs["october.csv"]
    assert october.returncode == 0, october.stderr
    assert "october.csv: rows read 8, stored 5, quarantined 3" in october.stdout
    for reason in ("month is not YYYY-MM", "provider is missing", "amount_usd is negative"):
        assert f"quarantined 1: {reason}" in october.stdout
    with duckdb.connect(str(base / "home" / "warehouse.duckdb"), read_only=True) as con:
        quarantined = con.execute("""select line_number, reason, raw_line from ingest.quarantine
                                     where file_name = 'october.csv' order by line_number""").fetchall()
        ledger = con.execute("""select file_name, lines, loaded, quarantined from ingest.ledger
                                where record_type = 'bill' order by ingested_at""").fetchall()
    assert quarantined == [(7, "month is not YYYY-MM", "openai,2026-1O,1.00,,,USD"),
                           (8, "provider is missing", ",2026-10,1.00,,,USD"),
                           (9, "amount_usd is negative", "openai,2026-10,-2,,,USD")]
    assert ledger == [("october.csv", 8, 5, 3), ("november.csv", 1, 1, 0), ("november-fixed.csv", 1, 1, 0)]


def test_the_same_file_again_changes_nothing(built):
    base, env, outputs = built
    again = outputs["again"]
    assert again.returncode == 0
    assert "rows read 8, stored 5, quarantined 3  (already imported: same content, nothing changed)" in again.stdout
    with duckdb.connect(str(base / "home" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from ingest.quarantine where file_name = 'october.csv'").fetchone() == (3,)
    assert len(list((base / "home" / "raw" / "batches").glob("*/bills.parquet"))) == 1 + 3  # the schema file and 3 imports


def test_reconciliation_by_provider_month_and_model(built):
    base, _, _ = built
    d = Decimal
    assert _mart(base) == {
        # openai October: bill 1.50 + 0.70 + 0.05 = 2.25, estimate 0.40 + 0.40 + 0.60 + 0.60 = 2.00 (the
        # call at 02:00 UTC on Nov 1 is Oct 31 in New York), +0.25 = +12.5%; beside it the unpriced call
        ("openai", "2026-10", None): (d("2.00"), d("2.25"), d("0.25"), 12.5, True, 1, 120),
        # the gpt-4o lines (GPT-4o matches gpt-4o): 2.20 against 2.00, +10%
        ("openai", "2026-10", "gpt-4o"): (d("2.00"), d("2.20"), d("0.20"), 10.0, True, 0, 0),
        # the unpriced model: no estimate, so all of its bill is unexplained (100%)
        ("openai", "2026-10", "acme-internal-1"): (d("0"), d("0.05"), d("0.05"), 100.0, True, 1, 120),
        # anthropic: 0.26 against 0.25 is +4%, under the 5% threshold
        ("anthropic", "2026-10", None): (d("0.25"), d("0.26"), d("0.01"), 4.0, False, 0, 0),
        # google: a bill without a single call
        ("google", "2026-10", None): (d("0"), d("3.00"), d("3.00"), 100.0, True, 0, 0),
        # November: the corrected export (1.02) replaced the first one (1.30): +2%
        ("openai", "2026-11", None): (d("1.00"), d("1.02"), d("0.02"), 2.0, False, 0, 0),
    }


def test_bills_show_as_json_and_as_a_table(built):
    _, env, _ = built
    shown = _cli(env, "bills", "show", "--format", "json", "--month", "2026-11")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"threshold_pct": 5.0, "bills": [{
        "provider": "openai", "month": "2026-11", "model": None, "estimate_usd": 1.0, "bill_usd": 1.02,
        "diff_usd": 0.02, "diff_pct": 2.0, "flagged": False, "unpriced_calls": 0, "unpriced_tokens": 0}]}
    table = _cli(env, "bills", "show").stdout.splitlines()
    assert table[0].split() == ["Month", "Provider", "Model", "Estimate", "$", "Bill", "$", "Diff", "$", "Diff", "%",
                                "Unpriced", "calls", "Status"]
    assert table[1].split() == ["2026-10", "anthropic", "(all)", "0.25", "0.26", "+0.01", "+4.0", "0", "ok"]
    assert table[3].split() == ["2026-10", "openai", "(all)", "2.00", "2.25", "+0.25", "+12.5", "1", "MISMATCH"]
    assert table[-1].startswith("4 of 6 lines differ from the estimate by more than 5%")


def test_the_metrics_document_dashboard_pdf_and_email_show_the_months_bills(built):
    import io

    import jsonschema
    import pypdf

    from agent_analytics.exports import MetricsQuery, load_schema, metrics_document
    from agent_analytics.periods import Page
    from agent_analytics.reports.dashboard import render_page
    from agent_analytics.reports.pdf import render_pdf
    from agent_analytics.reports.summary import summary_text
    from agent_analytics.settings import load_settings

    base, env, _ = built
    settings = load_settings(env)
    october = metrics_document(settings, MetricsQuery(month="2026-10", as_of="2026-12-01"))
    jsonschema.validate(october, load_schema())
    assert [(b["provider"], b["model"], b["bill_usd"], b["estimate_usd"], b["flagged"]) for b in october["bills"]] == [
        ("anthropic", None, 0.26, 0.25, False), ("google", None, 3.0, 0.0, True), ("openai", None, 2.25, 2.0, True),
        ("openai", "acme-internal-1", 0.05, 0.0, True), ("openai", "gpt-4o", 2.2, 2.0, True)]
    # an agent's document has none (a bill is the provider's); a period of other months neither
    assert metrics_document(settings, MetricsQuery(month="2026-10", agents=["support"], as_of="2026-12-01"))["bills"] == []
    september = metrics_document(settings, MetricsQuery(month="2026-09", as_of="2026-12-01"))
    assert september["bills"] == []
    page = Page("previous-month", "Previous month", None)
    html = render_page(page, october, [page])
    assert '<section id="bills"><h2>Provider bills</h2>' in html and "<td>MISMATCH</td>" in html
    assert 'id="bills"' not in render_page(page, september, [page])
    email = summary_text("Monthly", october, september)
    assert "- openai 2026-10: bill $2.25, estimate $2.00 (+12.5%), MISMATCH; unpriced calls: 1" in email
    assert "Provider bills" not in summary_text("Monthly", september, september)
    pdf_text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(render_pdf("Monthly", october, september))).pages)
    assert "Provider bills" in pdf_text and "acme-internal-1" in pdf_text


@pytest.mark.parametrize(("argv", "content", "message"), [
    (["bills", "import", "{base}/missing.csv"], None, "missing.csv: no such file"),
    (["bills", "import", "{base}"], None, "a folder, not a bill file"),
    (["bills", "import", "{base}/bad.csv"], "provider,amount_usd\nopenai,1\n", "the header has no column month"),
    (["bills", "import", "{base}/latin1.csv"], "provider,month,amount_usd\ncaf\xe9,2026-10,1\n", "not UTF-8 text"),
    (["bills", "show", "--month", "2026-13"], None, "--month '2026-13' is not a month in YYYY-MM form"),
])
def test_bad_input_is_one_clear_line(tmp_path, argv, content, message):
    if content is not None:
        (tmp_path / argv[-1].rsplit("/", 1)[1]).write_bytes(content.encode("latin-1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    env.update(AGENT_ANALYTICS_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    done = _cli(env, *[a.format(base=tmp_path) for a in argv])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------- the alert kind "bill mismatch"

RECONCILIATION_DDL = """
create table fct_messages (occurred_at timestamp);
create table fct_health_checks (checked_at timestamp, is_up boolean);
create table fct_queue_samples (sampled_at timestamp, depth integer);
create table fct_bill_reconciliation (provider varchar, bill_month date, model varchar, estimate_usd decimal(28, 10),
    bill_usd decimal(28, 10), diff_usd decimal(28, 10), diff_pct double, is_flagged boolean, unpriced_calls bigint,
    unpriced_tokens bigint);
insert into fct_bill_reconciliation values
    ('openai', '2026-10-01', null, 2.00, 2.25, 0.25, 12.5, true, 1, 120),
    ('openai', '2026-10-01', 'gpt-4o', 2.00, 2.20, 0.20, 10.0, true, 0, 0),
    ('anthropic', '2026-10-01', null, 0.25, 0.26, 0.01, 4.0, false, 0, 0),
    ('google', '2026-10-01', null, 0, 3.00, 3.00, 100.0, true, 0, 0);
"""


def test_bill_mismatch_fires_once_per_flagged_provider_month_and_resolves_when_corrected():
    from datetime import datetime, timezone

    from agent_analytics.alerts.evaluate import evaluate
    from agent_analytics.alerts.events import headline
    from agent_analytics.alerts.rules import AlertsConfigError, parse_config
    from agent_analytics.settings import load_settings

    channels = {"hook": {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}}
    cfg = parse_config({"channels": channels, "rules": {"bills": {"metric": "bill_mismatch", "channels": ["hook"]}}},
                       Path("alerts.toml"))
    with pytest.raises(AlertsConfigError, match="a bill_mismatch rule takes no threshold"):
        parse_config({"channels": channels, "rules": {"b": {"metric": "bill_mismatch", "threshold": 5,
                                                            "channels": ["hook"]}}}, Path("alerts.toml"))
    con = duckdb.connect()
    con.execute(RECONCILIATION_DDL)
    settings, now = load_settings({}), datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)

    def payloads():
        rows = con.execute("select payload from alerts.outbox order by rowid").fetchall()
        return [json.loads(p) for (p,) in rows]

    first = evaluate(con, cfg, settings, now)
    # the whole bills of openai (+12.5%) and google (no calls) are flagged; anthropic (+4%) is not,
    # and the gpt-4o model line does not fire on its own
    assert [e[0] for e in first.events] == ["alert.triggered", "alert.triggered"]
    events = payloads()
    assert [(e["data"]["scope"], e["data"]["value"], e["data"]["bill"]) for e in events] == [
        ("google 2026-10", 100.0, {"provider": "google", "month": "2026-10", "estimate_usd": 0.0, "bill_usd": 3.0,
                                   "diff_usd": 3.0, "unpriced_calls": 0}),
        ("openai 2026-10", 12.5, {"provider": "openai", "month": "2026-10", "estimate_usd": 2.0, "bill_usd": 2.25,
                                  "diff_usd": 0.25, "unpriced_calls": 1}),
    ]
    assert headline(events[1]).startswith("ALERT [warning] bills (openai bill of 2026-10): ")
    assert headline(events[1]).endswith(": 12.5 %")
    assert evaluate(con, cfg, settings, now).events == []  # once per provider-month
    # a corrected google bill (no longer flagged) resolves its episode; openai's stays open
    con.execute("update fct_bill_reconciliation set is_flagged = false where provider = 'google'")
    assert [e[0] for e in evaluate(con, cfg, settings, now).events] == ["alert.resolved"]
    assert con.execute("select scope, status from alerts.episodes order by scope").fetchall() == [
        ("google 2026-10", "resolved"), ("openai 2026-10", "firing")]
    assert evaluate(con, cfg, settings, now).events == []


def test_compaction_leaves_bill_batches_alone(tmp_path):
    """Compaction merges the event batches of closed days and deletes their folders; a bill's
    batch has no event days and stays where the bills source reads it."""
    from datetime import datetime, timedelta

    from ingestion.bills import import_bill_file
    from ingestion.compaction import compact

    home = tmp_path / "home"
    (tmp_path / "bill.csv").write_text(NOVEMBER)
    result = import_bill_file(tmp_path / "bill.csv", home / "warehouse.duckdb", home / "raw")
    assert (result.lines, result.loaded, result.quarantined) == (1, 1, 0)
    compact(home / "warehouse.duckdb", home / "raw", datetime.now() + timedelta(days=1))
    stored = home / "raw" / "batches" / result.batch_id / "bills.parquet"
    assert duckdb.sql(f"select provider, amount_usd from read_parquet('{stored}')").fetchall() == [("openai", Decimal("1.3"))]


def test_the_threshold_setting():
    from agent_analytics.settings import SettingsError, load_settings

    assert load_settings({}).bill_mismatch_pct == 5.0
    assert load_settings({"AGENT_ANALYTICS_BILL_MISMATCH_PCT": "0"}).bill_mismatch_pct == 0.0
    assert load_settings({"AGENT_ANALYTICS_BILL_MISMATCH_PCT": "2.5"}).env()["AGENT_ANALYTICS_BILL_MISMATCH_PCT"] == "2.5"
    for bad in ("-1", "five", "nan", "1,2"):
        with pytest.raises(SettingsError, match="AGENT_ANALYTICS_BILL_MISMATCH_PCT"):
            load_settings({"AGENT_ANALYTICS_BILL_MISMATCH_PCT": bad})


def test_every_quarantine_reason(tmp_path):
    from ingestion.bills import import_bill_file

    rows = [
        ("openai,2026-10,1", "wrong number of fields"),
        (",2026-10,1,,", "provider is missing"),
        ("x" * 201 + ",2026-10,1,,", "provider is longer than 200 characters"),
        ("openai,,1,,", "month is missing"),
        ("openai,10/2026,1,,", "month is not YYYY-MM"),
        ("openai,2026-10,,,", "amount_usd is missing"),
        ("openai,2026-10,-0.5,,", "amount_usd is negative"),
        ("openai,2026-10,$12,,", "amount_usd is not a decimal number (digits and an optional point)"),
        ('openai,2026-10,"1,200.00",,', "amount_usd is not a decimal number (digits and an optional point)"),
        ("openai,2026-10,1e3,,", "amount_usd is not a decimal number (digits and an optional point)"),
        ("openai,2026-10,0.1234567,,", "amount_usd has more than 6 decimal places"),
        ("openai,2026-10,1000000000000,,", "amount_usd is a trillion USD or more"),
        ("openai,2026-10,1," + "m" * 201 + ",", "model is longer than 200 characters"),
        ("openai,2026-10,1,,", None),  # stored
        ("openai,2026-10,000999999999999.999999,,", None),  # stored: just under a trillion
        ('openai,2026-10,1,"gpt\n4",', "a line break or control character in provider, model or project"),
    ]
    (tmp_path / "bill.csv").write_text("provider,month,amount_usd,model,project\n" + "\n".join(r for r, _ in rows) + "\n")
    home = tmp_path / "home"
    result = import_bill_file(tmp_path / "bill.csv", home / "warehouse.duckdb", home / "raw")
    assert (result.lines, result.loaded, result.quarantined) == (len(rows), 2, len(rows) - 2)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("select line_number, reason from ingest.quarantine order by line_number").fetchall()
    assert found == [(n, reason) for n, (_, reason) in enumerate(rows, 2) if reason is not None]
    stored = home / "raw" / "batches" / result.batch_id / "bills.parquet"
    assert duckdb.sql(f"select amount_usd from read_parquet('{stored}') order by 1").fetchall() == [
        (Decimal("1"),), (Decimal("999999999999.999999"),)]
