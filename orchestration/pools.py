"""Dagster pools. Every step that opens the DuckDB warehouse runs in WAREHOUSE_POOL, whose
limit is 1 (set in the instance's dagster.yaml, see instance.py): runs launched together
queue for the warehouse instead of failing on DuckDB's single-writer lock."""

WAREHOUSE_POOL = "warehouse"
