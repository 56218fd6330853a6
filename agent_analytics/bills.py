"""Provider bills against the estimate: the rows of the mart `fct_bill_reconciliation`, as
`agent-analytics bills show` prints them, the metrics document's `bills` section and the
reports' "Provider bills" section read them (docs/bills.md).

The mart holds one row per billed provider and month (model null) and one per model line of
such a bill; it is small (a few rows a month), so it is read whole or by month.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import duckdb

MART = "fct_bill_reconciliation"
MONTH_PATTERN = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
COLUMNS = ("provider", "bill_month", "model", "estimate_usd", "bill_usd", "diff_usd", "diff_pct", "is_flagged",
           "unpriced_calls", "unpriced_tokens")


class BillsError(ValueError):
    """A bad argument (a month not in YYYY-MM form); the message is one line."""


def parse_month(text: str) -> date:
    """The first day of a YYYY-MM month."""
    if not MONTH_PATTERN.fullmatch(text or ""):
        raise BillsError(f"--month {text!r} is not a month in YYYY-MM form")
    return date(int(text[:4]), int(text[5:]), 1)


def has_bills_mart(con: duckdb.DuckDBPyConnection) -> bool:
    """The marts hold the reconciliation (a warehouse built before bills existed does not)."""
    # Tables and views of the current schema, or temporary ones (the views over a Spark build's
    # tables in the warehouse connection, agent_analytics/spark_marts.py). No failing probe query:
    # the alerts read this inside a transaction, which a failed statement would abort.
    return con.execute(
        """select count(*) from (
               select table_name as name, database_name, schema_name, temporary from duckdb_tables()
               union all
               select view_name, database_name, schema_name, temporary from duckdb_views())
           where name = ? and (temporary or (database_name = current_database() and schema_name = current_schema()))""",
        [MART]).fetchone()[0] > 0


def read_bill_lines(con: duckdb.DuckDBPyConnection, first_month: date | None = None,
                    last_month: date | None = None) -> list[dict]:
    """The reconciliation rows of months `first_month`..`last_month` (first days; None: open),
    by month, provider, then the whole bill before its model lines; money as Decimal."""
    if not has_bills_mart(con):
        return []
    rows = con.execute(
        f"""select {", ".join(COLUMNS)} from {MART}
            where bill_month >= coalesce(?::date, bill_month) and bill_month <= coalesce(?::date, bill_month)
            order by bill_month, provider, model nulls first""", [first_month, last_month]).fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def period_bills(con: duckdb.DuckDBPyConnection, period, agents: list[str] | None) -> list[dict]:
    """The metrics document's `bills`: the reconciliation of every month the period touches.
    A bill is the provider's, for every agent: an agent-scoped document has none."""
    if agents is not None:
        return []
    first = period.start_date.replace(day=1)
    return bills_section(read_bill_lines(con, first, period.end_date))


def _money(value: Decimal) -> float:
    return float(round(value, 6))


def bills_section(lines: list[dict]) -> list[dict]:
    """The rows as JSON values: month as YYYY-MM, money in dollars (6 decimals)."""
    return [{
        "provider": line["provider"],
        "month": line["bill_month"].strftime("%Y-%m"),
        "model": line["model"],
        "estimate_usd": _money(line["estimate_usd"]),
        "bill_usd": _money(line["bill_usd"]),
        "diff_usd": _money(line["diff_usd"]),
        "diff_pct": line["diff_pct"],
        "flagged": line["is_flagged"],
        "unpriced_calls": line["unpriced_calls"],
        "unpriced_tokens": line["unpriced_tokens"],
    } for line in lines]


BILL_HEADERS = ["Month", "Provider", "Model", "Estimate $", "Bill $", "Diff $", "Diff %", "Unpriced calls", "Status"]


def bill_cells(line: dict) -> list[str]:
    """One row of `bills_section` as the cells of BILL_HEADERS (terminal, dashboard, PDF, email)."""
    return [line["month"], line["provider"], line["model"] or "(all)", f"{line['estimate_usd']:,.2f}",
            f"{line['bill_usd']:,.2f}", f"{line['diff_usd']:+,.2f}", f"{line['diff_pct']:+.1f}",
            f"{line['unpriced_calls']:,}", "MISMATCH" if line["flagged"] else "ok"]


def render_bills_table(section: list[dict], threshold_pct: float) -> str:
    """The rows of `bills_section` as a text table, flagged lines marked."""
    if not section:
        return ("no provider bills: import one with 'agent-analytics bills import FILE', "
                "then run 'agent-analytics build'\n")
    rows = [BILL_HEADERS, *(bill_cells(line) for line in section)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(BILL_HEADERS))]
    text_columns = (0, 1, 2, 8)
    out = ["  ".join(v.ljust(w) if i in text_columns else v.rjust(w)
                     for i, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in rows]
    flagged = sum(1 for line in section if line["flagged"])
    out.append(f"{flagged} of {len(section)} lines differ from the estimate by more than {threshold_pct:g}% "
               "(AGENT_ANALYTICS_BILL_MISMATCH_PCT); unpriced calls have no estimate")
    return "\n".join(out) + "\n"


def bills_summary_lines(doc: dict) -> list[str]:
    """The email's lines on the document's whole bills (model lines are in the PDF)."""
    return [f"- {line['provider']} {line['month']}: bill ${line['bill_usd']:,.2f}, estimate ${line['estimate_usd']:,.2f} "
            f"({line['diff_pct']:+.1f}%){', MISMATCH' if line['flagged'] else ''}"
            f"{'; unpriced calls: ' + format(line['unpriced_calls'], ',') if line['unpriced_calls'] else ''}"
            for line in doc.get("bills", []) if line["model"] is None]
