"""The dbt models as Dagster assets; their dbt tests become asset checks."""


import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtCliRuntimeError,
    DagsterDbtTranslator,
    DbtCliResource,
    dbt_assets,
)

from agent_analytics.build_memory import out_of_memory_line
from agent_analytics.warehouse import warehouse_lock
from orchestration.defs.dbt.project import DBT_PROJECT
from orchestration.pools import WAREHOUSE_POOL
from orchestration.recovery import dbt_process_tags
from orchestration.resources import AnalyticsSettings, Warehouse

MARTS_GROUP = "marts"


class WarehouseTranslator(DagsterDbtTranslator):
    """Sources keep the default key [source, table], which the raw_events multi-asset produces;
    models are grouped by their folder (staging, intermediate, marts)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "warehouse"


class DbtBuildConfig(dg.Config):
    full_refresh: bool = False


# What an incremental build (the refresh) leaves out, as one dbt selection (a space is a union):
# - the data tests of the staging views, which re-read the whole raw layer (their keys are
#   enforced by ingestion and tested again on the marts);
# - the unit tests, whose inputs are fixed rows: they test the SQL, not the data, so one run
#   per code version is enough (dbt's advice: development and CI, not production runs).
# The nightly full rebuild (`--full-refresh`, 03:00) runs them, and so does `make test`.
REFRESH_EXCLUDE = "test_type:data,path:models/staging test_type:unit"

# The data tests of the large incremental models read only the rows loaded after this time (the
# `where` config in the models' YAML). A refresh sets it to the newest load its previous build
# processed, so it tests what it adds; unset (a full refresh, a first build), they read every row.
TESTS_LOADED_AFTER_VAR = "AGENT_ANALYTICS_DBT_TESTS_LOADED_AFTER"


# The models whose data tests a refresh scopes to the rows it adds, with their load-time column
# (the `where` config of their tests in models/*.yml).
SCOPED_TEST_MODELS = {
    "int_messages_sessionized": "loaded_at",
    "fct_messages": "loaded_at",
    "fct_llm_calls": "loaded_at",
    "fct_tool_calls": "loaded_at",
    "fct_sessions": "max_loaded_at",
}


def tests_loaded_after(warehouse: Warehouse) -> str | None:
    """The oldest of those models' newest load times (ISO text): every row loaded up to it has
    been tested by an earlier build, also when one of them did not build last time. None
    before the first build (or while one of them is missing): test every row."""
    if not warehouse.settings.load().warehouse_path.exists():
        return None
    with warehouse.connect(read_only=True) as con:
        main = con.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()
        tables = {row[0] for row in main}
        if not set(SCOPED_TEST_MODELS) <= tables:
            return None
        newest = [con.execute(f"select max({column}) from {model}").fetchone()[0] for model, column in SCOPED_TEST_MODELS.items()]
    known = [n for n in newest if n is not None]  # a model without rows has nothing to test
    return min(known).isoformat(sep=" ") if known else None


def build_dbt_assets() -> dg.AssetsDefinition:
    """The models of the prepared manifest (see project.py) as assets; reads the manifest."""

    @dbt_assets(manifest=DBT_PROJECT.manifest_path, project=DBT_PROJECT, dagster_dbt_translator=WarehouseTranslator(),
                pool=WAREHOUSE_POOL)
    def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig,
                         analytics: AnalyticsSettings, warehouse: Warehouse):
        settings = analytics.load()
        os.environ.update(settings.env())
        loaded_after = None if config.full_refresh else tests_loaded_after(warehouse)
        if loaded_after is None:
            os.environ.pop(TESTS_LOADED_AFTER_VAR, None)
        else:
            os.environ[TESTS_LOADED_AFTER_VAR] = loaded_after
        args = ["build", "--full-refresh"] if config.full_refresh else ["build", "--exclude", REFRESH_EXCLUDE]
        # One target folder per warehouse (runs are serialized by the lock): dbt's partial
        # parsing is reused, and no folder piles up per run.
        target = settings.home / "dbt_target"
        with warehouse_lock(settings.warehouse_path):
            (target / "run_results.json").unlink(missing_ok=True)  # never explain a failure by an earlier run
            invocation = dbt.cli(args, context=context, target_path=target)
            # A dbt process outlives a killed build; the next build stops it by these tags.
            context.instance.add_run_tags(context.run_id, dbt_process_tags(invocation.process.pid))
            try:
                yield from invocation.stream()
            except DagsterDbtCliRuntimeError as exc:
                line = out_of_memory_line(target / "run_results.json", settings.duckdb_memory, settings.dbt_threads)
                if line is None:
                    raise
                raise dg.Failure(description=line) from exc

    return warehouse_models


def mart_keys(models: dg.AssetsDefinition) -> list[dg.AssetKey]:
    """The keys of the models in the group `marts` (the folder models/marts/)."""
    return [spec.key for spec in models.specs if spec.group_name == MARTS_GROUP]
