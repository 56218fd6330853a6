"""A failed dbt invocation is told in one line that says what failed and why.

dagster-dbt's error message starts with the command and a pointer to the compute logs; the
build summary, `agent-analytics build` and `up` show `dbt_error_line` of it instead. The cases
run real dbt on a copy of the project with one broken model added; the expected lines are
dbt's own words for each mistake.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dagster_dbt import DagsterDbtCliRuntimeError, DbtCliResource

from orchestration.defs.dbt.project import DBT_PROJECT_DIR, PROFILES_DIR, dbt_error_line, dbt_executable
from orchestration.up import UpError, prepare_manifest_apart


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    copy = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target*", "logs"))
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AGENT_ANALYTICS_ENGINE", raising=False)
    return copy


def _error_of(project: Path, args: list[str]) -> DagsterDbtCliRuntimeError:
    dbt = DbtCliResource(project_dir=str(project), profiles_dir=str(PROFILES_DIR), dbt_executable=dbt_executable())
    with pytest.raises(DagsterDbtCliRuntimeError) as raised:
        dbt.cli(args, target_path=project / "target").wait()
    assert str(raised.value).startswith("The dbt CLI process with command")  # what a first line would say
    return raised.value


def test_a_model_that_fails_when_it_runs_is_named_with_the_database_error(project):
    (project / "models" / "broken.sql").write_text(
        "{{ config(materialized='table') }}\nselect error('no such agent: x') as boom\n")
    line = dbt_error_line(_error_of(project, ["run", "--select", "broken"]))
    assert line == "Runtime Error in model broken (models/broken.sql) Invalid Input Error: no such agent: x"


def test_a_model_that_does_not_parse_is_named_with_the_template_error(project):
    (project / "models" / "broken.sql").write_text("select {{ 1 + }} as x\n")
    line = dbt_error_line(_error_of(project, ["parse"]))
    assert line == ("Compilation Error in model broken (models/broken.sql) "
                    "unexpected 'end of print statement' line 1 select {{ 1 + }} as x")


def test_a_failed_data_test_is_named_with_its_count(project):
    (project / "models" / "has_nulls.sql").write_text(
        "{{ config(materialized='table') }}\nselect * from (values (1), (null), (null)) as t(id)\n")
    (project / "models" / "has_nulls.yml").write_text(
        "models:\n  - name: has_nulls\n    columns:\n      - name: id\n        data_tests: [not_null]\n")
    line = dbt_error_line(_error_of(project, ["build", "--select", "has_nulls"]))
    assert line == "in test not_null_has_nulls_id (models/has_nulls.yml) | Got 2 results, configured to fail if != 0"


def test_up_says_in_one_line_why_the_project_does_not_parse():
    """`up` parses in a process of its own (it must own no process but its children)."""
    env = {**os.environ, "AGENT_ANALYTICS_ENGINE": "nonesuch"}
    try:
        with pytest.raises(UpError) as raised:
            prepare_manifest_apart(env)
    finally:
        shutil.rmtree(DBT_PROJECT_DIR / "target-nonesuch", ignore_errors=True)
    assert str(raised.value) == (
        "the dbt project does not parse: Runtime Error The profile 'agent_analytics' does not have a target "
        "named 'nonesuch'. The valid target names for this profile are: - duckdb - spark")
