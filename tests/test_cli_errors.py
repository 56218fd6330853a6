"""Every bad argument or setting gives exactly one line `agent-analytics: error: ...`, exit 2,
no traceback; and the edges of the supported ranges still work.

The table runs `agent_analytics_cli.main.main(argv)` in this process (the environment set with
monkeypatch); a few cases also go through the installed `agent-analytics` script in a
subprocess. Placeholders in a case: {tmp} a scratch folder, {file} an existing file, {dir} an
existing folder, {fifo} a named pipe. Cases marked WAREHOUSE run against a home built from
tests/fixtures (their error comes after the warehouse is opened, or needs one to exist).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from agent_analytics.settings import load_settings
from agent_analytics_cli.main import main
from orchestration.build import run_build

FIXTURES = Path(__file__).parent / "fixtures"
PREFIX = "agent-analytics: error: "
RANGE = "outside the supported dates 1970-01-01..2999-12-31"
WAREHOUSE = "warehouse"
SCRIPT = Path(sys.executable).with_name("agent-analytics")

# (id, argv, environment, what the line must say[, WAREHOUSE])
CASES = [
    # periods: dates outside 1970-01-01..2999-12-31 used to overflow Python's date arithmetic
    ("as-of-9999", ["metrics", "--as-of", "9999-12-31"], {}, f"--as-of '9999-12-31' is {RANGE}"),
    ("as-of-0001", ["metrics", "--as-of", "0001-01-01"], {}, f"--as-of '0001-01-01' is {RANGE}"),
    ("as-of-day-before-range", ["metrics", "--as-of", "1969-12-31"], {}, f"--as-of '1969-12-31' is {RANGE}"),
    ("as-of-day-after-range", ["export", "--as-of", "3000-01-01"], {}, f"--as-of '3000-01-01' is {RANGE}"),
    ("as-of-instant-year-1-offset", ["metrics", "--as-of", "0001-01-01T00:00:00+05:00"], {}, RANGE),
    ("as-of-instant-9999", ["metrics", "--as-of", "9999-12-31T23:59:59"], {}, RANGE),
    ("as-of-hour-25", ["metrics", "--as-of", "2026-11-05T25:00"], {}, "is not a date (YYYY-MM-DD) or an ISO 8601 time"),
    ("as-of-word", ["metrics", "--as-of", "yesterday"], {}, "--as-of 'yesterday' is not a date"),
    ("month-9999", ["metrics", "--month", "9999-12"], {}, f"--month '9999-12' is {RANGE}"),
    ("month-0001", ["metrics", "--month", "0001-01"], {}, f"--month '0001-01' is {RANGE}"),
    ("month-year-0", ["export", "--month", "0000-01"], {}, f"--month '0000-01' is {RANGE}"),
    ("month-13", ["metrics", "--month", "2026-13"], {}, "--month '2026-13' is not a month in YYYY-MM form"),
    ("start-end-9999", ["metrics", "--start", "9999-12-31", "--end", "9999-12-31"], {}, f"--start '9999-12-31' is {RANGE}"),
    ("start-end-0001", ["metrics", "--start", "0001-01-01", "--end", "0001-01-01"], {}, f"--start '0001-01-01' is {RANGE}"),
    ("end-after-range", ["export", "--start", "2999-12-01", "--end", "3000-01-01"], {}, f"--end '3000-01-01' is {RANGE}"),
    ("start-without-end", ["metrics", "--start", "2026-11-01"], {}, "--start and --end go together"),
    ("end-before-start", ["metrics", "--start", "2026-11-05", "--end", "2026-11-01"], {}, "--end 2026-11-01 is before --start 2026-11-05"),
    ("span-too-long", ["metrics", "--start", "2026-01-01", "--end", "2036-12-31"], {}, "a period can span at most 3660 days"),
    ("long-period-year-5", ["metrics", "--period", "3660d", "--as-of", "0005-01-01"], {}, f"--as-of '0005-01-01' is {RANGE}"),
    ("period-3661d", ["metrics", "--period", "3661d"], {}, "period '3661d' must be between 1d and 3660d"),
    ("period-0d", ["export", "--period", "0d"], {}, "period '0d' must be between 1d and 3660d"),
    ("period-word", ["export", "--period", "fortnight"], {}, "unknown period 'fortnight'"),
    ("two-periods", ["export", "--period", "week", "--month", "2026-11"], {}, "give only one of --period, --month"),
    # time zones must be known to zoneinfo and DuckDB alike
    ("tz-posixrules", ["metrics", "--tz", "posixrules"], {}, "unknown time zone 'posixrules'"),
    ("tz-localtime", ["export", "--tz", "localtime"], {}, "unknown time zone 'localtime'"),
    ("tz-abbreviation-only-icu-knows", ["metrics", "--tz", "PST"], {}, "unknown time zone 'PST'"),
    ("tz-lower-case-only-icu-knows", ["metrics", "--tz", "europe/berlin"], {}, "unknown time zone 'europe/berlin'"),
    ("tz-unknown", ["metrics", "--tz", "Mars/Olympus"], {}, "unknown time zone 'Mars/Olympus'"),
    ("tz-path", ["metrics", "--tz", "../../etc/passwd"], {}, "unknown time zone '../../etc/passwd'"),
    ("metrics-format", ["metrics", "--format", "xml"], {}, "argument --format: invalid choice: 'xml'"),
    ("metrics-no-warehouse", ["metrics"], {}, "no warehouse at "),
    ("metrics-unknown-agent", ["metrics", "--agent", "nobody"], {}, "unknown agent 'nobody' (known agents: sales, support)", WAREHOUSE),
    ("deployments-unknown-agent", ["deployments", "--agent", "nobody"], {},
     "unknown agent 'nobody' (known agents: sales, support)", WAREHOUSE),
    ("deployments-bad-window", ["deployments", "--window", "7x"], {},
     "--window '7x': give hours or days, e.g. 12h or 7d (1h to 366d)"),
    ("deployments-zero-window", ["deployments", "--window", "0h"], {}, "--window '0h': give hours or days"),
    ("deployments-window-over-a-year", ["deployments", "--window", "367d"], {}, "--window '367d': give hours or days"),
    # export -o
    ("export-o-folder", ["export", "-o", "{dir}"], {}, "-o {dir}: is a folder; give a file name"),
    ("export-o-under-file", ["export", "-o", "{file}/out.csv"], {}, "-o {file}/out.csv: {file} is a file, not a folder"),
    ("export-o-unwritable", ["export", "-o", "/proc/agent-analytics-test/out.csv"], {}, "-o /proc/agent-analytics-test/out.csv: ", WAREHOUSE),
    ("export-o-empty", ["export", "-o", ""], {}, "argument -o/--output: an empty path"),
    ("export-format", ["export", "--format", "xlsx"], {}, "argument --format: invalid choice: 'xlsx'"),
    # report
    ("report-period-end-9999", ["report", "--frequency", "daily", "--period-end", "9999-12-31"], {},
     f"argument --period-end: '9999-12-31' is {RANGE}"),
    ("report-period-end-0001", ["report", "--frequency", "monthly", "--period-end", "0001-01-01"], {},
     f"argument --period-end: '0001-01-01' is {RANGE}"),
    ("report-period-end-feb-30", ["report", "--frequency", "weekly", "--period-end", "2026-02-30"], {}, "is not a date in YYYY-MM-DD form"),
    ("report-frequency", ["report", "--frequency", "hourly"], {}, "argument --frequency: invalid choice: 'hourly'"),
    ("report-unknown-name", ["report", "--frequency", "daily", "--name", "nobody"], {}, "no daily report named 'nobody'"),
    ("report-empty-name", ["report", "--frequency", "daily", "--name", ""], {}, "no daily report named ''"),
    ("report-no-warehouse", ["report", "--frequency", "daily"], {}, "no warehouse at "),
    # generate
    ("generate-end-9999", ["generate", "--events", "10", "--days", "1", "--end", "9999-12-31", "-o", "{tmp}/gen"], {},
     f"argument --end: '9999-12-31' is {RANGE}"),
    ("generate-end-year-5", ["generate", "--events", "10", "--days", "5000", "--end", "0005-01-01", "-o", "{tmp}/gen"], {},
     f"argument --end: '0005-01-01' is {RANGE}"),
    ("generate-days-before-range", ["generate", "--events", "10", "--days", "5000", "--end", "1975-01-01", "-o", "{tmp}/gen"], {},
     "--days 5000 ending 1975-01-01 would start before 1970-01-01"),
    ("generate-days-huge", ["generate", "--events", "10", "--days", "999999999999", "--end", "2026-11-05", "-o", "{tmp}/gen"], {},
     "--days 999999999999 ending 2026-11-05 would start before 1970-01-01"),
    ("generate-o-file", ["generate", "--events", "10", "--days", "1", "-o", "{file}"], {}, "-o {file}: is a file, not a folder"),
    ("generate-o-under-file", ["generate", "--events", "10", "--days", "1", "-o", "{file}/gen"], {},
     "-o {file}/gen: {file} is a file, not a folder"),
    ("generate-o-unwritable", ["generate", "--events", "10", "--days", "1", "-o", "/proc/agent-analytics-test"], {},
     "-o /proc/agent-analytics-test: "),
    ("generate-seed-negative", ["generate", "--events", "10", "--days", "1", "--seed", "-1", "-o", "{tmp}/gen"], {},
     "argument --seed: '-1' is not a whole number >= 0"),
    ("generate-events-0", ["generate", "--events", "0", "--days", "1", "-o", "{tmp}/gen"], {}, "argument --events: '0' is not a positive"),
    ("generate-events-huge", ["generate", "--events", "99999999999999999999", "--days", "1", "-o", "{tmp}/gen"], {},
     "argument --events: '99999999999999999999' is more than 1000000000 events"),
    ("generate-days-word", ["generate", "--events", "10", "--days", "ten", "-o", "{tmp}/gen"], {}, "argument --days: 'ten' is not a positive"),
    ("generate-end-feb-30", ["generate", "--events", "10", "--days", "1", "--end", "2026-02-30", "-o", "{tmp}/gen"], {},
     "argument --end: '2026-02-30' is not a date"),
    ("generate-o-missing", ["generate", "--events", "10", "--days", "1"], {}, "the following arguments are required: -o/--output"),
    # ingest
    ("ingest-missing", ["ingest", "{tmp}/missing.jsonl"], {}, "{tmp}/missing.jsonl: no such file or folder"),
    ("ingest-fifo", ["ingest", "{fifo}"], {}, "{fifo}: not a regular file"),
    ("ingest-empty-path", ["ingest", ""], {}, "argument paths: an empty path"),
    # alerts
    ("alerts-limit-0", ["alerts", "history", "--limit", "0"], {}, "argument --limit: '0' is not a positive whole number"),
    ("alerts-limit-word", ["alerts", "history", "--limit", "many"], {}, "argument --limit: 'many' is not a positive whole number"),
    ("alerts-limit-superscript", ["alerts", "history", "--limit", "\u00b2"], {}, "argument --limit: '\u00b2' is not a positive whole number"),
    ("alerts-limit-huge", ["alerts", "history", "--limit", "9" * 25], {}, "argument --limit: '" + "9" * 25 + "' is more than 1,000,000"),
    ("alerts-no-subcommand", ["alerts"], {}, "the following arguments are required: alerts_command"),
    ("alerts-test-no-rules", ["alerts", "test", "nope"], {}, "no alert rules file at "),
    # serve (checked before the server starts)
    ("serve-port-word", ["serve", "--port", "http"], {}, "argument --port: 'http' is not a port number (0 to 65535)"),
    ("serve-port-huge", ["serve", "--port", "70000"], {}, "argument --port: '70000' is not a port number (0 to 65535)"),
    ("serve-certfile-missing", ["serve", "--ssl-certfile", "{tmp}/missing.pem"], {}, "argument --ssl-certfile: {tmp}/missing.pem: no such file"),
    ("serve-keyfile-alone", ["serve", "--ssl-keyfile", "{file}"], {}, "--ssl-keyfile needs --ssl-certfile"),
    ("serve-max-body-zero", ["serve"], {"AGENT_ANALYTICS_MAX_BODY_MB": "0"}, "AGENT_ANALYTICS_MAX_BODY_MB='0' must be a positive number"),
    ("serve-token-store-corrupt", ["serve"], {"AGENT_ANALYTICS_HOME": "{tokens_home}"},
     "the token store {tokens_home}/tokens.json is not a token file written by agent-analytics"),
    ("tokens-revoke-unknown", ["tokens", "revoke", "nobody"], {}, "no token named 'nobody' (tokens: none)"),
    # the command itself
    ("no-command", [], {}, "the following arguments are required: command"),
    ("unknown-command", ["frobnicate"], {}, "argument command: invalid choice: 'frobnicate'"),
    # settings
    ("home-is-file", ["metrics"], {"AGENT_ANALYTICS_HOME": "{file}"}, "AGENT_ANALYTICS_HOME='{file}' is a file, not a folder"),
    ("engine-unknown", ["build"], {"AGENT_ANALYTICS_ENGINE": "snowflake"}, "AGENT_ANALYTICS_ENGINE='snowflake' must be duckdb or spark"),
    ("home-under-file", ["ingest", str(FIXTURES / "day1.jsonl")], {"AGENT_ANALYTICS_HOME": "{file}/home"},
     "AGENT_ANALYTICS_HOME='{file}/home' is under {file}, which is a file, not a folder"),
    ("home-unwritable", ["ingest", str(FIXTURES / "day1.jsonl")], {"AGENT_ANALYTICS_HOME": "/proc/agent-analytics-test"},
     "AGENT_ANALYTICS_HOME='/proc/agent-analytics-test': cannot create /proc/agent-analytics-test/landing"),
    ("home-unknown-user", ["metrics"], {"AGENT_ANALYTICS_HOME": "~no-such-user-here/home"},
     "AGENT_ANALYTICS_HOME='~no-such-user-here/home' is not a usable path"),
    ("tz-setting-posixrules", ["metrics"], {"AGENT_ANALYTICS_TZ": "posixrules"},
     "AGENT_ANALYTICS_TZ='posixrules' is not a time zone both Python and DuckDB know"),
    ("tz-setting-localtime", ["build"], {"AGENT_ANALYTICS_TZ": "localtime"}, "AGENT_ANALYTICS_TZ='localtime' is not a time zone"),
    ("tz-setting-abbreviation", ["report", "--frequency", "daily"], {"AGENT_ANALYTICS_TZ": "IST"},
     "AGENT_ANALYTICS_TZ='IST' is not a time zone"),
    # a home whose warehouse DuckDB cannot open
    ("warehouse-not-duckdb", ["metrics"], {"AGENT_ANALYTICS_HOME": "{foreign}"},
     "cannot open the warehouse {foreign}/warehouse.duckdb: The file \"{foreign}/warehouse.duckdb\" exists, "
     "but it is not a valid DuckDB database file"),
    ("warehouse-not-duckdb-ingest", ["ingest", str(FIXTURES / "day1.jsonl")], {"AGENT_ANALYTICS_HOME": "{foreign}"},
     "cannot open the warehouse {foreign}/warehouse.duckdb"),
    ("warehouse-not-duckdb-alerts", ["alerts", "history"], {"AGENT_ANALYTICS_HOME": "{foreign}"},
     "cannot open the warehouse {foreign}/warehouse.duckdb"),
    ("warehouse-not-duckdb-report", ["report", "--frequency", "weekly"], {"AGENT_ANALYTICS_HOME": "{foreign}"},
     "cannot open the warehouse {foreign}/warehouse.duckdb"),
    ("warehouse-is-folder", ["export"], {"AGENT_ANALYTICS_HOME": "{folder_home}"},
     "cannot open the warehouse {folder_home}/warehouse.duckdb: Could not read from file"),
    ("warehouse-lock-is-folder", ["metrics"], {"AGENT_ANALYTICS_HOME": "{lock_home}"},
     "cannot open the warehouse lock {lock_home}/warehouse.duckdb.lock: Is a directory"),
    ("timeout-zero", ["metrics"], {"AGENT_ANALYTICS_SESSION_TIMEOUT_MIN": "0"}, "AGENT_ANALYTICS_SESSION_TIMEOUT_MIN='0' must be a positive"),
    ("capacity-inf", ["metrics"], {"AGENT_ANALYTICS_CAPACITY_PER_MIN": "inf"},
     "AGENT_ANALYTICS_CAPACITY_PER_MIN='inf' must be a positive number"),
    ("thresholds-decreasing", ["metrics"], {"AGENT_ANALYTICS_ERROR_RATE_THRESHOLDS": "2,1,0.5"},
     "AGENT_ANALYTICS_ERROR_RATE_THRESHOLDS='2,1,0.5' must be 3 increasing positive numbers"),
]


def _fill(text: str, places: dict[str, str]) -> str:
    for name, value in places.items():
        text = text.replace("{" + name + "}", value)
    return text


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "a-folder").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    (tmp_path / "foreign-home").mkdir()
    (tmp_path / "foreign-home" / "warehouse.duckdb").write_text("not a database\n")
    (tmp_path / "folder-home" / "warehouse.duckdb").mkdir(parents=True)
    (tmp_path / "lock-home" / "warehouse.duckdb.lock").mkdir(parents=True)
    (tmp_path / "lock-home" / "warehouse.duckdb").touch()
    (tmp_path / "tokens-home").mkdir()
    (tmp_path / "tokens-home" / "tokens.json").write_text("[]\n")
    return {"tmp": str(tmp_path), "file": str(tmp_path / "a-file"), "dir": str(tmp_path / "a-folder"),
            "fifo": str(tmp_path / "a-fifo"), "foreign": str(tmp_path / "foreign-home"),
            "folder_home": str(tmp_path / "folder-home"), "lock_home": str(tmp_path / "lock-home"),
            "tokens_home": str(tmp_path / "tokens-home")}


def _clean_env(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AGENT_ANALYTICS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))


@pytest.fixture(scope="module")
def built_home(tmp_path_factory) -> Path:
    """A home whose warehouse is built from the fixture (one ingest, one build)."""
    home = tmp_path_factory.mktemp("built-home")
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("AGENT_ANALYTICS_"):
            patch.delenv(name)
    patch.setenv("AGENT_ANALYTICS_HOME", str(home))
    saved_env = dict(os.environ)
    assert main(["ingest", str(FIXTURES / "day1.jsonl"), str(FIXTURES / "day2.jsonl")]) == 0
    assert run_build(load_settings())
    yield home
    os.environ.clear()
    os.environ.update(saved_env)
    patch.undo()


def assert_one_error_line(code: int, out: str, err: str, expected: str) -> None:
    assert "Traceback" not in err and "Traceback" not in out, err
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert expected in lines[0], (expected, lines[0])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_invocation_gives_one_line_and_exit_2(case, places, tmp_path, monkeypatch, capsys, request):
    _name, argv, env, expected, *flags = case
    home = request.getfixturevalue("built_home") if WAREHOUSE in flags else tmp_path / "home"
    _clean_env(monkeypatch, home)
    for name, value in env.items():
        monkeypatch.setenv(name, _fill(value, places))
    capsys.readouterr()
    code = main([_fill(arg, places) for arg in argv])
    out, err = capsys.readouterr()
    assert_one_error_line(code, out, err, _fill(expected, places))
    assert out == ""


def test_the_table_covers_at_least_forty_invocations():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(
    "argv, env, expected",
    [
        (["metrics", "--as-of", "9999-12-31"], {}, f"--as-of '9999-12-31' is {RANGE}"),
        (["metrics"], {"AGENT_ANALYTICS_TZ": "posixrules"}, "AGENT_ANALYTICS_TZ='posixrules' is not a time zone"),
        (["export", "-o", "{dir}"], {}, "-o {dir}: is a folder"),
        (["generate", "--events", "10", "--days", "1", "-o", "{file}"], {}, "-o {file}: is a file, not a folder"),
        (["ingest", str(FIXTURES / "day1.jsonl")], {"AGENT_ANALYTICS_HOME": "{file}"}, "AGENT_ANALYTICS_HOME='{file}' is a file"),
        (["report", "--frequency", "daily", "--period-end", "0001-01-01"], {}, RANGE),
    ],
    ids=["as-of-9999", "tz-posixrules", "export-o-folder", "generate-o-file", "home-is-file", "report-period-end-0001"],
)
def test_the_installed_script_gives_one_line_and_exit_2(argv, env, expected, places, tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    environ["AGENT_ANALYTICS_HOME"] = str(tmp_path / "home")
    environ.update({name: _fill(value, places) for name, value in env.items()})
    proc = subprocess.run([str(SCRIPT), *[_fill(a, places) for a in argv]], capture_output=True, text=True,
                          env=environ, timeout=120)
    assert_one_error_line(proc.returncode, proc.stdout, proc.stderr, _fill(expected, places))


def test_ingest_of_a_folder_that_cannot_be_listed(tmp_path, monkeypatch, capsys):
    """A folder we may not read (PermissionError from the listing; as root no chmod makes one,
    so the listing is made to fail) is one line, and nothing is loaded."""
    folder = tmp_path / "closed"
    folder.mkdir()
    (folder / "a.jsonl").write_text((FIXTURES / "day1.jsonl").read_text())
    _clean_env(monkeypatch, tmp_path / "home")
    real_iterdir = Path.iterdir

    def refusing_iterdir(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refusing_iterdir)
    code = main(["ingest", str(folder)])
    out, err = capsys.readouterr()
    assert_one_error_line(code, out, err, f"{folder}: cannot read (Permission denied)")
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()


def test_output_into_a_folder_without_write_permission(tmp_path, monkeypatch, capsys):
    """export -o and generate -o into a folder this user may not write (os.access says no; as
    root it never does, so it is made to): one line each, nothing written."""
    import agent_analytics.output_paths as output_paths

    closed = tmp_path / "closed"
    closed.mkdir()
    real_access = os.access
    monkeypatch.setattr(output_paths.os, "access", lambda p, mode: Path(p) != closed and real_access(p, mode))
    _clean_env(monkeypatch, tmp_path / "home")
    for argv, expected in (
        (["export", "-o", str(closed / "out.csv")], f"-o {closed / 'out.csv'}: cannot write in {closed} (permission denied)"),
        (["generate", "--events", "10", "--days", "1", "-o", str(closed / "gen")],
         f"-o {closed / 'gen'}: cannot write in {closed} (permission denied)"),
        (["generate", "--events", "10", "--days", "1", "-o", str(closed)], f"-o {closed}: cannot write in the folder (permission denied)"),
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        assert_one_error_line(code, out, err, expected)
    assert list(closed.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes through any permission bits")
def test_unreadable_and_unwritable_places_by_permission_bits(tmp_path, monkeypatch, capsys):
    closed = tmp_path / "closed"
    closed.mkdir()
    (closed / "a.jsonl").write_text("{}\n")
    closed.chmod(0o000)
    try:
        _clean_env(monkeypatch, tmp_path / "home")
        for argv, expected in (
            (["ingest", str(closed)], f"{closed}: cannot read (Permission denied)"),
            (["ingest", str(closed / "a.jsonl")], f"{closed / 'a.jsonl'}: cannot read (Permission denied)"),
            (["generate", "--events", "10", "--days", "1", "-o", str(closed / "gen")], "permission denied"),
            (["export", "-o", str(closed / "out.csv")], "permission denied"),
        ):
            code = main(argv)
            out, err = capsys.readouterr()
            assert_one_error_line(code, out, err, expected)
    finally:
        closed.chmod(0o755)


def test_report_whose_folder_is_a_file(built_home, tmp_path, monkeypatch, capsys):
    """reports/<name> is a file: the report cannot be written, one line names the path."""
    definitions = tmp_path / "reports.toml"
    definitions.write_text('[[report]]\nname = "blocked"\nfrequency = "daily"\nformat = "csv"\n')
    _clean_env(monkeypatch, built_home)
    monkeypatch.setenv("AGENT_ANALYTICS_REPORTS", str(definitions))
    blocker = built_home / "reports" / "blocked"
    blocker.write_text("in the way\n")
    try:
        code = main(["report", "--frequency", "daily", "--period-end", "2026-11-02"])
        out, err = capsys.readouterr()
        assert_one_error_line(code, out, err, f"report 'blocked': cannot write {blocker}: a file is in the way")
    finally:
        blocker.unlink()


# ----------------------------------------------------------------- the edges still work


def _metrics(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert main(["metrics", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_last_supported_as_of_with_the_longest_period(built_home, monkeypatch, capsys):
    """--as-of 2999-12-31 in the zone furthest ahead of UTC, 3660 days: the period, its
    previous period and every derived day are computed (no overflow), all of them empty."""
    _clean_env(monkeypatch, built_home)
    doc = _metrics(capsys, "--as-of", "2999-12-31", "--period", "3660d", "--tz", "Pacific/Kiritimati")
    end = datetime(3000, 1, 1, tzinfo=timezone(timedelta(hours=14))).astimezone(timezone.utc)
    start = end - timedelta(days=3660)
    assert doc["period"]["end"] == end.isoformat().replace("+00:00", "Z") == "2999-12-31T10:00:00Z"
    assert doc["period"]["start"] == start.isoformat().replace("+00:00", "Z")
    assert doc["period"]["end_date"] == "2999-12-31" and doc["period"]["days"] == 3660
    assert len(doc["daily"]) == (date(2999, 12, 31) - start.astimezone(timezone(timedelta(hours=14))).date()).days + 1
    assert doc["overview"]["messages"] == {"value": 0, "previous": 0, "change_pct": None, "trend": "unchanged"}


def test_first_supported_month_west_of_utc(built_home, monkeypatch, capsys):
    """--month 1970-01 in Los Angeles: its previous period reaches into 1969, the MAU lookback
    29 days before that; the export still has one zero row per day."""
    _clean_env(monkeypatch, built_home)
    doc = _metrics(capsys, "--month", "1970-01", "--tz", "America/Los_Angeles")
    assert doc["period"]["start"] == "1970-01-01T08:00:00Z" and doc["period"]["end"] == "1970-02-01T08:00:00Z"
    assert [d["date"] for d in doc["daily"]] == [(date(1970, 1, 1) + timedelta(days=i)).isoformat() for i in range(31)]
    assert all(d["messages"] == 0 and d["mau"] == 0 for d in doc["daily"])


def test_a_valid_export_after_the_output_checks_writes_the_file(built_home, monkeypatch, tmp_path, capsys):
    """The pre-checks refuse only what cannot be written: a new file in a new folder is fine."""
    _clean_env(monkeypatch, built_home)
    target = tmp_path / "new" / "folder" / "daily.csv"
    assert main(["export", "--start", "2026-11-02", "--end", "2026-11-03", "-o", str(target)]) == 0
    rows = target.read_text().splitlines()
    assert rows[0].startswith("date,dau,wau,mau") and [r.split(",")[0] for r in rows[1:]] == ["2026-11-02", "2026-11-03"]


def test_report_periods_at_the_edges_of_the_range():
    from agent_analytics.periods import PeriodError, report_period

    # 1970-01-01 is a Thursday: its ISO week starts on Monday 1969-12-29 and is 1970-W01
    label, period = report_period("weekly", date(1970, 1, 1), "UTC")
    assert label == "1970-W01"
    assert (period.start, period.end) == (datetime(1969, 12, 29, tzinfo=timezone.utc), datetime(1970, 1, 5, tzinfo=timezone.utc))
    label, period = report_period("weekly", date(2999, 12, 31), "Pacific/Kiritimati")
    assert label == "3000-W01" and period.end_date == date(3000, 1, 5)
    assert period.previous().start_date == date(2999, 12, 23)
    with pytest.raises(PeriodError, match=RANGE):
        report_period("daily", date(9999, 12, 31), "UTC")


def test_generate_on_the_first_supported_day(tmp_path, monkeypatch, capsys):
    _clean_env(monkeypatch, tmp_path / "home")
    out = tmp_path / "gen"
    assert main(["generate", "--events", "40", "--days", "2", "--end", "1970-01-02", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["events-1970-01-01.jsonl", "events-1970-01-02.jsonl"]
    first = json.loads((out / "events-1970-01-01.jsonl").read_text().splitlines()[0])
    assert first["occurred_at"].startswith("1970-01-01T")


def test_zones_are_those_python_and_duckdb_both_know():
    import zoneinfo

    import duckdb

    from agent_analytics.timezones import is_known_zone

    con = duckdb.connect()
    in_duckdb = {name for (name,) in con.execute("select name from pg_timezone_names()").fetchall()}
    con.close()
    for name in ("posixrules", "localtime"):  # files of the system's zoneinfo folder, unknown to ICU
        zoneinfo.ZoneInfo(name)
        assert name not in in_duckdb and not is_known_zone(name)
    for name in ("PST", "IST", "europe/berlin"):  # ICU spellings zoneinfo refuses
        with pytest.raises(zoneinfo.ZoneInfoNotFoundError):
            zoneinfo.ZoneInfo(name)
        assert not is_known_zone(name)
    for name in ("UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Kiritimati", "Asia/Kolkata"):
        assert is_known_zone(name)
    assert not is_known_zone("")
