{#-
    Grain: one row per message, with the session it belongs to.
    Incremental: for each (user, agent) with newly loaded messages, messages are
    re-sessionized from the start of the earliest gap-run that a new message can touch (the
    run with a message within one timeout before the pair's first new message); earlier runs
    cannot change, so the result equals a full rebuild.
    A session is a maximal run of messages from one user to one agent in which each gap
    between consecutive messages is at most the inactivity timeout; a run longer than
    `session_max_hours` is cut into consecutive windows of that length counted from the
    run's first message (the first message at or after each cut starts a new session).
-#}
{%- set timeout_ms = var('session_timeout_minutes') | int * 60 * 1000 -%}
{%- set max_ms = var('session_max_hours') | int * 3600 * 1000 -%}
{%- if is_incremental() -%}
{#- Queried when the model runs (run_query) and written in as literals, so that the scans
    below skip old Parquet row groups and table segments: the earliest occurred_at among
    messages loaded since this model's watermark, and a bound no rebuild point is below (the
    earliest run start among messages at most one timeout before that). Not scalar subqueries:
    the second is a bound on occurred_at derived from the first through this model's run
    starts, and least() of the two is a filter DuckDB does not push into the scans (each would
    read every stored message). -#}
{%- set watermark = loaded_watermark('loaded_at') -%}
{%- set first_new_at = query_literal(
    "select min(occurred_at) from " ~ ref('stg_raw__messages') ~ " where loaded_at > " ~ watermark,
    'timestamp', '9999-12-31 00:00:00') -%}
{%- set touch_from = dbt.dateadd('millisecond', -timeout_ms, first_new_at) -%}
{%- set rebuild_floor = query_literal(
    "select min(run_started_at) from " ~ this ~ " where occurred_at >= " ~ touch_from,
    'timestamp', '9999-12-31 00:00:00') -%}
{%- endif %}
{{
    config(
        materialized=incremental_or_table(),
        unique_key='message_id',
        incremental_strategy=rebuild_strategy(replace_from=true),
        replace_from='occurred_at',
        on_schema_change='fail',
    )
}}

with

all_messages as (

    select
        message_id,
        user_id,
        agent_id,
        agent_version,
        occurred_at,
        response_time_ms,
        is_error,
        loaded_at
    from {{ ref('stg_raw__messages') }}

),

{% if is_incremental() %}
new_pairs as (

    select
        user_id,
        agent_id,
        min(occurred_at) as first_new_at
    from {{ ref('stg_raw__messages') }}
    where loaded_at > {{ watermark }}
    group by user_id, agent_id

),

touched_runs as (

    select
        sessionized.user_id,
        sessionized.agent_id,
        min(sessionized.run_started_at) as run_started_at
    from {{ this }} as sessionized
    inner join new_pairs
        on sessionized.user_id = new_pairs.user_id and sessionized.agent_id = new_pairs.agent_id
    where
        sessionized.occurred_at >= {{ touch_from }}
        and sessionized.occurred_at >= {{ dbt.dateadd('millisecond', -timeout_ms, 'new_pairs.first_new_at') }}
    group by sessionized.user_id, sessionized.agent_id

),

rebuild_points as (

    select
        new_pairs.user_id,
        new_pairs.agent_id,
        case
            when touched_runs.run_started_at < new_pairs.first_new_at then touched_runs.run_started_at
            else new_pairs.first_new_at
        end as rebuild_from_at
    from new_pairs
    left join touched_runs
        on new_pairs.user_id = touched_runs.user_id and new_pairs.agent_id = touched_runs.agent_id

),

messages as (

    select all_messages.*
    from all_messages
    inner join rebuild_points
        on all_messages.user_id = rebuild_points.user_id and all_messages.agent_id = rebuild_points.agent_id
    where
        all_messages.occurred_at >= rebuild_points.rebuild_from_at
        and all_messages.occurred_at >= least({{ rebuild_floor }}, {{ first_new_at }})

),
{% else %}
messages as (

    select * from all_messages

),
{% endif %}

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

runs_started as (

    -- the latest run start so far is this message's run start (one ordered window instead
    -- of numbering the runs and then partitioning by run)
    select
        *,
        max(case when starts_run = 1 then occurred_at end) over (
            partition by user_id, agent_id order by occurred_at, message_id
            rows between unbounded preceding and current row
        ) as run_started_at
    from gaps_marked

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
        min(occurred_at) over (partition by user_id, agent_id, run_started_at, cut_number) as session_started_at
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
        agent_version,
        occurred_at,
        run_started_at,
        session_started_at,
        response_time_ms,
        is_error,
        loaded_at
    from sessions_started

)

-- stored in time order: the incremental scans and deletes above skip older segments
select * from final
order by occurred_at
