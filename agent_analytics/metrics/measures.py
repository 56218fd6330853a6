"""The measures the metrics layer shares with the dbt marts, defined once.

They live as Jinja macros in the dbt project (dbt_project/macros/metrics.sql), which the marts
call; this module renders the same macros with Jinja (they use no dbt context), so the metrics
document and the marts of the same whole company days agree by construction.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import jinja2

MACROS = Path(__file__).resolve().parents[2] / "dbt_project" / "macros" / "metrics.sql"


@cache
def _macros():
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return environment.from_string(MACROS.read_text(encoding="utf-8")).module


def message_measures() -> str:
    """Select-list of the additive measures over fct_messages rows."""
    return str(_macros().message_measures())


def measure_names(measures: str) -> list[str]:
    """The column names of a select-list of measures (the alias ending each line)."""
    return re.findall(r"\bas (\w+),?$", measures, re.MULTILINE)


def call_measures() -> str:
    """Select-list of the additive measures over fct_llm_calls rows."""
    return str(_macros().call_measures())


def session_measures() -> str:
    """Select-list of the additive measures over fct_sessions rows."""
    return str(_macros().session_measures())


def active_users(user_days: str, days: str) -> str:
    """Query of DAU / WAU / MAU per day of relation `days` from relation `user_days`."""
    return str(_macros().active_users(user_days, days))
