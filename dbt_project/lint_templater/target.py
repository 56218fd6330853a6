"""`target` for sqlfluff's jinja templater: the DuckDB target of profiles.yml."""

type = "duckdb"  # noqa: A001 - dbt's attribute name
schema = "main"
