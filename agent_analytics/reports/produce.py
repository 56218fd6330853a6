"""Write the dashboard and the scheduled reports from the metrics layer; email the reports.

Files are written atomically at stable paths:
  reports/dashboard/index.html, day.html, week.html, month.html, current-month.html, previous-month.html
  reports/<name>/<period-label>.pdf and .csv   (e.g. reports/weekly/2026-W47.pdf)
A report's files are written before any email is attempted, so a mail failure never loses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb

from agent_analytics import mail
from agent_analytics.exports import check_agents, to_csv
from agent_analytics.files import write_atomically
from agent_analytics.metrics import MetricsRequest, compute_metrics
from agent_analytics.periods import Period, dashboard_pages, default_period_end, local_date, report_period
from agent_analytics.reports.dashboard import render_index, render_page
from agent_analytics.reports.definitions import ReportDefinition
from agent_analytics.reports.pdf import render_pdf
from agent_analytics.reports.summary import summary_text
from agent_analytics.settings import Settings
from agent_analytics.spark_marts import open_built_marts

DASHBOARD_DIR = "dashboard"


@dataclass(frozen=True)
class ReportFiles:
    definition: ReportDefinition
    label: str
    period: Period
    files: tuple[Path, ...]
    subject: str
    body: str
    document: dict


def _document(con: duckdb.DuckDBPyConnection, period: Period, agents, as_of: datetime, settings: Settings) -> dict:
    return compute_metrics(con, MetricsRequest(period=period, agents=agents, as_of=as_of), settings)


def write_dashboard(settings: Settings, now: datetime | None = None) -> Path:
    """Every dashboard page and the index; returns the index path."""
    now = now or datetime.now(timezone.utc)
    pages = dashboard_pages(now, settings.company_tz)
    with open_built_marts(settings) as con:
        docs = {p.slug: _document(con, p.period, None, now, settings) for p in pages}
    folder = settings.reports_dir / DASHBOARD_DIR
    for page in pages:
        write_atomically(folder / f"{page.slug}.html", render_page(page, docs[page.slug], pages))
    return write_atomically(folder / "index.html", render_index(pages, docs))


def write_report(
    settings: Settings, definition: ReportDefinition, period_end: date | None = None, now: datetime | None = None
) -> ReportFiles:
    """The files of one report for the period containing `period_end` (default: the last ended)."""
    now = now or datetime.now(timezone.utc)
    tz = settings.company_tz
    if period_end is None:
        period_end = default_period_end(definition.frequency, local_date(now, tz))
    label, period = report_period(definition.frequency, period_end, tz, as_of=now)
    with open_built_marts(settings) as con:
        agents = check_agents(con, list(definition.agents) if definition.agents else None)
        doc = _document(con, period, agents, period.end, settings)
        previous_doc = _document(con, period.previous(), agents, period.start, settings)
    partial = " (to date)" if period.partial else ""
    title = f"{definition.title}: {period.start_date:%b %d} - {period.end_date:%b %d, %Y}{partial}"
    folder = settings.reports_dir / definition.name
    files = []
    if "pdf" in definition.formats:
        files.append(write_atomically(folder / f"{label}.pdf", render_pdf(title, doc, previous_doc)))
    if "csv" in definition.formats:
        files.append(write_atomically(folder / f"{label}.csv", to_csv(doc)))
    body = summary_text(title, doc, previous_doc) + "\n" + "".join(f"[attached: {f.name}]\n" for f in files)
    return ReportFiles(definition, label, period, tuple(files), title, body, doc)


def email_report(report: ReportFiles, smtp: mail.SmtpSettings | None, attempts: int = 3) -> str:
    """Send the report to its recipients; returns what happened as one line.

    Raises MailError (after `attempts` tries with backoff) when the server is down or refuses.
    """
    recipients = report.definition.recipients
    if smtp is None:
        return f"not emailed: SMTP is not configured (set {mail.HOST_VAR} and friends); files are on disk"
    if not recipients:
        return "not emailed: the report has no recipients"
    message = mail.build_message(smtp.sender, recipients, report.subject, report.body, report.files)
    attempt = mail.send_with_retries(smtp, message, attempts=attempts)
    return f"emailed to {', '.join(recipients)} via {smtp.where} (attempt {attempt})"
