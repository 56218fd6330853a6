{#- Grain: one row per company day and provider. Cost is the sum of priced calls;
    unpriced calls (no reported cost, no known price) are counted, never costed at $0.
    Incremental: rebuilds the days that newly loaded calls touch. -#}
{{
    config(
        materialized='incremental',
        unique_key='cost_date',
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

with

llm_calls as (

    select * from {{ ref('fct_llm_calls') }}

),

{% if is_incremental() %}
affected as (

    {{ affected_days(ref('fct_llm_calls')) }}

),
{% endif %}

final as (

    select
        {{ dbt.hash(dbt.concat([dbt.safe_cast('message_date', api.Column.translate_type('string')), "'|'", 'provider'])) }} as cost_key,
        message_date as cost_date,
        provider,
        count(*) as llm_calls,
        sum(case when is_priced then 1 else 0 end) as priced_calls,
        sum(case when is_priced then 0 else 1 end) as unpriced_calls,
        sum(input_tokens) as input_tokens,
        sum(output_tokens) as output_tokens,
        sum(cache_read_tokens) as cache_read_tokens,
        sum(total_tokens) as total_tokens,
        sum(case when is_priced then 0 else total_tokens end) as unpriced_tokens,
        coalesce(sum(cost_usd), 0) as cost_usd,
        coalesce(sum(reported_cost_usd), 0) as reported_cost_usd,
        coalesce(sum(case when cost_source = 'estimated' then cost_usd end), 0) as estimated_cost_usd,
        max(loaded_at) as max_loaded_at
    from llm_calls
    {% if is_incremental() %}
    where message_date in (select affected_date from affected)
    {% endif %}
    group by message_date, provider

)

select * from final
