"""The dbt models as Dagster assets; their dbt tests become asset checks."""


import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtCliRuntimeError, DagsterDbtTranslator, DbtCliResource, dbt_assets

from agent_analytics.build_memory import out_of_memory_line
from agent_analytics.settings import load_settings
from agent_analytics.warehouse import warehouse_lock
from orchestration.defs.dbt.project import (
    DBT_PROJECT_DIR,
    PROFILES_DIR,
    dbt_executable,
    ensure_manifest,
)
from orchestration.pools import WAREHOUSE_POOL
from orchestration.recovery import dbt_process_tags


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


def build_dbt_assets() -> dg.AssetsDefinition:
    manifest = ensure_manifest()

    @dbt_assets(manifest=manifest, dagster_dbt_translator=WarehouseTranslator(), pool=WAREHOUSE_POOL)
    def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig):
        settings = load_settings()
        os.environ.update(settings.env())
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


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[build_dbt_assets()],
        resources={
            "dbt": DbtCliResource(
                project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(PROFILES_DIR), dbt_executable=dbt_executable()
            )
        },
    )
