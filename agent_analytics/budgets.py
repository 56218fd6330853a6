"""Monthly budgets: the `[budgets.<name>]` tables of the goals file (agent_analytics/goals.py).

    [budgets.<name>]
    budget_usd = 5000              # USD per calendar month of the company time zone
    agent = "support"              # optional: that agent's cost only
    provider = "openai"            # optional: that provider's LLM cost only (not with agent)
    description = "..."            # optional

Without `agent` or `provider` a budget is company-wide. Budgets share the goals file with the
goals: both are targets the team sets, read from one setting (`AGENT_ANALYTICS_GOALS`), and a
cost goal and a budget are often written side by side. `load_budgets` raises
`GoalsConfigError` with one line naming the file, the budget and the field; a missing file
means no budgets. The metrics document's `budgets` section evaluates them
(agent_analytics/metrics/budgets.py); definitions in docs/metric-definitions.md, an example
in config/goals.example.toml.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from agent_analytics.goals import NAME, GoalsConfigError, read_goals_file

FIELDS = {"budget_usd", "agent", "provider", "description"}
SCOPES = ("company", "agent", "provider")


@dataclass(frozen=True)
class Budget:
    name: str
    budget_usd: Decimal
    agent: str | None = None  # agent scope
    provider: str | None = None  # provider scope
    description: str = ""

    @property
    def scope(self) -> str:
        return "agent" if self.agent else "provider" if self.provider else "company"


def load_budgets(path: Path) -> list[Budget]:
    """The budgets of the goals file at `path` in file order; [] when there is no file."""
    return parse_budgets(read_goals_file(path), path)


def parse_budgets(data: dict, path: Path) -> list[Budget]:
    def fail(where: str, problem: str):
        raise GoalsConfigError(f"{path}: {where}: {problem}")

    def identifier(body: dict, where: str, key: str, what: str) -> str | None:
        value = body.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            fail(f"{where}.{key}", f"must be {what} (a non-empty string)")
        return value and value.strip()

    budgets = data.get("budgets", {})
    if not isinstance(budgets, dict):
        fail("budgets", "must be a table of budgets ([budgets.<name>])")
    out = []
    for name, body in budgets.items():
        where = f"budgets.{name}"
        if not NAME.fullmatch(name):
            fail(where, "a budget name is 1 to 64 letters, digits, '_', '.' or '-'")
        if not isinstance(body, dict):
            fail(where, "must be a table")
        for key in body:
            if key not in FIELDS:
                fail(f"{where}.{key}", f"unknown setting (expected one of: {', '.join(sorted(FIELDS))})")
        amount = body.get("budget_usd")
        # a budget of 0 has no percentage used; TOML integers have no size limit
        if (isinstance(amount, bool) or not isinstance(amount, (int, float)) or abs(amount) > 1e15
                or not math.isfinite(amount) or amount <= 0):
            fail(f"{where}.budget_usd", "must be a number of USD > 0 (at most 1e15)")
        agent = identifier(body, where, "agent", "an agent id")
        provider = identifier(body, where, "provider", "a provider name")
        if agent and provider:
            fail(where, "a budget is company-wide, for one agent or for one provider: give agent or provider, not both")
        description = body.get("description", "")
        if not isinstance(description, str):
            fail(f"{where}.description", "must be a string")
        out.append(Budget(name, Decimal(str(amount)), agent, provider, description))
    return out
