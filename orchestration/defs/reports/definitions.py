"""The dashboard (rewritten by every build and refresh) and the scheduled reports.

- `dashboard`: reports/dashboard/*.html from the metrics layer, after the marts.
- `daily_reports`, `weekly_reports`, `monthly_reports`: every report definition of that
  frequency (reports.toml, read at run time) for the period just ended. `build_all`
  materializes them without email, so `make demo` shows them; the per-frequency schedules
  run them with `send_email`. Files are written first; a mail server that is down or
  refuses then fails the step with its answer, and Dagster retries it (RetryPolicy).
"""

from collections.abc import Sequence
from datetime import date

import dagster as dg

from agent_analytics import mail
from agent_analytics.periods import FREQUENCIES, PeriodError, default_period_end
from agent_analytics.reports.definitions import ReportConfigError, definitions_path, load_definitions
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings

DASHBOARD_GROUP = "dashboard"
REPORTS_GROUP = "reports"  # the scheduled reports only: the refresh leaves this group out
CRONS = {"daily": "0 6 * * *", "weekly": "0 6 * * 1", "monthly": "0 6 1 * *"}
RETRY = dg.RetryPolicy(max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL)


def dashboard_asset(marts: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(group_name=DASHBOARD_GROUP, deps=marts, pool=WAREHOUSE_POOL, kinds={"html"})
    def dashboard(analytics: AnalyticsSettings) -> dg.MaterializeResult:
        """reports/dashboard/: one self-contained HTML page per period and an index."""
        # imported here: matplotlib loads only when the dashboard is made, not with the definitions
        from agent_analytics.reports.produce import write_dashboard

        index = write_dashboard(analytics.load())
        return dg.MaterializeResult(metadata={"index": dg.MetadataValue.path(str(index))})

    return dashboard


class ReportConfig(dg.Config):
    period_end: str = ""  # YYYY-MM-DD inside the period; empty: the last period that has ended
    send_email: bool = False


def report_asset_name(frequency: str) -> str:
    return f"{frequency}_reports"


def report_asset(frequency: str, *, deps: Sequence[dg.AssetKey] = ()) -> dg.AssetsDefinition:
    """The reports of one frequency, after the assets of `deps` (the marts)."""

    @dg.asset(
        name=report_asset_name(frequency), group_name=REPORTS_GROUP, deps=deps, pool=WAREHOUSE_POOL,
        kinds={"pdf", "csv"}, retry_policy=RETRY,
        description=f"Every {frequency} report definition: reports/<name>/<period-label>.pdf|.csv, emailed when scheduled.",
    )
    def _reports(context: dg.AssetExecutionContext, config: ReportConfig, analytics: AnalyticsSettings) -> dg.MaterializeResult:
        # imported here: matplotlib and reportlab load only when reports are made, not with the definitions
        from agent_analytics.reports.produce import email_report, write_report

        settings = analytics.load()
        period_end = date.fromisoformat(config.period_end) if config.period_end else None
        try:
            definitions = [d for d in load_definitions(definitions_path(settings)) if d.frequency == frequency]
        except ReportConfigError as error:  # a broken settings file: retrying cannot help
            raise dg.Failure(description=str(error), allow_retries=False) from None
        try:
            written = [write_report(settings, d, period_end) for d in definitions]
        except PeriodError as error:  # a period_end in the future: retrying cannot help
            raise dg.Failure(description=str(error), allow_retries=False) from None
        for report in written:
            context.log.info(f"report {report.definition.name} {report.label}: {', '.join(str(f) for f in report.files)}")
        outcomes = []
        if config.send_email:
            smtp = mail.smtp_settings()
            failures = []
            for report in written:
                try:
                    outcome = email_report(report, smtp)
                except mail.MailError as error:
                    outcome = f"NOT emailed: {error}"
                    failures.append(f"{report.definition.name}: {error}")
                context.log.info(f"report {report.definition.name} {report.label}: {outcome}")
                outcomes.append(f"{report.definition.name}: {outcome}")
            if failures:
                raise dg.Failure(
                    description=f"{len(failures)} report email(s) failed; the files are written. " + "; ".join(failures),
                )
        return dg.MaterializeResult(
            metadata={
                "reports": len(written),
                "files": "\n".join(str(f) for r in written for f in r.files) or "no definitions of this frequency",
                "periods": ", ".join(sorted({r.label for r in written})),
                "email": "\n".join(outcomes) or "not requested (build run)",
            }
        )

    return _reports


def _report_schedule(frequency: str, job: dg.JobDefinition, tz: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{frequency}_reports_schedule", job=job, cron_schedule=CRONS[frequency], execution_timezone=tz,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Writes and emails the {frequency} reports for the period that just ended.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        today = context.scheduled_execution_time.date()
        period_end = default_period_end(frequency, today)
        return dg.RunRequest(
            run_key=f"{frequency}-{period_end.isoformat()}",  # one run per period
            run_config={"ops": {report_asset_name(frequency): {
                "config": {"period_end": period_end.isoformat(), "send_email": True}}}},
        )

    return _schedule


def build_defs(tz: str, marts: Sequence[dg.AssetKey]) -> dg.Definitions:
    """The dashboard and the scheduled reports, after every mart of `marts`; the schedules in
    the company time zone `tz`."""
    report_assets = [report_asset(f, deps=marts) for f in FREQUENCIES]
    jobs = [
        dg.define_asset_job(f"{f}_reports_job", selection=[report_asset_name(f)], description=f"The {f} reports, emailed.")
        for f in FREQUENCIES
    ]
    schedules = [_report_schedule(f, job, tz) for f, job in zip(FREQUENCIES, jobs, strict=True)]
    return dg.Definitions(assets=[dashboard_asset(marts), *report_assets], jobs=jobs, schedules=schedules)

