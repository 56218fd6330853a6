"""Dagster resources: the settings and the warehouse, handed to the assets, checks and sensors.

`AnalyticsSettings.home` is AGENT_ANALYTICS_HOME, bound with `dg.EnvVar` (see `resources`), so
the Dagster UI shows which home a code location serves and the value is read when a run or a
tick starts, never at import. The other settings are read from the environment at that same
moment by `load_settings`, the one place that checks them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource

from agent_analytics.settings import HOME_VAR, Settings, load_settings
from agent_analytics.spark_marts import open_built_marts
from agent_analytics.warehouse import open_warehouse
from orchestration.defs.dbt.project import DBT_PROJECT, dbt_executable


class AnalyticsSettings(dg.ConfigurableResource):
    """The agent-analytics settings of one run or tick."""

    home: str

    def load(self) -> Settings:
        return load_settings({**os.environ, HOME_VAR: self.home})


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse under the settings' home, opened through `open_warehouse`, whose
    lock lets one process in at a time."""

    settings: AnalyticsSettings

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        settings = self.settings.load()
        with open_warehouse(settings.warehouse_path, read_only=read_only, memory_limit=settings.duckdb_memory) as con:
            yield con

    @contextmanager
    def marts(self, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """The warehouse with the marts of the last build found by name, whichever engine built
        them (agent_analytics/spark_marts.py)."""
        with open_built_marts(self.settings.load(), read_only=read_only) as con:
            yield con


def resources() -> dict[str, dg.ConfigurableResource]:
    """Every resource the definitions use, by the parameter name the assets give them."""
    settings = AnalyticsSettings(home=dg.EnvVar(HOME_VAR))
    return {
        "analytics": settings,
        "warehouse": Warehouse(settings=settings),
        "dbt": DbtCliResource(project_dir=DBT_PROJECT, dbt_executable=dbt_executable()),
    }
