{#- Grain: one row per company day and tool: calls, latency and error share. -#}

with

tool_calls as (

    select * from {{ ref('stg_raw__tool_calls') }}

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
        {{ percentile('latency_ms', 0.95) }} as p95_latency_ms
    from tool_calls
    group by call_date, tool_name

)

select * from final
