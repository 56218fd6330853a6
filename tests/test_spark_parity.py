"""The same dbt models on Spark (issue 16): one raw layer, built on DuckDB and on a local Spark
(dbt-spark, `method: session`), gives the same marts row for row, and so does the incremental
run after a late file.

One home holds both builds: the raw layer, the DuckDB warehouse and the Spark tables under
spark/. The first load: the hand fixture's day1, a generated month of 20,000 messages in New
York time (daylight saving time ends inside it) and an OpenTelemetry trace's root and first chat
span. The second load: the fixture's day2 (a late message, a duplicate), the month's file of a
day four days before the newest data (its events are days old), and the trace's second chat and
tool spans, which write its message again as revision 1. Each engine builds after each load,
the second time incrementally: DuckDB with dbt alone (what the 5-minute refresh runs), Spark
through `agent-analytics build` (the Dagster job: dbt, the quality checks, the serving copy,
the exports, dashboard, reports and alerts, all reading what Spark wrote). Every mart is
compared through DuckDB, which reads the Spark tables' Parquet (agent_analytics/spark_marts.py):
integers, text, days and times exactly, money exactly (DECIMAL), averages and percentiles within
1e-9 relative (both engines compute continuous percentiles exactly; float sums may add in
another order). Then the metrics document of the period, read from the serving copy published
from the Spark tables, equals the one computed on the DuckDB warehouse, and so does the A/B
comparison of the busiest agent's two versions read through the views over Spark's tables.
Both loads are priced by a company prices file (patterns, an exact model, a price change in the
middle of the month), changed between the builds, so the second builds re-price history.

Skipped only where Java or the spark extra (pip install -e '.[spark]') is missing.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.spark
if shutil.which("java") is None:
    pytest.skip("Java is missing: the Spark parity test needs a Java 17 runtime", allow_module_level=True)
pytest.importorskip("pyspark", reason="pyspark is missing: pip install -e '.[spark]'")
pytest.importorskip("dbt.adapters.spark", reason="dbt-spark is missing: pip install -e '.[spark]'")

from agent_analytics.comparison.document import comparison_document  # noqa: E402
from agent_analytics.comparison.samples import read_samples  # noqa: E402
from agent_analytics.exports import MetricsQuery, metrics_document  # noqa: E402
from agent_analytics.metrics import MetricsRequest, compute_metrics  # noqa: E402
from agent_analytics.periods import parse_as_of, parse_period  # noqa: E402
from agent_analytics.prices import promote_prices, publish_prices  # noqa: E402
from agent_analytics.serving import marts, serving_database  # noqa: E402
from agent_analytics.settings import load_settings  # noqa: E402
from agent_analytics.spark_marts import open_spark_marts  # noqa: E402
from agent_analytics.synthetic_events import generate  # noqa: E402
from orchestration.defs.dbt.definitions import REFRESH_EXCLUDE  # noqa: E402
from tests.otlp_fixtures import lines, request  # noqa: E402
from tests.test_otlp_ingest import T1, chat1, chat2, root_span, tool  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
END = date(2026, 11, 20)
LATE_DAY = date(2026, 11, 16)  # its file is loaded last: four days after the newest data's day
PRICES = """provider,model,input_per_mtok,cached_input_per_mtok,output_per_mtok,valid_from,valid_to
openai,gpt-4o-*,2.00,1.00,8.00,2026-01-01,2026-11-10
openai,gpt-4o-*,1.00,0.50,4.00,2026-11-10,
openai,gpt-4o-mini,0.10,0.05,0.40,2026-01-01,
openai,acme_internal*,9,9,9,2026-01-01,
openai,acme-*,0.333333,0.111111,0.777777,2026-01-01,
google,gemini-1.5-flash,0.05,0.01,0.20,2026-11-01,
"""
# Changed before the second builds: gpt-4o-* is cheaper from 11-14 on.
PRICES_CHANGED = PRICES.replace("openai,gpt-4o-*,1.00,0.50,4.00,2026-11-10,\n",
                                "openai,gpt-4o-*,1.00,0.50,4.00,2026-11-10,2026-11-14\n"
                                "openai,gpt-4o-*,0.70,0.35,2.80,2026-11-14,\n")


def _run(env: dict, *argv: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, f"{' '.join(argv[:3])} failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    return proc


def _ingest(env: dict, *paths: Path) -> None:
    _run(env, sys.executable, "-m", "agent_analytics_cli", "ingest", *map(str, paths))


def _dbt_build(env: dict, engine: str, *, refresh: bool = False) -> None:
    """`dbt build` on `engine`, incremental when its tables exist: every model, test and unit
    test, or with `refresh` what the 5-minute refresh builds and tests."""
    settings = load_settings({**env, "AGENT_ANALYTICS_ENGINE": engine})
    target = settings.dbt_target_dir
    publish_prices(settings)  # what a build does around dbt (orchestration/defs/dbt)
    _run({**env, **settings.env()}, str(Path(sys.executable).with_name("dbt")), "build",
         "--project-dir", str(ROOT / "dbt_project"), "--profiles-dir", str(ROOT),
         "--target-path", str(target), "--log-path", str(target / "logs"), *(["--exclude", REFRESH_EXCLUDE] if refresh else []))
    promote_prices(settings)


def _spark_build(env: dict) -> None:
    """`agent-analytics build` on Spark: the Dagster job, incremental when the Spark tables exist."""
    _run({**env, "AGENT_ANALYTICS_ENGINE": "spark"}, sys.executable, "-m", "agent_analytics_cli", "build")


def _sort_key(row: tuple) -> tuple:
    return tuple("" if isinstance(v, float) else repr(v) for v in row)


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return a == b  # to the last of the 10 decimals, so to the cent
    return a == b


def _differences(env: dict) -> dict[str, str]:
    """mart -> the first difference between its DuckDB and its Spark rows (none when equal)."""
    settings = load_settings({**env, "AGENT_ANALYTICS_ENGINE": "spark"})
    found = {}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as duck, open_spark_marts(settings) as spark:
        for mart in marts():
            query = f'select {", ".join(mart.columns)} from main."{mart.name}"'
            ours = sorted(duck.execute(query).fetchall(), key=_sort_key)
            theirs = sorted(spark.execute(query).fetchall(), key=_sort_key)
            if len(ours) != len(theirs):
                found[mart.name] = f"{len(ours)} rows on DuckDB, {len(theirs)} on Spark"
                continue
            for row, other in zip(ours, theirs, strict=True):
                if not all(_same(a, b) for a, b in zip(row, other, strict=True)):
                    found[mart.name] = f"DuckDB {row} != Spark {other}"
                    break
    return found


def _close(ours, theirs, where: str = "") -> list[str]:
    """Where two metrics documents differ beyond float rounding (generated_at aside)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if ours.keys() != theirs.keys():
            return [f"{where}: keys {sorted(ours.keys() ^ theirs.keys())}"]
        return [d for k in ours if k != "generated_at" for d in _close(ours[k], theirs[k], f"{where}.{k}")]
    if isinstance(ours, list) and isinstance(theirs, list):
        if len(ours) != len(theirs):
            return [f"{where}: {len(ours)} != {len(theirs)} items"]
        return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for d in _close(a, b, f"{where}[{i}]")]
    return [] if _same(ours, theirs) else [f"{where}: {ours!r} != {theirs!r}"]


def _documents(env: dict) -> tuple[dict, dict]:
    """The metrics document of the generated month: computed on the DuckDB warehouse, and as
    `agent-analytics metrics` reads it after the Spark build (the serving copy)."""
    settings = load_settings({**env, "AGENT_ANALYTICS_ENGINE": "spark"})
    query = MetricsQuery(start=str(END - timedelta(days=29)), end=str(END), as_of=str(END + timedelta(days=1)))
    as_of = parse_as_of(query.as_of, settings.company_tz)
    period = parse_period(None, query.start, query.end, None, as_of, settings.company_tz)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as duck:
        duck.execute("set TimeZone = 'UTC'")
        ours = compute_metrics(duck, MetricsRequest(period=period, agents=None, as_of=as_of), settings)
    return ours, metrics_document(settings, query)


def _comparisons(env: dict) -> tuple[dict, dict]:
    """The A/B comparison of v1 and v2 of the busiest agent over the generated month: from the
    DuckDB warehouse, and from Spark's tables (the views `open_marts` reads them through before
    a serving copy exists)."""
    settings = load_settings({**env, "AGENT_ANALYTICS_ENGINE": "spark"})
    period = parse_period(None, str(END - timedelta(days=29)), str(END), None,
                          parse_as_of(str(END + timedelta(days=1)), settings.company_tz), settings.company_tz)
    documents = []
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as duck, open_spark_marts(settings) as spark:
        duck.execute("set TimeZone = 'UTC'")
        agent = duck.execute("select agent_id from fct_messages group by 1 order by count(*) desc, 1 limit 1").fetchone()[0]
        for con in (duck, spark):
            a, b, both = read_samples(con, agent, ("v1", "v2"), period)
            documents.append(comparison_document(agent={"agent_id": agent}, versions=("v1", "v2"), period=period,
                                                 as_of=period.end, a=a, b=b, users_in_both=both))
    return documents[0], documents[1]


def _price_sources(env: dict) -> dict[str, int]:
    with duckdb.connect(str(Path(env["AGENT_ANALYTICS_HOME"]) / "warehouse.duckdb"), read_only=True) as con:
        return dict(con.execute("select price_source, count(*) from fct_llm_calls group by 1").fetchall())


def _row_counts(env: dict) -> dict[str, int]:
    with duckdb.connect(str(Path(env["AGENT_ANALYTICS_HOME"]) / "warehouse.duckdb"), read_only=True) as con:
        return {m.name: con.execute(f'select count(*) from main."{m.name}"').fetchone()[0] for m in marts()}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The home after the first load, and the files of the second."""
    base = tmp_path_factory.mktemp("spark-parity")
    generate(base / "month", 20_000, 30, seed=16, end=END)
    late = base / "late" / f"events-{LATE_DAY.isoformat()}.jsonl"
    late.parent.mkdir()
    shutil.move(base / "month" / late.name, late)
    trace_start, trace_rest = base / "otel-start.jsonl", base / "late" / "otel-rest.jsonl"
    trace_start.write_text(lines(request(root_span(), chat1())))
    trace_rest.write_text(lines(request(chat2(), tool())))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENT_ANALYTICS_", "DBT_"))}
    env.pop("DAGSTER_HOME", None)
    (base / "prices.csv").write_text(PRICES)
    env.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ="America/New_York",
               AGENT_ANALYTICS_PRICES=str(base / "prices.csv"))
    _ingest(env, FIXTURES / "day1.jsonl", base / "month", trace_start)
    # provider bills (fct_bill_reconciliation): whole bills and model lines, a provider without calls
    bill = base / "bill.csv"
    bill.write_text("provider,month,amount_usd,model\nopenai,2026-11,123.45,\nanthropic,2026-10,5.5,\n"
                    "openai,2026-11,20.123456,gpt-4o-2024-08-06\nnobody,2026-11,9.99,\n")
    _run(env, sys.executable, "-m", "agent_analytics_cli", "bills", "import", str(bill))
    return env, [FIXTURES / "day2.jsonl", late, trace_rest]


def test_every_mart_is_the_same_on_spark_after_a_first_build_and_after_a_late_file(loaded):
    env, second_load = loaded
    _dbt_build(env, "duckdb")
    _spark_build(env)
    assert _differences(env) == {}
    first = _row_counts(env)
    assert min(first.values()) > 0, first  # every mart has rows to compare
    sources = _price_sources(env)
    assert {"reported", "company", "genai-prices"} <= sources.keys(), sources

    _ingest(env, *second_load)
    Path(env["AGENT_ANALYTICS_PRICES"]).write_text(PRICES_CHANGED)
    _dbt_build(env, "duckdb", refresh=True)
    _spark_build(env)
    assert _differences(env) == {}
    second = _row_counts(env)
    # the late file changed the row-level facts and the days they roll up into
    grown = ("fct_messages", "fct_llm_calls", "fct_sessions", "fct_agent_minute")
    assert all(second[m] > first[m] for m in grown), (first, second)
    # the revised trace counts once, with the calls of its latest revision (Spark appended it twice before)
    with open_spark_marts(load_settings({**env, "AGENT_ANALYTICS_ENGINE": "spark"})) as spark:
        assert spark.execute(f"select count(*) from fct_llm_calls where message_id = '{T1}'").fetchone()[0] == 2
        assert spark.execute(f"select count(*), max(revision) from fct_messages where message_id = '{T1}'").fetchone() == (1, 1)

    # what `metrics`, `export`, the service and BI tools read: the serving copy, from Spark's tables
    assert serving_database(load_settings(env)).exists()
    ours, theirs = _documents(env)
    assert ours["performance"]["messages"] > 20_000
    assert _close(ours, theirs) == []

    # the A/B comparison reads the same samples from Spark's tables (fct_sessions.agent_version too)
    ours, theirs = _comparisons(env)
    assert ours["metrics"]["messages"]["a"] > 1000 and ours["metrics"]["sessions"]["b"] > 100
    assert _close(ours, theirs) == []
