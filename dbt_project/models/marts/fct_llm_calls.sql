{#- Grain: one row per LLM call, with the message's agent and user and the call's cost.
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

llm_calls as (

    {{ loaded_since_last_run(ref('stg_raw__llm_calls'), day_column='call_date') }}

),

messages as (

    {{ loaded_since_last_run(ref('stg_raw__messages'), 'message_id, user_id, agent_id, message_date, loaded_at') }}

),

final as (

    select
        llm_calls.llm_call_id,
        llm_calls.message_id,
        llm_calls.call_index,
        messages.user_id,
        messages.agent_id,
        llm_calls.provider,
        llm_calls.provider_raw,
        llm_calls.model,
        llm_calls.cost_source,
        llm_calls.input_tokens,
        llm_calls.output_tokens,
        llm_calls.cache_read_tokens,
        llm_calls.total_tokens,
        llm_calls.reported_cost_usd,
        llm_calls.estimated_cost_usd,
        llm_calls.cost_usd,
        llm_calls.latency_ms,
        llm_calls.is_priced,
        llm_calls.occurred_at,
        messages.message_date,
        llm_calls.loaded_at,
        llm_calls.revision
    from llm_calls
    inner join messages on llm_calls.message_id = messages.message_id

)

select * from final
