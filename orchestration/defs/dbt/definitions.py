"""The dbt models as Dagster assets; their dbt tests become asset checks."""


import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from dagster_dbt import (
    DagsterDbtCliRuntimeError,
    DagsterDbtTranslator,
    DbtCliResource,
    dbt_assets,
)

from agent_analytics.build_memory import full_build_threads, out_of_memory_line
from agent_analytics.files import write_atomically
from agent_analytics.model_version import model_version
from agent_analytics.prices import promote_prices, publish_prices
from agent_analytics.spark_marts import has_spark_tables
from agent_analytics.warehouse import warehouse_lock
from ingestion.raw_layer import row_count
from orchestration.defs.dbt.project import DBT_PROJECT, dbt_error_line
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
    # its tests read the days rebuilt after this time (models/marts/_users__models.yml): a
    # catch-up after a build it missed starts from its own watermark
    "fct_user_daily": "max_loaded_at",
}


def tests_loaded_after(warehouse: Warehouse) -> str | None:
    """The oldest of those models' newest load times (ISO text): every row loaded up to it has
    been tested by an earlier build, also when one of them did not build last time. None
    before the first build (or while one of them is missing): test every row. None on Spark,
    whose builds test every row (the scoped tests' models are Spark tables)."""
    settings = warehouse.settings.load()
    if settings.engine != "duckdb" or not settings.warehouse_path.exists():
        return None
    with warehouse.connect(read_only=True) as con:
        main = con.execute("select table_name from information_schema.tables where table_schema = 'main'").fetchall()
        tables = {row[0] for row in main}
        if not set(SCOPED_TEST_MODELS) <= tables:
            return None
        newest = [con.execute(f"select max({column}) from {model}").fetchone()[0] for model, column in SCOPED_TEST_MODELS.items()]
    known = [n for n in newest if n is not None]  # a model without rows has nothing to test
    return min(known).isoformat(sep=" ") if known else None


# The model version (agent_analytics/model_version.py) the warehouse's models were last built
# under, written after a dbt build in which every node passed. It lives in the warehouse's own
# dbt target folder, beside dbt's record of its last invocation: one per warehouse, written
# only by the build that holds the warehouse lock, and read by nothing else. Deleting it makes
# the next build a full rebuild, the safe direction.
MODEL_VERSION_FILE = "model_version.json"
FULL_REBUILD_TAG = "agent_analytics/full_rebuild"
MODELS_CHANGED = "the models changed since the last build (upgrade or setting): full rebuild"


def recorded_model_version(target: Path) -> str | None:
    """The version the last complete build recorded in the target folder; None when there is
    none (no build yet, or a warehouse built before versions were recorded)."""
    try:
        return json.loads((target / MODEL_VERSION_FILE).read_text())["model_version"]
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def record_model_version(target: Path, version: str, run_id: str) -> None:
    """Record the version a build ran under; a temporary file renamed into place, so a crash
    leaves the previous record or this one."""
    recorded = {"model_version": version, "built_at": datetime.now(timezone.utc).isoformat(), "run_id": run_id}
    write_atomically(target / MODEL_VERSION_FILE, json.dumps(recorded) + "\n")


def has_model_tables(warehouse: Warehouse) -> bool:
    """Whether the engine's warehouse holds tables built by dbt (DuckDB: schema main, as ingest
    keeps its own schema; Spark: its warehouse folder), i.e. rows an incremental build would keep."""
    settings = warehouse.settings.load()
    if settings.engine == "spark":
        return has_spark_tables(settings)
    if not settings.warehouse_path.exists():
        return False
    with warehouse.connect(read_only=True) as con:
        query = "select count(*) from information_schema.tables where table_schema = 'main' and table_type = 'BASE TABLE'"
        return con.execute(query).fetchone()[0] > 0


def build_threads(settings, rebuilds_everything: bool) -> int:
    """The dbt threads of this build: the settings' (AGENT_ANALYTICS_DBT_THREADS or its
    default), fewer when a DuckDB build rebuilds every model from the raw layer's messages and
    their largest models would not fit side by side (build_memory.full_build_threads)."""
    if settings.engine != "duckdb" or not rebuilds_everything:
        return settings.dbt_threads
    try:
        messages = row_count(settings.raw_dir, "messages")
    except (OSError, duckdb.Error):  # a file that cannot be read: the build reports it itself
        return settings.dbt_threads
    return full_build_threads(settings.dbt_threads, settings.duckdb_memory, messages)


def build_dbt_assets() -> dg.AssetsDefinition:
    """The models of the prepared manifest (see project.py) as assets; reads the manifest."""

    @dbt_assets(manifest=DBT_PROJECT.manifest_path, project=DBT_PROJECT, dagster_dbt_translator=WarehouseTranslator(),
                pool=WAREHOUSE_POOL)
    def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, config: DbtBuildConfig,
                         analytics: AnalyticsSettings, warehouse: Warehouse):
        settings = analytics.load()
        os.environ.update(settings.env())
        # One target folder per warehouse and engine (runs are serialized by the lock): dbt's
        # partial parsing is reused, and no folder piles up per run. The engine reaches dbt as
        # AGENT_ANALYTICS_ENGINE, which picks the profile's target (profiles.yml).
        target = settings.dbt_target_dir
        version = model_version(settings, DBT_PROJECT.project_dir)
        full_refresh = config.full_refresh
        # Rows kept by the incremental models were made by the version that built them: after an
        # upgrade or a changed setting they would fail the contracts or mix with new rows, so
        # this build starts over. The old record goes first: a rebuild that fails leaves none, so
        # the next build rebuilds again, also after going back to the old version.
        if recorded_model_version(target) != version:
            (target / MODEL_VERSION_FILE).unlink(missing_ok=True)
            if not full_refresh and has_model_tables(warehouse):
                full_refresh = True
                context.log.info(MODELS_CHANGED)
                context.instance.add_run_tags(context.run_id, {FULL_REBUILD_TAG: "models_changed"})
        loaded_after = None if full_refresh else tests_loaded_after(warehouse)
        if loaded_after is None:
            os.environ.pop(TESTS_LOADED_AFTER_VAR, None)
        else:
            os.environ[TESTS_LOADED_AFTER_VAR] = loaded_after
        args = ["build", "--full-refresh"] if full_refresh else ["build", "--exclude", REFRESH_EXCLUDE]
        rebuilds_everything = full_refresh or not has_model_tables(warehouse)
        with warehouse_lock(settings.warehouse_path):
            # counted under the lock: compaction (which takes it too) replaces batch files
            threads = build_threads(settings, rebuilds_everything)
            if threads != settings.dbt_threads:
                context.log.info(f"a build of every model from all the messages: {threads} dbt thread(s) instead of "
                                 f"{settings.dbt_threads}, so its largest models fit in the memory limit side by side")
                args += ["--threads", str(threads)]  # this build only: the setting stays as it is
            # The company's prices as the models read them, and what changed since the last
            # successful build (agent_analytics/prices.py); a bad file keeps the last good ones.
            published = publish_prices(settings)
            if published.error:
                context.log.warning(published.error)
            (target / "run_results.json").unlink(missing_ok=True)  # never explain a failure by an earlier run
            invocation = dbt.cli(args, context=context, target_path=target)
            # A dbt process outlives a killed build; the next build stops it by these tags.
            context.instance.add_run_tags(context.run_id, dbt_process_tags(invocation.process.pid))
            try:
                yield from invocation.stream()
            except DagsterDbtCliRuntimeError as exc:
                line = out_of_memory_line(target / "run_results.json", settings.duckdb_memory, threads)
                raise dg.Failure(description=line or dbt_error_line(exc)) from exc
            # Every node passed (dbt exits non-zero otherwise, and the stream raises). A subset
            # (some models materialized from the UI) leaves the others as they were: no record.
            if context.selected_asset_keys == set(context.assets_def.keys):
                record_model_version(target, version, context.run_id)
                promote_prices(settings)

    return warehouse_models


def mart_keys(models: dg.AssetsDefinition) -> list[dg.AssetKey]:
    """The keys of the models in the group `marts` (the folder models/marts/)."""
    return [spec.key for spec in models.specs if spec.group_name == MARTS_GROUP]
