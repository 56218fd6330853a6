"""Great Expectations suites on the marts, and what a failing blocking check does to a build."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pandas as pd
import pytest

from agent_analytics.settings import load_settings
from orchestration.build import run_build
from orchestration.defs.quality import definitions as quality
from orchestration.defs.quality.suites import SUITES, SuiteResult, validate


def daily_activity(dau, wau, mau, messages=(5, 5), sessions=(2, 2)) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"activity_date": pd.to_datetime(["2026-11-02", "2026-11-03"]), "dau": dau, "wau": wau, "mau": mau,
         "messages": list(messages), "sessions": list(sessions), "cost_usd": [0.5, 0.0]}
    )
    frame["wau_minus_dau"] = frame["wau"] - frame["dau"]
    frame["mau_minus_wau"] = frame["mau"] - frame["wau"]
    frame["messages_minus_sessions"] = frame["messages"] - frame["sessions"]
    return frame


def test_daily_activity_suite_passes_consistent_rows():
    _, suite = SUITES["fct_daily_activity"]
    result = validate(daily_activity([3, 2], [3, 3], [3, 3]), suite, "ok")
    assert (result.success, result.evaluated, result.failed) == (True, len(suite), [])


def test_daily_activity_suite_names_what_is_wrong():
    _, suite = SUITES["fct_daily_activity"]
    # WAU below DAU on the second day, and more sessions than messages on the first
    result = validate(daily_activity([3, 4], [3, 3], [3, 3], messages=(1, 5), sessions=(2, 2)), suite, "bad")
    assert not result.success
    assert sorted(result.failed) == [
        "expect_column_values_to_be_between(messages_minus_sessions)",
        "expect_column_values_to_be_between(wau_minus_dau)",
    ]


def _validate_consistent_rows(_) -> tuple[bool, int]:
    _, suite = SUITES["fct_daily_activity"]
    result = validate(daily_activity([3, 2], [3, 3], [3, 3]), suite, "spawned")
    return result.success, result.evaluated


def test_a_check_runs_in_a_spawned_process_as_dagster_starts_its_steps():
    """Dagster's multiprocess executor runs each step in a process started by multiprocessing's
    spawn (`python -c ...`, a `__main__` without a file). With the spark extra installed, GX's
    import of PySpark's Connect module ended such a process with exit status 0, so every check
    of a run launched by the daemon failed."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = pool.submit(_validate_consistent_rows, 0)
        try:
            assert done.result(timeout=120) == (True, len(SUITES["fct_daily_activity"][1]))
        except SystemExit as exc:  # raised in the step process, handed back by the pool
            pytest.fail(f"the check ended its process: SystemExit({exc.code})")


@pytest.mark.usefixtures("day1_home")
def test_failed_blocking_check_stops_the_exports(monkeypatch):
    settings = load_settings()
    real_validate = quality.validate

    def failing_for_daily_activity(df, suite, name):
        if name == "fct_daily_activity":
            return SuiteResult(success=False, evaluated=len(suite), failed=["forced failure"])
        return real_validate(df, suite, name)

    with monkeypatch.context() as patch:
        patch.setattr(quality, "validate", failing_for_daily_activity)
        assert run_build(settings) is False
    exports = settings.exports_dir
    assert not (exports / "daily.csv").exists() and not (exports / "analytics.json").exists()
    # the same build with the real suites writes both files
    assert run_build(settings) is True
    assert (exports / "daily.csv").exists() and (exports / "analytics.json").exists()

