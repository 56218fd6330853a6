{#- Grain: one row per UTC minute and agent that had messages (surrogate key agent_minute_key).
    Feeds the minute-level alert rules scoped to one agent.
    Incremental: rebuilds every minute that newly loaded messages touch (see minute_facts). -#}
{{
    config(
        materialized=incremental_or_table(),
        unique_key='minute_at',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

{{ minute_facts(ref('fct_messages'), ['agent_id']) }},

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('minute_at', api.Column.translate_type('string')), "'|'", 'agent_id'
        ])) }} as agent_minute_key,
        *
    from minute_facts

)

select * from final
