"""The Dagster definitions `dagster dev` loads: pools, jobs, schedules, resources, the landing
sensor and the asset checks. Running them is covered by test_end_to_end, test_concurrent_builds
and test_quality_checks; this file checks what they are wired to."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import dagster as dg
import pytest

from orchestration.defs.dbt.project import prepare_manifest
from orchestration.defs.ingest.definitions import landing_files_sensor
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings

BUILD_JOB, REFRESH_JOB = "build_all", "refresh"


@pytest.fixture(scope="module")
def defs():
    prepare_manifest()
    from orchestration.definitions import defs

    return defs


def test_every_step_is_in_the_warehouse_pool(defs):
    """Every executable step opens the warehouse, so every one is in its pool of limit 1."""
    steps = {a.node_def.name: a.node_def.pool for a in defs.resolve_asset_graph().assets_defs if a.is_executable}
    assert {"raw_events", "warehouse_models", "exports", "dashboard"} <= set(steps)
    assert {name for name, pool in steps.items() if pool != WAREHOUSE_POOL} == set()


def test_every_job_runs_its_steps_in_one_process(defs):
    """Steps of one run share the process (and its imports); the UI's ad-hoc materializations too."""
    jobs = [defs.resolve_job_def(BUILD_JOB), defs.resolve_job_def(REFRESH_JOB), defs.resolve_implicit_global_asset_job_def()]
    assert [job.executor_def for job in jobs] == [dg.in_process_executor] * 3


def test_the_nightly_rebuild_and_the_5_minute_refresh(defs):
    nightly = defs.resolve_schedule_def("daily_full_rebuild")
    assert (nightly.cron_schedule, nightly.job_name) == ("0 3 * * *", BUILD_JOB)
    assert nightly.evaluate_tick(dg.build_schedule_context()).run_requests[0].run_config == {
        "ops": {"warehouse_models": {"config": {"full_refresh": True}}}
    }
    refresh = defs.resolve_schedule_def("refresh_every_5_minutes")
    assert (refresh.cron_schedule, refresh.job_name) == ("*/5 * * * *", REFRESH_JOB)
    assert nightly.default_status == refresh.default_status == dg.DefaultScheduleStatus.RUNNING


def test_the_refresh_builds_everything_but_the_scheduled_reports(defs):
    graph = defs.resolve_asset_graph()
    # what a job can materialize: not raw_compaction (its own job, test_compaction), nor the sources
    # written outside Dagster's assets (the prices the build publishes, bills from `bills import`)
    everything = {key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable} - {
        dg.AssetKey("raw_compaction")}
    refreshed = defs.resolve_job_def(REFRESH_JOB).asset_layer.selected_asset_keys
    assert everything - refreshed == {dg.AssetKey(f"{f}_reports") for f in ("daily", "weekly", "monthly")}
    assert defs.resolve_job_def(BUILD_JOB).asset_layer.selected_asset_keys == everything


def test_asset_checks_hold_the_dbt_tests_and_the_gx_suites(defs):
    checks = {key.name for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"unique_fct_messages_message_id", "accepted_values_fct_messages_status__ok__error",
            "relationships_sharing_fct_llm_calls_message_id__message_id__message_date__ref_fct_messages_"} <= checks
    assert {"gx_fct_daily_activity", "gx_fct_agent_daily", "gx_fct_daily_cost_by_provider"} <= checks


def test_every_asset_that_reads_the_marts_runs_after_every_mart_and_its_blocking_checks(defs):
    graph = defs.resolve_asset_graph()
    marts = dg.AssetSelection.groups("marts").resolve(graph)
    assert {dg.AssetKey("fct_messages"), dg.AssetKey("fct_agent_minute"), dg.AssetKey("dim_agents")} <= marts
    readers = {"daily_csv_export": "exports", "full_json_export": "exports", "dashboard": "dashboard",
               "alert_evaluation": "alert_evaluation", "daily_reports": "daily_reports"}
    for reader in readers:
        assert marts <= graph.get(dg.AssetKey(reader)).parent_keys, reader
    # what a run executes: the step waits for the dbt step and for every Great Expectations check
    gx_steps = {f"{table}_gx_{table}" for table in ("fct_daily_activity", "fct_agent_daily", "fct_daily_cost_by_provider")}
    for job_name in (BUILD_JOB, REFRESH_JOB):
        wiring = defs.resolve_job_def(job_name).graph.dependency_structure
        for step in set(readers.values()) - ({"daily_reports"} if job_name == REFRESH_JOB else set()):
            upstream = {out.node.name for outs in wiring.input_to_upstream_outputs_for_node(step).values() for out in outs}
            assert {"warehouse_models", *gx_steps} <= upstream, (job_name, step, upstream)


def test_the_settings_and_the_warehouse_are_resources_read_at_run_time(defs, tmp_path, monkeypatch):
    """AGENT_ANALYTICS_HOME is bound with dg.EnvVar: the home of the run, not of the import."""
    resources = defs.resources
    assert resources["warehouse"].settings is resources["analytics"]
    home = resources["analytics"].home
    assert isinstance(home, dg.EnvVar) and home.env_var_name == "AGENT_ANALYTICS_HOME"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "later"))
    with dg.build_resources({"analytics": resources["analytics"]}) as built:
        assert built.analytics.load().warehouse_path == tmp_path / "later" / "warehouse.duckdb"


def test_loading_the_definitions_runs_no_dbt():
    """Importing the module Dagster loads (and building every definition) runs no dbt: the
    manifest is prepared beforehand, never by the import."""
    manifest = prepare_manifest()
    os.utime(manifest, (0, 0))  # older than every project file: a freshness check at import would parse here
    code = textwrap.dedent("""
        import subprocess

        started = subprocess.Popen.__init__

        def refuse_dbt(self, args, *rest, **kwargs):
            if "dbt" in " ".join(map(str, [args] if isinstance(args, str) else args)):
                raise AssertionError(f"dbt was started at import: {args}")
            started(self, args, *rest, **kwargs)

        subprocess.Popen.__init__ = refuse_dbt
        import orchestration.definitions as module
        print(len(module.defs.resolve_asset_graph().get_all_asset_keys()))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "AGENT_ANALYTICS_HOME": "/nonexistent/home"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) > 30


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "home" / "landing"
    folder.mkdir(parents=True)
    return folder


def sensor_context(landing, instance=None) -> dg.SensorEvaluationContext:
    return dg.build_sensor_context(instance=instance or dg.DagsterInstance.ephemeral(),
                                   resources={"analytics": AnalyticsSettings(home=str(landing.parent))})


def test_landing_sensor_waits_while_a_refresh_is_queued(landing):
    """Files arriving every tick (one per request to the service) must not queue a run per tick."""
    (landing / "day1.jsonl").write_text("{}\n")
    with dg.instance_for_test() as instance:
        assert isinstance(landing_files_sensor(sensor_context(landing, instance)), dg.RunRequest)
        waiting = instance.add_run(dg.DagsterRun(job_name=REFRESH_JOB, status=dg.DagsterRunStatus.NOT_STARTED))
        skipped = landing_files_sensor(sensor_context(landing, instance))
        assert isinstance(skipped, dg.SkipReason) and "already queued" in skipped.skip_message
        instance.delete_run(waiting.run_id)  # it started (or went): the files need a run again
        assert isinstance(landing_files_sensor(sensor_context(landing, instance)), dg.RunRequest)


def test_landing_sensor_launches_one_refresh_per_arrival(landing):
    def tick():
        return landing_files_sensor(sensor_context(landing))

    assert isinstance(tick(), dg.SkipReason)
    (landing / "notes.txt").write_text("not a contract file")
    assert isinstance(tick(), dg.SkipReason)

    (landing / "day1.jsonl").write_text("{}\n")
    first = tick()
    assert isinstance(first, dg.RunRequest) and first.tags == {"landing_files": "1"}
    assert tick().run_key == first.run_key  # the same waiting files: the same run, not a second one

    (landing / "day2.jsonl.gz").write_bytes(b"\x1f\x8b")
    second = tick()
    assert second.tags == {"landing_files": "2"} and second.run_key != first.run_key
    assert landing_files_sensor.job_name == REFRESH_JOB


def test_landing_sensor_survives_a_dangling_link_and_launches_the_run_that_rejects_it(landing):
    """A link whose target is gone used to make every tick raise (stat followed it)."""
    (landing / "gone.jsonl").symlink_to(landing / "missing.jsonl")
    request = landing_files_sensor(sensor_context(landing))
    assert isinstance(request, dg.RunRequest) and request.tags == {"landing_files": "1"}


def test_landing_sensor_survives_a_file_name_that_is_not_utf8(landing):
    (landing / os.fsdecode(b"bad\xff.jsonl")).write_text("{}\n")
    request = landing_files_sensor(sensor_context(landing))
    assert isinstance(request, dg.RunRequest) and request.tags == {"landing_files": "1"}
