"""Great Expectations suites for the marts: plain functions, testable without Dagster.

Each suite is a list of (expectation class name, keyword arguments) run against a pandas
DataFrame through an ephemeral GX context (GX's SQL datasource on DuckDB gives wrong results
or an IndexError without patching its internals). Great Expectations is imported inside `validate`, never at module import.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd

Suite = list[tuple[str, dict]]

SUITES: dict[str, tuple[str, Suite]] = {
    "fct_daily_activity": (
        "select *, wau - dau as wau_minus_dau, mau - wau as mau_minus_wau, messages - sessions as messages_minus_sessions "
        "from fct_daily_activity",
        [
            ("ExpectColumnValuesToBeUnique", {"column": "activity_date"}),
            ("ExpectColumnValuesToNotBeNull", {"column": "activity_date"}),
            ("ExpectColumnValuesToBeBetween", {"column": "dau", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "wau_minus_dau", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "mau_minus_wau", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "messages_minus_sessions", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "cost_usd", "min_value": 0}),
        ],
    ),
    "fct_agent_daily": (
        "select *, p95_response_time_ms - p50_response_time_ms as p95_minus_p50, "
        "p99_response_time_ms - p95_response_time_ms as p99_minus_p95, messages - active_users as messages_minus_users, "
        "messages - errors as messages_minus_errors from fct_agent_daily",
        [
            ("ExpectColumnValuesToBeUnique", {"column": "agent_day_key"}),
            ("ExpectColumnValuesToBeBetween", {"column": "p95_minus_p50", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "p99_minus_p95", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "messages_minus_users", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "messages_minus_errors", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "cost_usd", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "sessions", "min_value": 0}),
        ],
    ),
    "fct_daily_cost_by_provider": (
        "select *, llm_calls - priced_calls - unpriced_calls as unbalanced_calls from fct_daily_cost_by_provider",
        [
            ("ExpectColumnValuesToBeUnique", {"column": "cost_key"}),
            ("ExpectColumnValuesToBeInSet", {"column": "unbalanced_calls", "value_set": [0]}),
            ("ExpectColumnValuesToBeBetween", {"column": "cost_usd", "min_value": 0}),
            ("ExpectColumnValuesToBeBetween", {"column": "unpriced_tokens", "min_value": 0}),
        ],
    ),
}


@dataclass(frozen=True)
class SuiteResult:
    success: bool
    evaluated: int
    failed: list[str]


def _import_great_expectations() -> None:
    """Import great_expectations with PySpark hidden from it.

    GX imports PySpark whenever it is installed (the spark extra), and PySpark's Connect module
    ends the process with exit status 0 ("Skipping doctests") when it is imported where
    `__main__` has no file and its own optional dependencies are missing: in the step processes
    of Dagster's multiprocess executor, started as `python -c "from multiprocessing.spawn
    import ..."`, every check then failed with SystemExit. The checks validate pandas frames;
    GX needs no Spark for them. Any later `import pyspark` in the process works as usual."""
    if "great_expectations" in sys.modules:
        return
    hidden = [name for name in ("pyspark", "pyspark.sql.connect") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # an import of it raises ImportError, which GX handles
    try:
        import great_expectations  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


def validate(df: pd.DataFrame, suite: Suite, name: str) -> SuiteResult:
    """Run a suite over a DataFrame with an ephemeral GX context."""
    _import_great_expectations()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch_definition = (
        context.data_sources.add_pandas(f"{name}_source")
        .add_dataframe_asset(f"{name}_frame")
        .add_batch_definition_whole_dataframe(f"{name}_batch")
    )
    expectation_suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_suite"))
    for class_name, kwargs in suite:
        expectation_suite.add_expectation(getattr(gxe, class_name)(**kwargs))
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch_definition, suite=expectation_suite, name=f"{name}_validation")
    )
    result = validation.run(batch_parameters={"dataframe": df})
    failed = [
        f"{r.expectation_config.type}({r.expectation_config.kwargs.get('column', '')})"
        for r in result.results
        if not r.success
    ]
    return SuiteResult(success=bool(result.success), evaluated=len(result.results), failed=failed)
