"""dbt models as Dagster assets (see definitions.build_defs)."""
