{#- Daily LLM cost and tokens of fct_llm_calls grouped by company day and `keys` (a list of
    column names), incremental by day. Cost sums priced calls only; unpriced calls (no
    reported cost, no known price) are counted, never costed at $0. -#}
{% macro daily_cost_rollup(keys) -%}

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
        {% set key_parts = [dbt.safe_cast('message_date', api.Column.translate_type('string'))] -%}
        {%- for key in keys %}{% do key_parts.extend(["'|'", key]) %}{% endfor -%}
        {{ dbt.hash(dbt.concat(key_parts)) }} as cost_key,
        message_date as cost_date,
        {{ keys | join(', ') }},
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
    group by message_date, {{ keys | join(', ') }}

)

select * from final

{%- endmacro %}
