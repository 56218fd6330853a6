{#- Grain: one row per message event, with its call totals and cost.
    Incremental: each run appends the messages of batches loaded after the newest loaded_at it
    holds (strategy append_revisions, macros/revisions.sql). Ingest loads an event id once, except
    a message assembled from OpenTelemetry spans that gained spans later: its newer revision
    replaces its rows. Its call totals come from fct_llm_calls, whose costs apply the company's
    prices; a changed price rewrites the messages of the days it re-prices (repriced_days). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy=revision_strategy(),
        partition_by=day_partition('message_date'),
        unique_key='message_id',
        on_schema_change='fail',
        post_hook="{{ stored_in_order('occurred_at') }}",
    )
}}
{%- set repriced = repriced_days(ref('fct_llm_calls')) %}
{%- set repriced_rows = ('message_date in ' ~ repriced) if repriced else none %}

with

messages as (

    {{ loaded_since_last_run(ref('stg_raw__messages'), or_rows=repriced_rows) }}

),

llm_calls as (

    {{ loaded_since_last_run(ref('fct_llm_calls'), or_rows=repriced_rows) }}

),

call_totals as (

    select
        message_id,
        cast(sum(input_tokens) as bigint) as input_tokens,
        cast(sum(output_tokens) as bigint) as output_tokens,
        cast(sum(cache_read_tokens) as bigint) as cache_read_tokens,
        cast(sum(cost_usd) as decimal(38, 10)) as cost_usd,
        cast(sum(case when is_priced then 0 else 1 end) as bigint) as unpriced_call_count,
        cast(sum(case when is_priced then 0 else total_tokens end) as bigint) as unpriced_tokens
    from llm_calls
    group by message_id

),

final as (

    select
        messages.message_id,
        messages.user_id,
        messages.agent_id,
        messages.conversation_id,
        messages.agent_name,
        messages.agent_version,
        messages.status,
        messages.error_type,
        messages.response_time_ms,
        messages.llm_call_count,
        messages.tool_call_count,
        coalesce(call_totals.input_tokens, 0) as input_tokens,
        coalesce(call_totals.output_tokens, 0) as output_tokens,
        coalesce(call_totals.cache_read_tokens, 0) as cache_read_tokens,
        coalesce(call_totals.input_tokens, 0) + coalesce(call_totals.output_tokens, 0) as total_tokens,
        coalesce(call_totals.cost_usd, 0) as cost_usd,
        coalesce(call_totals.unpriced_call_count, 0) as unpriced_call_count,
        coalesce(call_totals.unpriced_tokens, 0) as unpriced_tokens,
        messages.is_error,
        messages.occurred_at,
        messages.message_date,
        cast(extract(hour from {{ to_company_time('messages.occurred_at') }}) as bigint) as message_hour,
        messages.loaded_at,
        messages.revision
    from messages
    left join call_totals on messages.message_id = call_totals.message_id

)

select * from final
