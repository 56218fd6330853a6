{#- dbt's relationships test, written as NOT EXISTS for DuckDB: DuckDB then builds its hash
    table on the (usually small) child side, which the default LEFT JOIN form does not let it
    do; the same rows fail. (Other engines keep dbt's default.) -#}
{% macro duckdb__test_relationships(model, column_name, to, field) %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
)

select from_field
from child
where not exists (
    select 1 from {{ to }} as parent where parent.{{ field }} = child.from_field
)

{% endmacro %}
