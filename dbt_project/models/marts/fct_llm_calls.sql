{#- Grain: one row per LLM call, with the message's agent and user and the call's cost.
    Incremental: each run appends the calls of batches loaded after the newest loaded_at it
    holds (strategy append_revisions, macros/revisions.sql). Ingest loads an event id once, except
    a message assembled from OpenTelemetry spans that gained spans later: its newer revision
    replaces its rows. A changed company price re-prices the stored calls it matches: the run
    rewrites every call of the messages of their days (repriced_days, macros/company_prices.sql).
    Cost: reported, else the company's price (valid on the call's company day, exact model
    before the most specific pattern), else the genai-prices estimate made at ingest. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy=revision_strategy(),
        partition_by=day_partition('message_date'),
        unique_key='message_id',
        on_schema_change='fail',
    )
}}
{%- set repriced = repriced_days(this) %}

with

messages as (

    {{ loaded_since_last_run(
        ref('stg_raw__messages'), 'message_id, user_id, agent_id, message_date, loaded_at',
        or_rows=('message_date in ' ~ repriced) if repriced else none) }}

),

llm_calls as (

    {{ loaded_since_last_run(
        ref('stg_raw__llm_calls'), day_column='call_date',
        or_rows=('message_id in (select message_id from messages)') if repriced else none) }}

),

company_prices as (

    select * from {{ ref('stg_prices__company_prices') }}

),

price_keys as (

    select distinct
        provider,
        model,
        call_date
    from llm_calls
    where reported_cost_usd is null

),

ranked_prices as (

    select
        price_keys.provider,
        price_keys.model,
        price_keys.call_date,
        company_prices.input_rate,
        company_prices.cache_read_rate,
        company_prices.output_rate,
        row_number() over (
            partition by price_keys.provider, price_keys.model, price_keys.call_date
            order by
                case when company_prices.is_pattern then 1 else 0 end asc,
                company_prices.literal_chars desc,
                company_prices.model asc
        ) as price_rank
    from price_keys
    inner join company_prices
        on {{ company_price_matches('price_keys', 'company_prices', 'price_keys.call_date') }}

),

call_prices as (

    select * from ranked_prices
    where price_rank = 1

),

priced as (

    select
        llm_calls.*,
        case
            when llm_calls.reported_cost_usd is null then {{ company_cost('llm_calls', 'call_prices') }}
        end as company_cost_usd
    from llm_calls
    left join call_prices
        on
            llm_calls.provider = call_prices.provider
            and llm_calls.model = call_prices.model
            and llm_calls.call_date = call_prices.call_date

),

final as (

    select
        priced.llm_call_id,
        priced.message_id,
        priced.call_index,
        messages.user_id,
        messages.agent_id,
        priced.provider,
        priced.provider_raw,
        priced.model,
        case
            when priced.reported_cost_usd is not null then 'reported'
            when coalesce(priced.company_cost_usd, priced.estimated_cost_usd) is not null then 'estimated'
            else 'unpriced'
        end as cost_source,
        case
            when priced.reported_cost_usd is not null then 'reported'
            when priced.company_cost_usd is not null then 'company'
            when priced.estimated_cost_usd is not null then 'genai-prices'
            else 'none'
        end as price_source,
        priced.input_tokens,
        priced.output_tokens,
        priced.cache_read_tokens,
        priced.total_tokens,
        priced.reported_cost_usd,
        coalesce(priced.company_cost_usd, priced.estimated_cost_usd) as estimated_cost_usd,
        coalesce(priced.reported_cost_usd, priced.company_cost_usd, priced.estimated_cost_usd) as cost_usd,
        priced.latency_ms,
        coalesce(priced.reported_cost_usd, priced.company_cost_usd, priced.estimated_cost_usd) is not null as is_priced,
        priced.occurred_at,
        messages.message_date,
        priced.loaded_at,
        priced.revision
    from priced
    inner join messages on priced.message_id = messages.message_id

)

select * from final
