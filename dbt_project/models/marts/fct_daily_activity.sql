{#- Grain: one row per company day from the first to the last day with messages, days without
    traffic included as zero rows. DAU/WAU/MAU are distinct users over 1/7/30-day windows
    ending on the day (the active_users macro of macros/metrics.sql, which the metrics layer
    shares).
    Incremental: rebuilds every day from the earliest day that newly loaded messages touch (see
    affected_days), or the day after the last day built if earlier, to the last, since a user active on day d counts in the WAU and MAU of the
    29 days after it. The rebuild reads the messages of 29 days before that point on, all that
    those windows need. -#}
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
{#- From the first affected day, or the day after the last one built if that is earlier: days
    without traffic between the last built day and new messages a few days later are rows too. -#}
{%- set rebuild_from = query_literal(
    "select least((select min(affected_date) from (" ~ affected_days(ref('fct_messages')) ~ ") as affected), "
    ~ "(select " ~ dbt.dateadd('day', 1, 'max(activity_date)') ~ " from " ~ this ~ "))", 'date', '9999-12-31') -%}
{%- endif %}

with

messages as (

    select * from {{ ref('fct_messages') }}
    {% if is_incremental() %}
    where message_date >= {{ dbt.dateadd('day', -29, rebuild_from) }}
    {% endif %}

),

agent_days as (

    select * from {{ ref('fct_agent_daily') }}
    {% if is_incremental() %}
    where activity_date >= {{ rebuild_from }}
    {% endif %}

),

user_days as (

    select distinct
        user_id,
        message_date as active_date
    from messages

),

days as (

    select spine.spine_date as activity_date
    from (
        {{ day_spine('(select min(active_date) from user_days)', '(select max(active_date) from user_days)') }}
    ) as spine

),

active_users_counted as (

    {{ active_users('user_days', 'days') }}

),

daily_totals as (

    select
        activity_date,
        sum(messages) as messages,
        sum(sessions) as sessions,
        sum(errors) as errors,
        sum(timed_messages) as timed_messages,
        sum(total_response_time_ms) as total_response_time_ms,
        sum(total_session_duration_ms) as total_session_duration_ms,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(cost_usd) as cost_usd,
        sum(unpriced_calls) as unpriced_calls,
        count(*) as active_agents,
        max(max_loaded_at) as max_loaded_at
    from agent_days
    group by activity_date

),

final as (

    select
        active_users_counted.activity_date,
        active_users_counted.dau,
        active_users_counted.wau,
        active_users_counted.mau,
        cast(coalesce(daily_totals.messages, 0) as bigint) as messages,
        cast(coalesce(daily_totals.sessions, 0) as bigint) as sessions,
        coalesce(daily_totals.active_agents, 0) as active_agents,
        cast(coalesce(daily_totals.errors, 0) as bigint) as errors,
        cast(coalesce(daily_totals.timed_messages, 0) as bigint) as timed_messages,
        coalesce(daily_totals.total_response_time_ms, 0) as total_response_time_ms,
        coalesce(daily_totals.total_session_duration_ms, 0) as total_session_duration_ms,
        cast(coalesce(daily_totals.input_tokens, 0) as bigint) as input_tokens,
        cast(coalesce(daily_totals.output_tokens, 0) as bigint) as output_tokens,
        coalesce(daily_totals.cost_usd, 0) as cost_usd,
        cast(coalesce(daily_totals.unpriced_calls, 0) as bigint) as unpriced_calls,
        daily_totals.max_loaded_at
    from active_users_counted
    left join daily_totals on active_users_counted.activity_date = daily_totals.activity_date
    {% if is_incremental() %}
    where active_users_counted.activity_date >= {{ rebuild_from }}
    {% endif %}

)

select * from final
