{#- Grain: one row per company day and agent that had messages.
    Incremental: rebuilds the days that newly loaded messages touch (see affected_days). -#}
{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

with

messages as (

    select * from {{ ref('fct_messages') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

{% if is_incremental() %}
affected as (

    {{ affected_days(ref('fct_messages')) }}

),
{% endif %}

message_facts as (

    select
        message_date as activity_date,
        agent_id,
        count(*) as messages,
        count(distinct user_id) as active_users,
        {{ response_time_facts(with_p99=true) }}
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(total_tokens) as total_tokens,
        sum(cost_usd) as cost_usd,
        sum(llm_call_count) as llm_calls,
        sum(unpriced_call_count) as unpriced_calls,
        sum(unpriced_tokens) as unpriced_tokens,
        max(loaded_at) as max_loaded_at
    from messages
    {% if is_incremental() %}
    where message_date in (select affected_date from affected)
    {% endif %}
    group by message_date, agent_id

),

session_facts as (

    select
        session_date as activity_date,
        agent_id,
        count(*) as sessions,
        sum(duration_ms) as total_session_duration_ms
    from sessions
    {% if is_incremental() %}
    where session_date in (select affected_date from affected)
    {% endif %}
    group by session_date, agent_id

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('message_facts.activity_date', api.Column.translate_type('string')), "'|'", 'message_facts.agent_id'
        ])) }} as agent_day_key,
        message_facts.activity_date,
        message_facts.agent_id,
        message_facts.messages,
        message_facts.active_users,
        coalesce(session_facts.sessions, 0) as sessions,
        coalesce(session_facts.total_session_duration_ms, 0) as total_session_duration_ms,
        message_facts.errors,
        message_facts.timed_messages,
        message_facts.total_response_time_ms,
        message_facts.avg_response_time_ms,
        message_facts.p50_response_time_ms,
        message_facts.p95_response_time_ms,
        message_facts.p99_response_time_ms,
        message_facts.input_tokens,
        message_facts.output_tokens,
        message_facts.total_tokens,
        message_facts.cost_usd,
        message_facts.llm_calls,
        message_facts.unpriced_calls,
        message_facts.unpriced_tokens,
        message_facts.max_loaded_at
    from message_facts
    left join session_facts
        on session_facts.activity_date = message_facts.activity_date
        and session_facts.agent_id = message_facts.agent_id

)

select * from final
