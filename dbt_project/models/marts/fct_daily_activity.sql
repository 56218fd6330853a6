{#- Grain: one row per company day from the first to the last day with messages, days without
    traffic included as zero rows. DAU/WAU/MAU are distinct users over 1/7/30-day windows
    ending on the day, never sums of daily counts: each active day of a user opens a window
    that the user's next active day takes over, and a running sum of window starts and ends
    counts the users whose window covers each day. -#}

with

messages as (

    select * from {{ ref('fct_messages') }}

),

agent_days as (

    select * from {{ ref('fct_agent_daily') }}

),

user_days as (

    select distinct user_id, message_date as active_date
    from messages

),

next_active_day_found as (

    select
        user_id,
        active_date,
        lead(active_date) over (partition by user_id order by active_date) as next_active_date
    from user_days

),

window_edges as (

    select active_date as edge_date, 1 as dau_change, 1 as wau_change, 1 as mau_change
    from next_active_day_found

    union all

    select {{ dbt.dateadd('day', 1, 'active_date') }}, -1, 0, 0
    from next_active_day_found

    union all

    select
        case
            when next_active_date is not null and next_active_date < {{ dbt.dateadd('day', 7, 'active_date') }}
                then next_active_date
            else {{ dbt.dateadd('day', 7, 'active_date') }}
        end,
        0, -1, 0
    from next_active_day_found

    union all

    select
        case
            when next_active_date is not null and next_active_date < {{ dbt.dateadd('day', 30, 'active_date') }}
                then next_active_date
            else {{ dbt.dateadd('day', 30, 'active_date') }}
        end,
        0, 0, -1
    from next_active_day_found

),

daily_changes as (

    select
        cast(edge_date as date) as edge_date,
        sum(dau_change) as dau_change,
        sum(wau_change) as wau_change,
        sum(mau_change) as mau_change
    from window_edges
    group by cast(edge_date as date)

),

days as (

    {{ day_spine('(select min(active_date) from user_days)', '(select max(active_date) from user_days)') }}

),

active_users_counted as (

    select
        days.spine_date as activity_date,
        sum(coalesce(daily_changes.dau_change, 0)) over (order by days.spine_date rows between unbounded preceding and current row) as dau,
        sum(coalesce(daily_changes.wau_change, 0)) over (order by days.spine_date rows between unbounded preceding and current row) as wau,
        sum(coalesce(daily_changes.mau_change, 0)) over (order by days.spine_date rows between unbounded preceding and current row) as mau
    from days
    left join daily_changes on daily_changes.edge_date = days.spine_date

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
        count(*) as active_agents
    from agent_days
    group by activity_date

),

final as (

    select
        active_users_counted.activity_date,
        cast(active_users_counted.dau as bigint) as dau,
        cast(active_users_counted.wau as bigint) as wau,
        cast(active_users_counted.mau as bigint) as mau,
        coalesce(daily_totals.messages, 0) as messages,
        coalesce(daily_totals.sessions, 0) as sessions,
        coalesce(daily_totals.active_agents, 0) as active_agents,
        coalesce(daily_totals.errors, 0) as errors,
        coalesce(daily_totals.timed_messages, 0) as timed_messages,
        coalesce(daily_totals.total_response_time_ms, 0) as total_response_time_ms,
        coalesce(daily_totals.total_session_duration_ms, 0) as total_session_duration_ms,
        coalesce(daily_totals.input_tokens, 0) as input_tokens,
        coalesce(daily_totals.output_tokens, 0) as output_tokens,
        coalesce(daily_totals.cost_usd, 0) as cost_usd,
        coalesce(daily_totals.unpriced_calls, 0) as unpriced_calls
    from active_users_counted
    left join daily_totals on daily_totals.activity_date = active_users_counted.activity_date

)

select * from final
