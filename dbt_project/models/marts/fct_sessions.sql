{#- Grain: one row per session (see int_messages_sessionized). A session belongs to the
    company day on which it starts.
    Incremental: the sessions of every (user, agent) with newly loaded messages are deleted
    and rebuilt from all of that pair's messages. -#}
{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'agent_id'],
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

with

all_sessionized_messages as (

    select * from {{ ref('int_messages_sessionized') }}

),

{% if is_incremental() %}
changed_pairs as (

    select distinct user_id, agent_id
    from all_sessionized_messages
    where loaded_at > (select coalesce(max(max_loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})

),

sessionized_messages as (

    select all_sessionized_messages.*
    from all_sessionized_messages
    inner join changed_pairs
        on changed_pairs.user_id = all_sessionized_messages.user_id
        and changed_pairs.agent_id = all_sessionized_messages.agent_id

),
{% else %}
sessionized_messages as (

    select * from all_sessionized_messages

),
{% endif %}

sessions_aggregated as (

    select
        session_id,
        user_id,
        agent_id,
        min(session_started_at) as session_started_at,
        max(occurred_at) as last_message_at,
        {{ arg_max_value('coalesce(response_time_ms, 0)', 'occurred_at') }} as last_response_time_ms,
        count(*) as message_count,
        sum(case when is_error then 1 else 0 end) as error_count,
        max(loaded_at) as max_loaded_at
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
        error_count,
        max_loaded_at
    from sessions_aggregated

)

select * from final
