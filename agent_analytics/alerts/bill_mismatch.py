"""The alert kind "bill mismatch" (metric `bill_mismatch`): one episode per provider and month
whose whole bill is flagged in `fct_bill_reconciliation` (it differs from the estimate by more
than AGENT_ANALYTICS_BILL_MISMATCH_PCT percent of it; docs/bills.md).

Not a streak of steps like the other rules: a provider-month is flagged or not, as of the last
build. An episode opens (alert.triggered) the first time a provider-month is seen flagged and
resolves (alert.resolved) when a corrected bill or late calls make it unflagged. Its id comes
from rule, provider-month and the month's first day, so it fires once per provider-month
whatever the number of runs.
"""

from __future__ import annotations

from datetime import datetime

from agent_analytics.alerts.evaluate import Transition, _queue, _record, naive_utc
from agent_analytics.alerts.events import episode_id
from agent_analytics.alerts.rules import Rule
from agent_analytics.bills import has_bills_mart

METRIC = "bill_mismatch"


def _scope(provider: str, month) -> str:
    return f"{provider} {month:%Y-%m}"


def evaluate_bill_rule(con, rule: Rule, now: datetime, result) -> None:
    """Queue alert.triggered for each newly flagged provider-month, alert.resolved for each
    firing one that is no longer flagged."""
    if not has_bills_mart(con):
        return
    flagged = {
        _scope(provider, month): (datetime(month.year, month.month, 1), row)
        for provider, month, *row in con.execute(
            """select provider, bill_month, diff_pct, estimate_usd, bill_usd, diff_usd, unpriced_calls
               from fct_bill_reconciliation where model is null and is_flagged""").fetchall()
    }
    firing = dict(con.execute("select scope, episode_id from alerts.episodes where rule_name = ? and status = 'firing'",
                              [rule.name]).fetchall())
    fired = {r[0] for r in con.execute("select scope from alerts.episodes where rule_name = ?", [rule.name]).fetchall()}
    at = naive_utc(now)
    transitions = []
    for scope, (started, (pct, estimate, bill, diff, unpriced)) in sorted(flagged.items()):
        if scope not in fired:
            transition = Transition("triggered", episode_id(rule.name, scope, started), started, at, pct)
            details = {"estimate_usd": float(estimate), "bill_usd": float(bill), "diff_usd": float(diff),
                       "unpriced_calls": unpriced}
            transitions.append((scope, transition, details))
    for scope, episode in sorted(firing.items()):
        if scope not in flagged:
            started = datetime.strptime(scope.rsplit(" ", 1)[1], "%Y-%m")
            transitions.append((scope, Transition("resolved", episode, started, at, None), {}))
    for scope, transition, details in transitions:
        event = _record(con, rule, scope, transition, now)
        event["data"]["bill"] = {"provider": scope.rsplit(" ", 1)[0], "month": scope.rsplit(" ", 1)[1], **details}
        if _queue(con, event, rule.channels, transition.episode_id, now):
            result.events.append((event["event"], event["id"]))
    result.scopes += len(flagged)
