{#- Grain: one row per tool call, with its message's agent and user.
    Incremental: each run appends the calls of batches loaded after the newest loaded_at it
    holds (strategy append_revisions, macros/revisions.sql). Ingest loads an event id once, except
    a message assembled from OpenTelemetry spans that gained spans later: its newer revision
    replaces its rows. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy=revision_strategy(),
        partition_by=day_partition('message_date'),
        unique_key='message_id',
        on_schema_change='fail',
    )
}}

with

tool_calls as (

    {{ loaded_since_last_run(ref('stg_raw__tool_calls'), day_column='call_date') }}

),

messages as (

    {{ loaded_since_last_run(ref('stg_raw__messages'), 'message_id, user_id, agent_id, message_date, loaded_at') }}

),

final as (

    select
        tool_calls.tool_call_id,
        tool_calls.message_id,
        tool_calls.call_index,
        messages.user_id,
        messages.agent_id,
        tool_calls.tool_name,
        tool_calls.status,
        tool_calls.latency_ms,
        tool_calls.is_error,
        tool_calls.occurred_at,
        messages.message_date,
        tool_calls.loaded_at,
        tool_calls.revision
    from tool_calls
    inner join messages on tool_calls.message_id = messages.message_id

)

select * from final
