"""The `agent-analytics` command line: ingest, build, export, metrics, compare, deployments, report, alerts,
bills, prices, generate, demo, dev, serve, tokens, up.

Bad arguments and user mistakes print one line `agent-analytics: error: ...` and exit 2
(1 when a build fails); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from agent_analytics.alerts.commands import add_alerts_parser
from agent_analytics.build_memory import out_of_memory_outside_dbt
from agent_analytics.prices_check import add_prices_parser
from agent_analytics.settings import Settings, SettingsError, load_settings
from agent_analytics.warehouse import WarehouseOpenError
from agent_analytics_cli.bills import add_bills_parser

PROG = "agent-analytics"
DEMO_EVENTS = 50_000
DEMO_DAYS = 30
DEMO_SEED = 42
MAX_GENERATE_EVENTS = 1_000_000_000  # a sanity bound (the benchmark uses 10^7); past 2^63 numpy cannot even draw


class UsageError(Exception):
    """A mistake of the user's; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _date_arg(text: str) -> date:
    """A date inside the supported range (periods.FIRST_DATE..LAST_DATE)."""
    from agent_analytics.periods import FIRST_DATE, LAST_DATE

    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the supported dates {FIRST_DATE}..{LAST_DATE}")
    return day


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _path_arg(text: str) -> Path:
    if not text.strip():  # Path("") is the current folder: never what an empty argument meant
        raise argparse.ArgumentTypeError("an empty path")
    return Path(text)


def _port(text: str) -> int:
    if not (text.isdigit() and 0 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def _existing_file(text: str) -> Path:
    path = _path_arg(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return path


def _event_count(text: str) -> int:
    value = _positive_int(text)
    if value > MAX_GENERATE_EVENTS:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_GENERATE_EVENTS} events")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:  # numpy's generators take non-negative seeds only
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _add_period_arguments(parser: argparse.ArgumentParser, default: str = "30d") -> None:
    parser.add_argument("--period", help="today, week, month (30 days) or Nd: the last N local days, today so far "
                                         f"included (default {default})")
    parser.add_argument("--start", help="first local day, YYYY-MM-DD (with --end)")
    parser.add_argument("--end", help="last local day, YYYY-MM-DD (with --start)")
    parser.add_argument("--month", help="a calendar month, YYYY-MM")
    parser.add_argument("--tz", help="time zone of days and hours (default: AGENT_ANALYTICS_TZ)")
    parser.add_argument("--as-of", dest="as_of",
                        help="count up to this time: YYYY-MM-DD (the end of that day) or an ISO time (default: now)")


def _add_scope_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", action="append", dest="agents", metavar="ID", help="only this agent (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Analytics warehouse for AI agents.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ingest = sub.add_parser("ingest", help="load contract files (JSONL / JSONL.gz) into the warehouse")
    ingest.add_argument("paths", nargs="+", type=_path_arg, help="files or folders")

    build = sub.add_parser("build", help="materialize every asset (ingest landing files, dbt, checks, exports)")
    build.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")

    sub.add_parser("compact", help="merge the raw layer's batches of closed days into day files (docs/raw-layer.md)")

    export = sub.add_parser("export", help="export the daily CSV or the full JSON for a period")
    _add_period_arguments(export)
    _add_scope_argument(export)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("-o", "--output", type=_path_arg, help="file to write (default: stdout)")

    metrics = sub.add_parser("metrics", help="every metric of the analytics guide for a period, in the terminal")
    _add_period_arguments(metrics)
    _add_scope_argument(metrics)
    metrics.add_argument("--format", choices=("table", "json"), default="table")
    metrics.add_argument("--user", metavar="ID", help="one user's activity in the period instead (the id as given in the events)")

    compare = sub.add_parser("compare", help="A/B: two versions of one agent, metric by metric, with confidence "
                                             "intervals, p-values and verdicts")
    compare.add_argument("--agent", required=True, metavar="ID", help="the agent")
    compare.add_argument("--versions", required=True, nargs=2, metavar=("A", "B"),
                         help="the two versions (agent_version of the messages); differences are B minus A")
    _add_period_arguments(compare, default="7d")
    compare.add_argument("--format", choices=("table", "json"), default="table")

    deployments = sub.add_parser("deployments", help="each deployment: the agent's metrics the same time before and "
                                                     "after it, the change and its significance")
    deployments.add_argument("--agent", metavar="ID", help="only this agent's deployments (default: every agent)")
    deployments.add_argument("--window", metavar="LENGTH",
                             help="hours or days before and after, e.g. 12h or 7d (default: the build's, 7d)")
    _add_period_arguments(deployments, default="30d: the deployments of the last 30 days")
    deployments.add_argument("--format", choices=("table", "json"), default="table")

    report = sub.add_parser("report", help="write (and email) the reports of one frequency for a period")
    report.add_argument("--frequency", choices=("daily", "weekly", "monthly"), required=True)
    report.add_argument("--name", help="only the report definition with this name")
    report.add_argument("--period-end", dest="period_end", type=_date_arg,
                        help="a date inside the period, YYYY-MM-DD (default: the last period that has ended)")

    generate = sub.add_parser("generate", help="write deterministic synthetic events in the contract format")
    generate.add_argument("--events", type=_event_count, required=True, help="message events")
    generate.add_argument("--days", type=_positive_int, required=True)
    generate.add_argument("--seed", type=_seed, default=1)
    generate.add_argument("--end", type=_date_arg, help="last day (default: today, UTC)")
    generate.add_argument("-o", "--output", type=_path_arg, required=True, help="output folder")
    generate.add_argument("--unsorted", action="store_true",
                          help="DAYS files each holding events of every day in random order (default: one sorted file per day)")

    sub.add_parser("demo", help="generate a 30-day sample, build everything, print where the outputs are")
    sub.add_parser("dev", help="open the Dagster UI on this warehouse")
    add_alerts_parser(sub, _Parser)
    add_bills_parser(sub, _Parser)

    serve = sub.add_parser("serve", help="the HTTP service: OTLP traces and events in, metrics out (docs/service.md)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="default 8000")
    serve.add_argument("--ssl-certfile", type=_existing_file, help="TLS certificate (PEM): serve HTTPS")
    serve.add_argument("--ssl-keyfile", type=_existing_file, help="TLS private key (PEM), with --ssl-certfile")

    up = sub.add_parser("up", help="run in production: the Dagster daemon and UI and the HTTP service, supervised "
                                   "(docs/deployment.md)")
    up.add_argument("--host", default="127.0.0.1", help="address of the HTTP service (default 127.0.0.1)")
    up.add_argument("--port", type=_port, default=8000, help="port of the HTTP service (default 8000)")
    up.add_argument("--ssl-certfile", type=_existing_file, help="TLS certificate of the HTTP service (PEM)")
    up.add_argument("--ssl-keyfile", type=_existing_file, help="its private key (PEM), with --ssl-certfile")
    up.add_argument("--no-service", action="store_true", help="leave the HTTP service out")
    up.add_argument("--ui-host", default="127.0.0.1", help="address of the Dagster UI (default 127.0.0.1)")
    up.add_argument("--ui-port", type=_port, default=3000, help="port of the Dagster UI (default 3000)")
    up.add_argument("--read-only-ui", action="store_true",
                    help="the Dagster UI shows everything but cannot launch, terminate or switch anything")

    add_prices_parser(sub, _Parser)

    tokens = sub.add_parser("tokens", help="bearer tokens of the HTTP service: create, list, revoke")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, parser_class=_Parser)
    create = tokens_sub.add_parser("create", help="create a token and print it (shown only this once)")
    create.add_argument("--scope", choices=("ingest", "read"), required=True,
                        help="ingest: may send traces and events; read: may fetch metrics and exports")
    create.add_argument("--name", required=True, help="a name to list and revoke it by")
    tokens_sub.add_parser("list", help="name, scope and creation time of every token (never the token)")
    revoke = tokens_sub.add_parser("revoke", help="revoke a token: requests carrying it are refused from now on")
    revoke.add_argument("name")
    return parser


def _today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.company_tz)).date()


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.load import IngestError, ingest_paths
    from ingestion.validate import AcceptedTimes

    settings.ensure_dirs()
    try:
        results = ingest_paths(list(args.paths), settings.warehouse_path, settings.raw_dir,
                               accepted=AcceptedTimes.of(settings), orphan_after_s=settings.otel_orphan_after_s)
    except IngestError as exc:
        raise UsageError(str(exc)) from None
    # A record is a line of a native file, a span of an OpenTelemetry file.
    print(f"{'file':<40} {'records':>9} {'loaded':>9} {'duplicates':>10} {'quarantined':>11}  note")
    for r in results:
        notes = [f"spans of {r.traces} traces (OpenTelemetry)"] if r.record_type == "span" else []
        notes += ["already loaded (same content)"] if r.already_loaded else []
        print(f"{r.file_name:<40} {r.record_count:>9} {r.loaded:>9} {r.duplicates:>10} {r.quarantined:>11}  "
              f"{'; '.join(notes)}".rstrip())
    fresh = [r for r in results if not r.already_loaded]
    print(
        f"{'total (new files)':<40} {sum(r.record_count for r in fresh):>9} {sum(r.loaded for r in fresh):>9} "
        f"{sum(r.duplicates for r in fresh):>10} {sum(r.quarantined for r in fresh):>11}"
    )
    if any(r.quarantined for r in fresh):
        print(f"quarantined records: table ingest.quarantine in {settings.warehouse_path}")
    return 0


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.build import run_build

    return 0 if run_build(settings, full_refresh=args.full_refresh) else 1


def cmd_compact(args: argparse.Namespace, settings: Settings) -> int:
    from ingestion.compaction import closed_cutoff, compact

    settings.ensure_dirs()
    cutoff = closed_cutoff(datetime.now(timezone.utc))
    plans = compact(settings.warehouse_path, settings.raw_dir, cutoff)
    for plan in plans:
        days = f"days {plan.days[0]}..{plan.days[-1]}" if plan.days else "no rows"
        print(f"compacted {len(plan.batches)} batches into {len(plan.files)} day files ({days})")
    if not plans:
        print(f"nothing to compact: no batch loaded and closed before {cutoff:%Y-%m-%d %H:%M} UTC")
    return 0


def _metrics_document(args: argparse.Namespace, settings: Settings) -> dict:
    from agent_analytics.exports import ExportError, MetricsQuery, NoWarehouseError, metrics_document
    from agent_analytics.periods import PeriodError

    query = MetricsQuery(period=args.period, start=args.start, end=args.end, month=args.month, agents=args.agents,
                         tz=args.tz, as_of=args.as_of)
    try:
        return metrics_document(settings, query)
    except (PeriodError, ExportError, NoWarehouseError) as exc:
        raise UsageError(str(exc)) from None


def _write(text: str, output: Path | None) -> None:
    if output:
        from agent_analytics.files import write_atomically

        write_atomically(output, text)
    else:
        sys.stdout.write(text)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.exports import to_csv, to_json
    from agent_analytics.output_paths import OutputPathError, check_output_file

    try:
        if args.output:
            check_output_file(args.output)
        document = _metrics_document(args, settings)
        text = to_csv(document) if args.format == "csv" else to_json(document)
        if not args.output:
            _write(text, None)
            return 0
        try:
            _write(text, args.output)
        except OSError as exc:
            raise OutputPathError(f"-o {args.output}: cannot write it ({exc.strerror or exc})") from None
    except OutputPathError as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.exports import to_json
    from agent_analytics.metrics.render import render_table

    if args.user is not None:
        return _user_metrics(args, settings)
    document = _metrics_document(args, settings)
    _write(to_json(document) if args.format == "json" else render_table(document), None)
    return 0


def _user_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.exports import ExportError, MetricsQuery, NoWarehouseError, to_json
    from agent_analytics.periods import PeriodError
    from agent_analytics.user_report import UserNotFoundError, render_user, user_document

    query = MetricsQuery(period=args.period, start=args.start, end=args.end, month=args.month, agents=args.agents,
                         tz=args.tz, as_of=args.as_of)
    try:
        document = user_document(settings, query, args.user)
    except (PeriodError, ExportError, NoWarehouseError, UserNotFoundError) as exc:
        raise UsageError(str(exc)) from None
    _write(to_json(document) if args.format == "json" else render_user(document), None)
    return 0


def _tested_document(args: argparse.Namespace, make, render) -> int:
    """Print the document `make()` answers (compare, deployments) as JSON or as `render` draws it."""
    from agent_analytics.exports import ExportError, NoWarehouseError, to_json
    from agent_analytics.periods import PeriodError

    try:
        document = make()
    except (PeriodError, ExportError, NoWarehouseError) as exc:
        raise UsageError(str(exc)) from None
    _write(to_json(document) if args.format == "json" else render(document), None)
    return 0


def _period_options(args: argparse.Namespace) -> dict:
    return {"period": args.period, "start": args.start, "end": args.end, "month": args.month, "tz": args.tz,
            "as_of": args.as_of}


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.comparison import CompareQuery, compare_document
    from agent_analytics.comparison.render import render_comparison

    query = CompareQuery(agent=args.agent, versions=tuple(args.versions), **_period_options(args))
    return _tested_document(args, lambda: compare_document(settings, query), render_comparison)


def cmd_deployments(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.deployments.command import DeploymentsQuery, deployments_document
    from agent_analytics.deployments.render import render_deployments

    query = DeploymentsQuery(agent=args.agent, window=args.window, **_period_options(args))
    return _tested_document(args, lambda: deployments_document(settings, query), render_deployments)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics import mail
    from agent_analytics.exports import ExportError
    from agent_analytics.periods import PeriodError
    from agent_analytics.reports.definitions import (
        ReportConfigError,
        definitions_path,
        load_definitions,
    )
    from agent_analytics.reports.produce import email_report, write_report

    try:
        path = definitions_path(settings)
        chosen = [d for d in load_definitions(path) if d.frequency == args.frequency]
        smtp = mail.smtp_settings()
    except (ReportConfigError, mail.MailError) as exc:
        raise UsageError(str(exc)) from None
    if args.name is not None:
        names = [d.name for d in chosen]
        chosen = [d for d in chosen if d.name == args.name]
        if not chosen:
            raise UsageError(f"no {args.frequency} report named {args.name!r} in {path} ({', '.join(names) or 'none defined'})")
    if not chosen:
        raise UsageError(f"no {args.frequency} report is defined in {path}")
    if not settings.warehouse_path.exists():
        raise UsageError(f"no warehouse at {settings.warehouse_path}: run '{PROG} build' first")
    failed = 0
    for definition in chosen:
        try:
            report = write_report(settings, definition, args.period_end)
        except (ExportError, PeriodError) as exc:
            raise UsageError(f"report {definition.name!r}: {exc}") from None
        except OSError as exc:  # its folder under reports/ is a file, or not writable
            where = f" {exc.filename}" if exc.filename else ""
            reason = "a file is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror or exc
            raise UsageError(f"report {definition.name!r}: cannot write{where}: {reason}") from None
        for file in report.files:
            print(f"{definition.name} {report.label}: wrote {file}")
        try:
            print(f"{definition.name} {report.label}: {email_report(report, smtp)}")
        except mail.MailError as exc:
            failed += 1
            print(f"{PROG}: error: {definition.name} {report.label}: not emailed: {exc} (the files are written)", file=sys.stderr)
    return 1 if failed else 0


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.output_paths import OutputPathError, prepare_output_folder
    from agent_analytics.periods import FIRST_DATE
    from agent_analytics.synthetic_events import generate

    end = args.end or datetime.now(timezone.utc).date()
    if args.days > (end - FIRST_DATE).days + 1:
        raise UsageError(f"--days {args.days} ending {end} would start before {FIRST_DATE}, the first supported date")
    try:
        prepare_output_folder(args.output)
    except OutputPathError as exc:
        raise UsageError(str(exc)) from None
    result = generate(args.output, args.events, args.days, args.seed, end=end, unsorted=args.unsorted)
    print(
        f"wrote {len(result.files)} files to {args.output}: {result.message_events} messages, "
        f"{result.other_events} other events, {result.malformed_lines} malformed, "
        f"{result.duplicate_lines} duplicate and {result.late_lines} late lines"
    )
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.synthetic_events import generate
    from orchestration.build import run_build

    settings.ensure_dirs()
    sample = generate(settings.landing_dir, DEMO_EVENTS, DEMO_DAYS, DEMO_SEED, end=_today(settings))
    print(f"generated {sample.message_events} messages over {DEMO_DAYS} days into {settings.landing_dir}")
    ok = run_build(settings)
    from agent_analytics.serving import serving_database, serving_dir

    print()
    print(f"warehouse (DuckDB):   {settings.warehouse_path}")
    print(f"raw layer (Parquet):  {settings.raw_dir}")
    print(f"for BI tools:         {serving_database(settings)} and {serving_dir(settings) / 'parquet'}/")
    print(f"daily CSV export:     {settings.exports_dir / 'daily.csv'}")
    print(f"full JSON export:     {settings.exports_dir / 'analytics.json'}")
    print(f"dashboard:            {settings.reports_dir / 'dashboard' / 'index.html'}")
    reports = sorted(p for p in settings.reports_dir.glob("*/*") if p.suffix in (".pdf", ".csv"))
    for i, report in enumerate(reports):
        print(f"{'reports (PDF, CSV):' if i == 0 else '':<22}{report}")
    print(f"loaded sample files:  {settings.landing_dir / 'loaded'}")
    print("quarantined lines:    table ingest.quarantine in the warehouse")
    print(f"Dagster UI:           make dev   (DAGSTER_HOME={settings.dagster_home})")
    return 0 if ok else 1


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.defs.dbt.project import dbt_on_path
    from orchestration.instance import ensure_dagster_home

    ensure_dagster_home(settings)
    dagster = Path(sys.executable).with_name("dagster")
    argv = [str(dagster), "dev", "-m", "orchestration.definitions"]
    # Under `dagster dev` the dbt manifest is prepared as the definitions load (prepare_if_dev).
    os.execve(argv[0], argv, dbt_on_path({**os.environ, **settings.env()}))
    return 0  # not reached


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.alerts.commands import AlertsCommandError, run_alerts

    try:
        return run_alerts(args, settings)
    except AlertsCommandError as exc:
        raise UsageError(str(exc)) from None


def cmd_bills(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics_cli.bills import BillsCommandError, run_bills

    try:
        return run_bills(args, settings)
    except BillsCommandError as exc:
        raise UsageError(str(exc)) from None


def cmd_prices(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.prices_check import PricesCommandError, run_prices

    try:
        return run_prices(args, settings)
    except PricesCommandError as exc:
        raise UsageError(str(exc)) from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import logging

    import uvicorn

    from agent_analytics.tokens import TokenError, load_tokens, tokens_path
    from service.app import create_app

    if args.ssl_keyfile and not args.ssl_certfile:
        raise UsageError("--ssl-keyfile needs --ssl-certfile")
    try:
        tokens = load_tokens(tokens_path(settings.home))
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    if not tokens:
        print(f"{PROG}: warning: no tokens exist yet, so every request but /healthz and /readyz gets 401 "
              f"(create one with '{PROG} tokens create --scope ingest|read --name NAME')", file=sys.stderr)
        if args.host in ("127.0.0.1", "::1", "localhost"):
            print(f"{PROG}: the dashboard at http://{args.host}:{args.port}/ is open to this machine until a token "
                  "exists", file=sys.stderr)
    settings.ensure_dirs()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # No access log: every error is logged once by the service itself, and successes need no line each.
    uvicorn.run(create_app(settings, listen_host=args.host), host=args.host, port=args.port, access_log=False,
                ssl_certfile=str(args.ssl_certfile) if args.ssl_certfile else None,
                ssl_keyfile=str(args.ssl_keyfile) if args.ssl_keyfile else None)
    return 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.up import UpError, UpOptions, run_up

    if args.ssl_keyfile and not args.ssl_certfile:
        raise UsageError("--ssl-keyfile needs --ssl-certfile")
    if not args.no_service and args.port == args.ui_port and args.port != 0:
        raise UsageError(f"--port and --ui-port are both {args.port}")
    options = UpOptions(service=not args.no_service, host=args.host, port=args.port, ssl_certfile=args.ssl_certfile,
                        ssl_keyfile=args.ssl_keyfile, ui_host=args.ui_host, ui_port=args.ui_port,
                        read_only_ui=args.read_only_ui)
    try:
        return run_up(settings, options)
    except UpError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:  # Ctrl-C before the children started (afterwards `up` handles it)
        return 130


def cmd_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.tokens import TokenError, create_token, load_tokens, revoke_token, tokens_path

    path = tokens_path(settings.home)
    try:
        if args.tokens_command == "create":
            token = create_token(path, args.name, args.scope)
            print(token)
            print(f"token {args.name!r} (scope {args.scope}) created; it is shown only this once, store it now", file=sys.stderr)
        elif args.tokens_command == "revoke":
            revoked = revoke_token(path, args.name)
            print(f"token {revoked.name!r} (scope {revoked.scope}) revoked")
        else:
            tokens = load_tokens(path)
            if not tokens:
                print(f"no tokens (create one with '{PROG} tokens create --scope ingest|read --name NAME')")
            else:
                width = max(len("name"), *(len(t.name) for t in tokens))
                print(f"{'name':<{width}}  {'scope':<6}  created")
                for t in tokens:
                    print(f"{t.name:<{width}}  {t.scope:<6}  {t.created}")
    except TokenError as exc:
        raise UsageError(str(exc)) from None
    return 0


COMMANDS = {
    "ingest": cmd_ingest,
    "build": cmd_build,
    "compact": cmd_compact,
    "export": cmd_export,
    "metrics": cmd_metrics,
    "compare": cmd_compare,
    "deployments": cmd_deployments,
    "report": cmd_report,
    "generate": cmd_generate,
    "demo": cmd_demo,
    "dev": cmd_dev,
    "alerts": cmd_alerts,
    "bills": cmd_bills,
    "prices": cmd_prices,
    "serve": cmd_serve,
    "tokens": cmd_tokens,
    "up": cmd_up,
}


def _stop_on_sigterm() -> None:
    """A parent that ignores SIGTERM (some launchers of background jobs do) passes that on to
    its children; a build, `up` or `serve` started that way would then survive `kill`."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    _stop_on_sigterm()
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        return COMMANDS[args.command](args, settings)
    except (UsageError, SettingsError, WarehouseOpenError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except duckdb.OutOfMemoryException:
        # a command's own DuckDB query (ingest, an export, alerts): its open transaction is rolled
        # back, and a run with more memory carries on where this one stopped
        print(f"{PROG}: error: {out_of_memory_outside_dbt(settings.duckdb_memory)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
