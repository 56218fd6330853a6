"""Blocking asset checks: a failed Great Expectations suite stops the exports downstream."""


import dagster as dg

from orchestration.defs.quality.suites import SUITES, validate
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import Warehouse


def _make_check(table: str) -> dg.AssetChecksDefinition:
    query, suite = SUITES[table]

    @dg.asset_check(
        asset=dg.AssetKey([table]),
        name=f"gx_{table}",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"Great Expectations suite on {table} ({len(suite)} expectations).",
    )
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.marts() as con:
            df = con.execute(query).df()
        result = validate(df, suite, table)
        return dg.AssetCheckResult(
            passed=result.success,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows": len(df), "expectations": result.evaluated, "failed": ", ".join(result.failed) or "none"},
        )

    return _check


defs = dg.Definitions(asset_checks=[_make_check(table) for table in SUITES])
