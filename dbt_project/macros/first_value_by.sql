{#- The value of `value` on the row with the smallest `order_by` within a group, null when that
    row's value is null. `order_by` is one expression or a list of them (compared in order, so a
    later one breaks ties). Not arg_min: DuckDB's skips rows whose value is null (it would
    answer a later row's value), Spark's min_by does not; arg_min_null is DuckDB's min_by. -#}
{% macro first_value_by(value, order_by) -%}
    {{ return(adapter.dispatch('first_value_by', 'agent_analytics')(value, order_by)) }}
{%- endmacro %}

{% macro default__first_value_by(value, order_by) -%}
    min_by({{ value }}, {{ order_by if order_by is string else 'struct(' ~ order_by | join(', ') ~ ')' }})
{%- endmacro %}

{% macro duckdb__first_value_by(value, order_by) -%}
    arg_min_null({{ value }}, {{ order_by if order_by is string else 'row(' ~ order_by | join(', ') ~ ')' }})
{%- endmacro %}
