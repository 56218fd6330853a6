{#- Grain: one row per session (see int_messages_sessionized). A session belongs to the
    company day on which it starts, and to the agent version of its first message (the A/B
    comparison's per-session unit, agent_analytics/comparison/).
    Incremental: for every (user, agent) with newly loaded messages, the sessions that start
    at or after `rebuild_from` (the earliest start of a session holding a newly loaded
    message) are deleted and rebuilt from their messages (strategy replace_from). Earlier
    sessions cannot change: int_messages_sessionized only re-sessionizes a pair from the
    start of the run a new message joins, and the sessions of that run before the new
    message's keep their start and their messages. On Spark (insert_overwrite by
    session_date) every session of every pair that starts on or after the day of
    `rebuild_from` is rebuilt: each of those days is rewritten whole. -#}
{{
    config(
        materialized='incremental',
        unique_key=['user_id', 'agent_id'],
        incremental_strategy=rebuild_strategy(replace_from=true),
        partition_by=day_partition('session_date'),
        replace_from='session_started_at',
        on_schema_change='fail',
        post_hook="{{ stored_in_order('session_started_at') }}",
    )
}}
{%- if is_incremental() -%}
{#- rebuild_from is queried when the model runs (run_query) and written in as a literal, so that
    the scan of int_messages_sessionized skips its older segments: as a scalar subquery DuckDB
    does not push it into the scan. -#}
{%- set watermark = loaded_watermark() -%}
{%- set rebuild_from = query_literal(
    "select min(session_started_at) from " ~ ref('int_messages_sessionized') ~ " where loaded_at > " ~ watermark,
    'timestamp', '9999-12-31 00:00:00') -%}
{%- endif %}

with

all_sessionized_messages as (

    select * from {{ ref('int_messages_sessionized') }}

),

{% if is_incremental() and target.type == 'spark' %}
sessionized_messages as (

    select all_sessionized_messages.*
    from all_sessionized_messages
    where {{ to_company_date('all_sessionized_messages.session_started_at') }} >= {{ to_company_date(rebuild_from) }}

),
{% elif is_incremental() %}
changed_pairs as (

    select distinct
        user_id,
        agent_id
    from {{ ref('int_messages_sessionized') }}
    where loaded_at > {{ watermark }}

),

sessionized_messages as (

    select all_sessionized_messages.*
    from all_sessionized_messages
    inner join changed_pairs
        on
            all_sessionized_messages.user_id = changed_pairs.user_id
            and all_sessionized_messages.agent_id = changed_pairs.agent_id
    where all_sessionized_messages.session_started_at >= {{ rebuild_from }}

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
        {{ first_value_by('agent_version', ['occurred_at', 'message_id']) }} as agent_version,
        min(session_started_at) as session_started_at,
        max(occurred_at) as last_message_at,
        {{ arg_max_value('coalesce(response_time_ms, 0)', ['occurred_at', 'message_id']) }} as last_response_time_ms,
        count(*) as message_count,
        cast(sum(case when is_error then 1 else 0 end) as bigint) as error_count,
        max(loaded_at) as max_loaded_at
    from sessionized_messages
    group by session_id, user_id, agent_id

),

final as (

    select
        session_id,
        user_id,
        agent_id,
        agent_version,
        {{ to_company_date('session_started_at') }} as session_date,
        session_started_at,
        last_message_at,
        {{ dbt.datediff('session_started_at', 'last_message_at', 'millisecond') }}
        + last_response_time_ms as duration_ms,
        message_count,
        error_count,
        max_loaded_at
    from sessions_aggregated

)

select * from final
