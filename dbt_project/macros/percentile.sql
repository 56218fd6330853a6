{#- Continuous (linearly interpolated) percentile of a column within a group; p in 0..1. -#}
{% macro percentile(column, p) -%}
    {{ return(adapter.dispatch('percentile', 'agent_analytics')(column, p)) }}
{%- endmacro %}

{% macro default__percentile(column, p) -%}
    percentile({{ column }}, {{ p }})
{%- endmacro %}

{% macro duckdb__percentile(column, p) -%}
    quantile_cont({{ column }}, {{ p }})
{%- endmacro %}
