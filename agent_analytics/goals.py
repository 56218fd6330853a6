"""The goals file (TOML): targets a team tracks, company-wide or for one agent.

    [goals.<name>]
    metric = "dau" | "sessions_per_month" | "cost_per_month" | "cost_per_user" | "error_rate" | "response_time"
    target = 1000                  # in the metric's unit (GOAL_METRICS)
    direction = "at_least" | "at_most"
    statistic = "avg" | "p50" | "p95" | "p99"   # response_time only (default avg)
    agent = "support"              # optional: that agent's messages only

The same file holds the monthly budgets, `[budgets.<name>]` (agent_analytics/budgets.py).

`load_goals` validates the file and raises `GoalsConfigError` with one line naming the file,
the goal and the field. A missing file means no goals. Every period's metrics document
evaluates the goals that fit its scope (agent_analytics/metrics/goals.py); definitions in
docs/metric-definitions.md, an example in config/goals.example.toml.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agent_analytics.settings import GOALS_VAR


@dataclass(frozen=True)
class GoalMetric:
    name: str
    unit: str
    monthly: bool  # a total per month: compared through its projection to a month
    description: str


GOAL_METRICS = {
    m.name: m
    for m in (
        GoalMetric("dau", "users", False, "average daily active users over the period's days"),
        GoalMetric("sessions_per_month", "sessions", True, "sessions, projected to a month"),
        GoalMetric("cost_per_month", "USD", True, "cost, projected to a month"),
        GoalMetric("cost_per_user", "USD", False, "cost of the period / its active users"),
        GoalMetric("error_rate", "%", False, "errors / messages of the period, in percent"),
        GoalMetric("response_time", "ms", False, "response time of the period's messages (statistic: avg, p50, p95, p99)"),
    )
}
DIRECTIONS = ("at_least", "at_most")
STATISTICS = ("avg", "p50", "p95", "p99")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
SECTIONS = ("goals", "budgets")  # the goals file's top-level tables
FIELDS = {"metric", "target", "direction", "statistic", "agent", "description"}


class GoalsConfigError(ValueError):
    """The goals file cannot be used; the message is one line."""


@dataclass(frozen=True)
class Goal:
    name: str
    metric: str
    target: float
    direction: str
    statistic: str | None = None  # response_time only
    agent: str | None = None  # None: every agent
    description: str = ""

    @property
    def unit(self) -> str:
        return GOAL_METRICS[self.metric].unit

    @property
    def monthly(self) -> bool:
        return GOAL_METRICS[self.metric].monthly

    def met_by(self, value: float) -> bool:
        return value >= self.target if self.direction == "at_least" else value <= self.target


def read_goals_file(path: Path) -> dict:
    """The goals file's TOML tables ({} when there is no file); GoalsConfigError when it cannot
    be read or parsed. Goals and budgets (agent_analytics/budgets.py) both live in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise GoalsConfigError(f"{path}: cannot read: {type(exc).__name__} (set {GOALS_VAR})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GoalsConfigError(f"{path}: not valid TOML: {exc}") from None
    for key in data:
        if key not in SECTIONS:
            raise GoalsConfigError(f"{path}: {key}: unknown setting (expected: {', '.join(SECTIONS)})")
    return data


def load_goals(path: Path) -> list[Goal]:
    """The goals of the file at `path` in file order; [] when there is no file."""
    return parse_goals(read_goals_file(path), path)


def named(load, path: Path, name: str):
    """The goal or budget called `name` that `load` (load_goals, load_budgets) reads from the
    goals file; None when the file has none or cannot be used (an alert rule then has no value)."""
    try:
        return next((item for item in load(path) if item.name == name), None)
    except GoalsConfigError:
        return None


def parse_goals(data: dict, path: Path) -> list[Goal]:
    def fail(where: str, problem: str):
        raise GoalsConfigError(f"{path}: {where}: {problem}")

    goals = data.get("goals", {})
    if not isinstance(goals, dict):
        fail("goals", "must be a table of goals ([goals.<name>])")
    out = []
    for name, body in goals.items():
        where = f"goals.{name}"
        if not NAME.fullmatch(name):
            fail(where, "a goal name is 1 to 64 letters, digits, '_', '.' or '-'")
        if not isinstance(body, dict):
            fail(where, "must be a table")
        for key in body:
            if key not in FIELDS:
                fail(f"{where}.{key}", f"unknown setting (expected one of: {', '.join(sorted(FIELDS))})")
        metric = body.get("metric")
        if not isinstance(metric, str) or metric not in GOAL_METRICS:
            fail(f"{where}.metric", f"must be one of: {', '.join(GOAL_METRICS)}")
        target = body.get("target")
        # TOML integers have no size limit: one beyond a float is no usable target either
        if (isinstance(target, bool) or not isinstance(target, (int, float)) or abs(target) > 1e300
                or not math.isfinite(target) or target < 0):
            fail(f"{where}.target", f"must be a number >= 0 (in {GOAL_METRICS[metric].unit})")
        if metric == "error_rate" and target > 100:
            fail(f"{where}.target", "an error rate is a percentage: at most 100")
        direction = body.get("direction")
        if direction not in DIRECTIONS:
            fail(f"{where}.direction", "must be at_least or at_most")
        statistic = body.get("statistic")
        if metric == "response_time":
            statistic = "avg" if statistic is None else statistic
            if statistic not in STATISTICS:
                fail(f"{where}.statistic", f"must be one of: {', '.join(STATISTICS)}")
        elif statistic is not None:
            fail(f"{where}.statistic", "only a response_time goal takes a statistic")
        agent = body.get("agent")
        if agent is not None and (not isinstance(agent, str) or not agent.strip()):
            fail(f"{where}.agent", "must be an agent id (a non-empty string)")
        description = body.get("description", "")
        if not isinstance(description, str):
            fail(f"{where}.description", "must be a string")
        out.append(Goal(name, metric, float(target), direction, statistic, agent and agent.strip(), description))
    return out
