"""`agent-analytics bills import FILE | show`: import a provider's bill, show it against the estimate."""

from __future__ import annotations

import argparse
import json

from agent_analytics.settings import Settings


class BillsCommandError(Exception):
    """A user mistake; printed as one line."""


def add_bills_parser(sub, parser_class) -> None:
    bills = sub.add_parser("bills", help="provider bills: import an invoice or cost export, show it against the estimate")
    commands = bills.add_subparsers(dest="bills_command", required=True, parser_class=parser_class)
    imported = commands.add_parser("import", help="import a bill CSV (provider, month, amount_usd[, model, project]; "
                                   "docs/bills.md)")
    imported.add_argument("file", help="the CSV file")
    show = commands.add_parser("show", help="estimate vs bill per provider and month (and model), as of the last build")
    show.add_argument("--format", choices=("table", "json"), default="table")
    show.add_argument("--month", help="only this month, YYYY-MM")


def run_bills(args: argparse.Namespace, settings: Settings) -> int:
    return _import(args, settings) if args.bills_command == "import" else _show(args, settings)


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from ingestion.bills import import_bill_file, quarantine_reasons
    from ingestion.load import IngestError

    if not args.file.strip():
        raise BillsCommandError("bills import: an empty file name")
    settings.ensure_dirs()
    try:
        result = import_bill_file(Path(args.file), settings.warehouse_path, settings.raw_dir)
    except IngestError as exc:
        raise BillsCommandError(str(exc)) from None
    note = "  (already imported: same content, nothing changed)" if result.already_loaded else ""
    print(f"{result.file_name}: rows read {result.lines}, stored {result.loaded}, quarantined {result.quarantined}{note}")
    for reason, count in quarantine_reasons(settings.warehouse_path, result.batch_id) if result.quarantined else []:
        print(f"  quarantined {count}: {reason}")
    if result.quarantined:
        print(f"quarantined rows: table ingest.quarantine (batch {result.batch_id}) in {settings.warehouse_path}")
    if not result.already_loaded:
        print("run 'agent-analytics build' to reconcile it with the estimate ('agent-analytics bills show')")
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    from agent_analytics.bills import BillsError, bills_section, parse_month, read_bill_lines, render_bills_table
    from agent_analytics.exports import NoWarehouseError, open_marts

    try:
        month = parse_month(args.month) if args.month is not None else None
        with open_marts(settings) as con:
            section = bills_section(read_bill_lines(con, month, month))
    except (BillsError, NoWarehouseError) as exc:
        raise BillsCommandError(str(exc)) from None
    if args.format == "json":
        print(json.dumps({"threshold_pct": settings.bill_mismatch_pct, "bills": section}, indent=2))
    else:
        print(render_bills_table(section, settings.bill_mismatch_pct), end="")
    return 0
