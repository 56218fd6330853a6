"""A comparison as a user asks for it (command options, API fields): the checks of the agent,
the two versions and the period, and the samples read from the marts. The command line and
the HTTP service both call `read_comparison`, so they answer the same document."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agent_analytics.comparison.document import comparison_document
from agent_analytics.comparison.samples import VersionSample, read_samples, versions_with_messages
from agent_analytics.exports import ExportError, check_agents, open_marts
from agent_analytics.metrics.labels import agent_label
from agent_analytics.periods import Period, PeriodQuery
from agent_analytics.settings import Settings

DEFAULT_PERIOD = "7d"


class ComparisonError(ExportError):
    """Versions we cannot compare (the same one twice, one without messages); one line."""


@dataclass(frozen=True, kw_only=True)
class CompareQuery(PeriodQuery):
    """One agent, versions A and B, and at most one of `period`, `start`/`end`, `month` (none:
    the last 7 days)."""

    agent: str
    versions: tuple[str, str]


@dataclass(frozen=True)
class Comparison:
    """What the marts hold about the two versions. Read under the warehouse lock (or from the
    serving copy); the statistics run afterwards (`document`), without holding anything."""

    agent: dict
    versions: tuple[str, str]
    period: Period
    as_of: datetime
    a: VersionSample
    b: VersionSample
    users_in_both: int

    def document(self) -> dict:
        return comparison_document(agent=self.agent, versions=self.versions, period=self.period, as_of=self.as_of,
                                   a=self.a, b=self.b, users_in_both=self.users_in_both)


def read_comparison(settings: Settings, query: CompareQuery, *, lock_timeout_s: float = 3600.0) -> Comparison:
    """PeriodError for a bad period or time zone; ExportError for an unknown agent,
    ComparisonError for versions that cannot be compared; NoWarehouseError before the first
    build; TimeoutError when a build held the warehouse for `lock_timeout_s`."""
    first, second = query.versions
    if first == second:
        raise ComparisonError(f"--versions {first} {second}: give two different versions")
    period, as_of = query.resolve(settings.company_tz, DEFAULT_PERIOD)
    with open_marts(settings, lock_timeout_s=lock_timeout_s) as con:
        (agent,) = check_agents(con, [query.agent])
        present = versions_with_messages(con, agent, period)
        for version in (first, second):
            if version not in present:
                listing = ", ".join(f"{v} ({n})" for v, n in present.items()) or "none"
                raise ComparisonError(f"agent {agent!r} has no messages of version {version!r} in {period.label} "
                                      f"({period.start_date}..{period.end_date}); versions with messages: {listing}")
        a, b, users_in_both = read_samples(con, agent, (first, second), period)
        name = con.execute("select agent_name from dim_agents where agent_id = $a", {"a": agent}).fetchone()[0]
    return Comparison({"agent_id": agent, "agent_name": name, "label": agent_label(name, agent)}, (first, second),
                      period, as_of, a, b, users_in_both)


def compare_document(settings: Settings, query: CompareQuery, *, lock_timeout_s: float = 3600.0) -> dict:
    """The comparison document of `query` (schema agent_analytics/schema/ab_comparison.schema.json)."""
    return read_comparison(settings, query, lock_timeout_s=lock_timeout_s).document()
