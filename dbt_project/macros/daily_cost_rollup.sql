{#- Daily LLM cost and tokens of fct_llm_calls grouped by company day and `keys` (a list of
    column names), incremental by day: the metrics layer's call measures (macros/metrics.sql). -#}
{% macro daily_cost_rollup(keys) -%}
{{ affected_days_depends_on() }}
{%- if is_incremental() -%}
{%- set first_day = first_affected_day(ref('fct_llm_calls')) -%}
{%- endif %}

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
        {{ call_measures() }},
        max(loaded_at) as max_loaded_at
    from llm_calls
    {% if is_incremental() %}
    where message_date >= {{ first_day }} and message_date in (select affected_date from affected)
    {% endif %}
    group by message_date, {{ keys | join(', ') }}

)

select * from final

{%- endmacro %}
