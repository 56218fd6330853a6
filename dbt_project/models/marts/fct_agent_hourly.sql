{#- Grain: one row per company-time-zone hour and agent that had messages (surrogate key
    agent_hour_key). The hour-by-hour series of a document scoped to one agent.
    Incremental: rebuilds every hour that newly loaded messages touch (see bucket_facts). -#}
{{
    config(
        materialized=incremental_or_table(),
        unique_key='hour_at',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

{{ bucket_facts(ref('fct_messages'), 'hour', to_company_hour_start('occurred_at'), ['agent_id']) }},

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('hour_at', api.Column.translate_type('string')), "'|'", 'agent_id'
        ])) }} as agent_hour_key,
        hour_at,
        agent_id,
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
