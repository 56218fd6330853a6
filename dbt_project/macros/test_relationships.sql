{#- dbt's relationships test, written as NOT EXISTS for DuckDB: DuckDB then builds its hash
    table on the (usually small) child side, which the default LEFT JOIN form does not let it
    do; the same rows fail. (Other engines keep dbt's default.)

    When the child rows are scoped to the rows loaded since the previous build (test_scope.sql)
    and the parent is a load-time-scoped model too, the parent side is read from the earliest
    recorded watermark on: a child row and its parent come from the same event line (a call
    and its message) or the parent holds the child (a session and its messages), so the parent
    of a row loaded after that watermark was loaded after it too. As a literal, the bound lets
    DuckDB skip the parent's older segments instead of probing all of its rows. -#}
{% macro duckdb__test_relationships(model, column_name, to, field) %}

{%- set parent_column = var('tested_since_last_build').get(to.identifier) -%}
{%- set since = none -%}
{%- if parent_column and flags.WHICH == 'build' and model is string and 'dbt_test_watermarks' in model -%}
    {%- set since = query_literal(
        "select min(loaded_after) from " ~ target.schema ~ ".dbt_test_watermarks", 'timestamp', none) -%}
{%- endif %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
)

select from_field
from child
where not exists (
    select 1 from {{ to }} as parent
    where parent.{{ field }} = child.from_field
    {%- if since %}
      and parent.{{ parent_column }} > {{ since }}
    {%- endif %}
)

{% endmacro %}
