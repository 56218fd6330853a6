"""Helpers the goals and the budgets tests share (tests/test_goals.py, tests/test_budgets.py):
both live in the goals file, and both have daily alert rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

HOOK = {"hook": {"type": "webhook", "url_env": "GOALS_TEST_HOOK_URL", "secret_env": "GOALS_TEST_HOOK_SECRET"}}


def rules(table: dict):
    """The alert config of the rules `table`, with one webhook channel named hook."""
    from agent_analytics.alerts.rules import parse_config

    return parse_config({"channels": HOOK, "rules": table}, Path("alerts.toml"))


def day_steps(first: datetime, values: list[float | None]) -> list:
    """One final daily step per value from `first`."""
    from agent_analytics.alerts.evaluate import Step

    return [Step(first + timedelta(days=i), first + timedelta(days=i + 1), 100 + i, v) for i, v in enumerate(values)]


def one_line_problem(load, path: Path, text: str) -> str:
    """The one-line GoalsConfigError `load` raises for a goals file holding `text`."""
    from agent_analytics.goals import GoalsConfigError

    path.write_text(text)
    with pytest.raises(GoalsConfigError) as raised:
        load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message
