{#-
    Grain: one row per message, with the session it belongs to.
    A session is a maximal run of messages from one user to one agent in which each gap
    between consecutive messages is at most the inactivity timeout; a run longer than
    `session_max_hours` is cut into consecutive windows of that length counted from the
    run's first message (the first message at or after each cut starts a new session).
-#}
{%- set timeout_ms = var('session_timeout_minutes') | int * 60 * 1000 -%}
{%- set max_ms = var('session_max_hours') | int * 3600 * 1000 -%}

with

messages as (

    select
        message_id,
        user_id,
        agent_id,
        occurred_at,
        response_time_ms,
        is_error
    from {{ ref('stg_raw__messages') }}

),

previous_message_found as (

    select
        *,
        lag(occurred_at) over (
            partition by user_id, agent_id order by occurred_at, message_id
        ) as previous_occurred_at
    from messages

),

gaps_marked as (

    select
        *,
        case
            when previous_occurred_at is null then 1
            when {{ dbt.datediff('previous_occurred_at', 'occurred_at', 'millisecond') }} > {{ timeout_ms }} then 1
            else 0
        end as starts_run
    from previous_message_found

),

runs_numbered as (

    select
        *,
        sum(starts_run) over (
            partition by user_id, agent_id order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as run_number
    from gaps_marked

),

runs_started as (

    select
        *,
        min(occurred_at) over (partition by user_id, agent_id, run_number) as run_started_at
    from runs_numbered

),

runs_cut as (

    select
        *,
        floor({{ dbt.datediff('run_started_at', 'occurred_at', 'millisecond') }} / {{ max_ms }}) as cut_number
    from runs_started

),

sessions_started as (

    select
        *,
        min(occurred_at) over (partition by user_id, agent_id, run_number, cut_number) as session_started_at
    from runs_cut

),

final as (

    select
        message_id,
        {{ dbt.hash(dbt.concat([
            'user_id', "'|'", 'agent_id', "'|'",
            dbt.safe_cast('session_started_at', api.Column.translate_type('string'))
        ])) }} as session_id,
        user_id,
        agent_id,
        occurred_at,
        session_started_at,
        response_time_ms,
        is_error
    from sessions_started

)

select * from final
