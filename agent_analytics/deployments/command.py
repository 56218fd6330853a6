"""`agent-analytics deployments`: the period's deployments, each with every metric of the A/B
comparison for the agent's messages in the window before against the window after, with the
comparison's tests (the error rate's z-test, Mann-Whitney U and bootstrap intervals for the
rest: agent_analytics/comparison/statistics.py) and verdicts. It reads every message of the
windows, which the metrics document does not (section.py): that is why the full tests run only
when asked for here."""

from __future__ import annotations

from dataclasses import dataclass

from agent_analytics.comparison.document import TEST_SETTINGS, compare_samples, stamp, warnings
from agent_analytics.comparison.samples import read_window_samples
from agent_analytics.deployments.windows import find_deployments, iso_utc, mart_window_hours, parse_window
from agent_analytics.exports import check_agents, open_marts
from agent_analytics.periods import PeriodQuery
from agent_analytics.settings import Settings

SCHEMA_VERSION = "1.0"
DEFAULT_PERIOD = "30d"  # the deployments of the last 30 days, as `metrics` shows by default
SIDES = ("before", "after")


@dataclass(frozen=True, kw_only=True)
class DeploymentsQuery(PeriodQuery):
    """An agent (None: every agent), a window (`12h`, `7d`; None: the mart's) and at most one
    of `period`, `start`/`end`, `month` (none: the last 30 days)."""

    agent: str | None = None
    window: str | None = None


def deployments_document(settings: Settings, query: DeploymentsQuery, *, lock_timeout_s: float = 3600.0) -> dict:
    """The command's document. WindowError (an ExportError) for a bad window, PeriodError for a
    bad period or time zone, ExportError for an unknown agent, NoWarehouseError before the
    first build."""
    hours = None if query.window is None else parse_window(query.window)
    period, as_of = query.resolve(settings.company_tz, DEFAULT_PERIOD)
    with open_marts(settings, lock_timeout_s=lock_timeout_s) as con:
        agents = check_agents(con, None if query.agent is None else [query.agent])
        found = find_deployments(con, period.start, period.end, as_of, agents, hours)
        samples = [read_window_samples(con, d.agent_id, d.before, d.after) for d in found]
        window = hours if hours is not None else mart_window_hours(con)
    items = []
    for d, (before, after, users_in_both) in zip(found, samples, strict=True):
        items.append({
            **d.describe(),
            "before": {"start": iso_utc(d.before[0]), "end": iso_utc(d.before[1])},
            "after": {"start": iso_utc(d.after[0]), "end": iso_utc(d.after[1])},
            "users_in_both": users_in_both,
            "metrics": compare_samples(before, after),
            "warnings": warnings(SIDES, before, after, users_in_both, kind="window"),
        })
    return {
        "schema_version": SCHEMA_VERSION,
        **stamp(period, as_of),
        "scope": {"agents": agents},
        "window_hours": window,
        **TEST_SETTINGS,
        "deployments": items,
    }

