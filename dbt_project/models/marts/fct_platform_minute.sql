{#- Grain: one row per UTC minute that had messages, over all agents (key minute_at).
    Feeds the minute-level alert rules over all agents: percentiles over all agents cannot be
    derived from fct_agent_minute, so they are computed here from the messages themselves.
    Incremental: rebuilds every minute that newly loaded messages touch (see minute_facts). -#}
{{
    config(
        materialized=incremental_or_table(),
        unique_key='minute_at',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

{{ minute_facts(ref('fct_messages')) }},

final as (

    select * from minute_facts

)

select * from final
