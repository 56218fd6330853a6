{#- Grain: one row per company-time-zone hour that had messages, over all agents (key
    hour_at, the hour's start in UTC). The hour-by-hour series of the metrics document
    (messages, errors, error rate, P95): percentiles over all agents cannot be derived from
    fct_agent_hourly, so they are computed here from the messages themselves.
    Incremental: rebuilds every hour that newly loaded messages touch (see bucket_facts). -#}
{{
    config(
        materialized=incremental_or_table(),
        unique_key='hour_at',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

{{ bucket_facts(ref('fct_messages'), 'hour', to_company_hour_start('occurred_at')) }},

final as (

    select
        hour_at,
        {{ to_company_date('hour_at') }} as hour_date,
        cast(hour({{ to_company_time('hour_at') }}) as integer) as local_hour,
        messages,
        errors,
        timed_messages,
        total_response_time_ms,
        avg_response_time_ms,
        p50_response_time_ms,
        p95_response_time_ms,
        max_loaded_at
    from hour_facts

)

select * from final
