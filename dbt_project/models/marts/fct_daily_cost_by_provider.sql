{#- Grain: one row per company day and provider (see the daily_cost_rollup macro).
    Incremental: rebuilds the days that newly loaded calls touch. -#}
{{
    config(
        materialized='incremental',
        unique_key='cost_date',
        incremental_strategy=rebuild_strategy(),
        partition_by=day_partition('cost_date'),
        on_schema_change='fail',
    )
}}

{{ daily_cost_rollup(['provider']) }}
