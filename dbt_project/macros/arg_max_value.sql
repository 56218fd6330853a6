{#- The value of `value` on the row with the largest `order_by` within a group. -#}
{% macro arg_max_value(value, order_by) -%}
    {{ return(adapter.dispatch('arg_max_value', 'agent_analytics')(value, order_by)) }}
{%- endmacro %}

{% macro default__arg_max_value(value, order_by) -%}
    max_by({{ value }}, {{ order_by }})
{%- endmacro %}

{% macro duckdb__arg_max_value(value, order_by) -%}
    arg_max({{ value }}, {{ order_by }})
{%- endmacro %}
