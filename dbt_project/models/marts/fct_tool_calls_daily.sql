{#- Grain: one row per company day and tool: calls, latency and error share.
    Incremental: rebuilds whole the days of tool calls loaded since the last run (a call's
    day never changes, so no other day can). -#}
{{
    config(
        materialized='incremental',
        unique_key='call_date',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='append_new_columns',
    )
}}
{%- if is_incremental() -%}
    {#- A table built before max_loaded_at existed is rebuilt whole once. -#}
    {%- set has_watermark = 'max_loaded_at' in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
    {%- set watermark = loaded_watermark() if has_watermark else sql_literal('1900-01-01 00:00:00') -%}
    {#- No call of a day touched by a new call is more than 25 hours (a day, and a daylight-saving
        hour) before the earliest new call: a literal bound that skips older Parquet row groups. -#}
    {%- set first_new_at = query_literal(
        "select min(occurred_at) from " ~ ref('stg_raw__tool_calls') ~ " where loaded_at > " ~ watermark,
        'timestamp', '9999-12-31 00:00:00') -%}
{%- endif %}

with

tool_calls as (

    select * from {{ ref('stg_raw__tool_calls') }}
    {% if is_incremental() %}
    where occurred_at >= {{ dbt.dateadd('hour', -25, first_new_at) }}
        and call_date in (
            select distinct call_date from {{ ref('stg_raw__tool_calls') }}
            where loaded_at > {{ watermark }}
        )
    {% endif %}

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('call_date', api.Column.translate_type('string')), "'|'", 'tool_name'
        ])) }} as tool_day_key,
        call_date,
        tool_name,
        count(*) as calls,
        sum(case when is_error then 1 else 0 end) as errors,
        avg(latency_ms) as avg_latency_ms,
        {{ percentile('latency_ms', 0.95) }} as p95_latency_ms,
        max(loaded_at) as max_loaded_at
    from tool_calls
    group by call_date, tool_name

)

select * from final
