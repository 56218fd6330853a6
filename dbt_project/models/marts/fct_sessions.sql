{#- Grain: one row per session (see int_messages_sessionized). A session belongs to the
    company day on which it starts. -#}

with

sessionized_messages as (

    select * from {{ ref('int_messages_sessionized') }}

),

sessions_aggregated as (

    select
        session_id,
        user_id,
        agent_id,
        min(session_started_at) as session_started_at,
        max(occurred_at) as last_message_at,
        {{ arg_max_value('coalesce(response_time_ms, 0)', 'occurred_at') }} as last_response_time_ms,
        count(*) as message_count,
        sum(case when is_error then 1 else 0 end) as error_count
    from sessionized_messages
    group by session_id, user_id, agent_id

),

final as (

    select
        session_id,
        user_id,
        agent_id,
        {{ to_company_date('session_started_at') }} as session_date,
        session_started_at,
        last_message_at,
        {{ dbt.datediff('session_started_at', 'last_message_at', 'millisecond') }} + last_response_time_ms as duration_ms,
        message_count,
        error_count
    from sessions_aggregated

)

select * from final
