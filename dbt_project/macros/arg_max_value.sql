{#- The value of `value` on the row with the largest `order_by` within a group, null when that
    row's value is null. `order_by` is one expression or a list of them (compared in order, so a
    later one breaks ties). Not arg_max: DuckDB's skips rows whose value is null (it would
    answer an earlier row's value), Spark's max_by does not; arg_max_null is DuckDB's max_by. -#}
{% macro arg_max_value(value, order_by) -%}
    {{ return(adapter.dispatch('arg_max_value', 'agent_analytics')(value, order_by)) }}
{%- endmacro %}

{% macro default__arg_max_value(value, order_by) -%}
    max_by({{ value }}, {{ order_by if order_by is string else 'struct(' ~ order_by | join(', ') ~ ')' }})
{%- endmacro %}

{% macro duckdb__arg_max_value(value, order_by) -%}
    arg_max_null({{ value }}, {{ order_by if order_by is string else 'row(' ~ order_by | join(', ') ~ ')' }})
{%- endmacro %}
