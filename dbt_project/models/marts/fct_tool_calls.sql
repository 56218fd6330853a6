{#- Grain: one row per tool call, with its message's agent and user.
    Incremental: each run adds the calls of batches loaded since the last run. Strategy
    replace_from on loaded_at: ingest loads an event id once, so a key can only recur among
    rows loaded since then, and the delete skips every older table segment. -#}
{{
    config(
        materialized='incremental',
        unique_key='tool_call_id',
        incremental_strategy=rebuild_strategy(replace_from=true),
        replace_from='loaded_at',
        on_schema_change='fail',
    )
}}

with

tool_calls as (

    {{ loaded_since_last_run(ref('stg_raw__tool_calls')) }}

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
        tool_calls.loaded_at
    from tool_calls
    inner join messages on messages.message_id = tool_calls.message_id

)

select * from final
