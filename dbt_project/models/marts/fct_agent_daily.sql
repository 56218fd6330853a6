{#- Grain: one row per company day and agent that had messages. The measures are the metrics
    layer's own (macros/metrics.sql).
    Incremental: rebuilds the days that newly loaded messages touch (see affected_days). -#}
{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy=rebuild_strategy(),
        partition_by=day_partition('activity_date'),
        on_schema_change='fail',
    )
}}
{{ affected_days_depends_on() }}
{%- if is_incremental() -%}
{%- set first_day = first_affected_day(ref('fct_messages')) -%}
{%- endif %}

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
        {{ message_measures() }},
        count(distinct user_id) as active_users,
        avg(response_time_ms) as avg_response_time_ms,
        {{ percentile('response_time_ms', 0.5) }} as p50_response_time_ms,
        {{ percentile('response_time_ms', 0.95) }} as p95_response_time_ms,
        {{ percentile('response_time_ms', 0.99) }} as p99_response_time_ms,
        max(loaded_at) as max_loaded_at
    from messages
    {% if is_incremental() %}
    where message_date >= {{ first_day }} and message_date in (select affected.affected_date from affected)
    {% endif %}
    group by message_date, agent_id

),

session_facts as (

    select
        session_date as activity_date,
        agent_id,
        {{ session_measures() }}
    from sessions
    {% if is_incremental() %}
    where session_date >= {{ first_day }} and session_date in (select affected.affected_date from affected)
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
        on
            message_facts.activity_date = session_facts.activity_date
            and message_facts.agent_id = session_facts.agent_id

)

select * from final
