{#- Grain: one row per company day, user and agent with messages (surrogate key
    user_day_key). The users behind the numbers: top users by messages, sessions and cost,
    active users per day and one user's activity read these rows, never fct_messages.
    Incremental: rebuilds the days that newly loaded messages touch (see affected_days), like
    fct_agent_daily. -#}
{{
    config(
        materialized='incremental',
        unique_key='activity_date',
        incremental_strategy=rebuild_strategy(),
        partition_by=day_partition('activity_date'),
        on_schema_change='fail',
        post_hook="{{ stored_in_order('activity_date') }}",
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
        user_id,
        agent_id,
        {{ message_measures() }},
        min(occurred_at) as first_message_at,
        max(occurred_at) as last_message_at,
        max(loaded_at) as max_loaded_at
    from messages
    {% if is_incremental() %}
    where message_date >= {{ first_day }} and message_date in (select affected.affected_date from affected)
    {% endif %}
    group by message_date, user_id, agent_id

),

session_facts as (

    select
        session_date as activity_date,
        user_id,
        agent_id,
        {{ session_measures() }}
    from sessions
    {% if is_incremental() %}
    where session_date >= {{ first_day }} and session_date in (select affected.affected_date from affected)
    {% endif %}
    group by session_date, user_id, agent_id

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('message_facts.activity_date', api.Column.translate_type('string')), "'|'",
            'message_facts.user_id', "'|'", 'message_facts.agent_id'
        ])) }} as user_day_key,
        message_facts.activity_date,
        message_facts.user_id,
        message_facts.agent_id,
        message_facts.messages,
        coalesce(session_facts.sessions, 0) as sessions,
        message_facts.errors,
        message_facts.input_tokens,
        message_facts.output_tokens,
        message_facts.total_tokens,
        message_facts.cost_usd,
        message_facts.first_message_at,
        message_facts.last_message_at,
        message_facts.max_loaded_at
    from message_facts
    left join session_facts
        on
            message_facts.activity_date = session_facts.activity_date
            and message_facts.user_id = session_facts.user_id
            and message_facts.agent_id = session_facts.agent_id

)

select * from final
