{#- Data tests of the large incremental models check, in an incremental `dbt build`, only the
    rows loaded since the previous build: the 5-minute refresh then tests what it added
    instead of re-reading tens of millions of rows. A full refresh (the nightly rebuild), a
    first build and `dbt test` check every row.

    var `tested_since_last_build` maps each such model to its load-time column. Before any
    model runs, `record_test_watermarks` (on-run-start) stores each model's newest load time
    in `dbt_test_watermarks` (dropped first by the hook before it); `get_where_subquery`
    (dbt's hook for the tested relation) then adds `<column> > <that watermark>` to the test
    (test_relationships.sql bounds the parent side too). Incremental models replace the rows
    of the new rows' keys (delete+insert, replace_from), so a new row cannot duplicate an old
    key there. -#}

{% macro record_test_watermarks() -%}
    {%- set scoped = flags.WHICH == 'build' and not flags.FULL_REFRESH -%}
    {%- set parts = [] -%}
    {%- for model, column in var('tested_since_last_build').items() -%}
        {%- set existing = adapter.get_relation(database=target.database, schema=target.schema, identifier=model) -%}
        {%- if scoped and existing is not none -%}
            {%- do parts.append("select '" ~ model ~ "' as model_name, max(" ~ column ~ ") as loaded_after from " ~ existing) -%}
        {%- endif -%}
    {%- endfor -%}
    create table {{ target.schema }}.dbt_test_watermarks as
    {% for part in parts %}{{ part }} union all {% endfor %}
    select cast(null as varchar) as model_name, cast(null as timestamp) as loaded_after
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- set column = var('tested_since_last_build').get(relation.identifier) -%}
    {%- if column -%}
        {%- set since = column ~ " > coalesce((select max(loaded_after) from " ~ target.schema ~ ".dbt_test_watermarks"
            ~ " where model_name = '" ~ relation.identifier ~ "'), cast('1900-01-01' as timestamp))" -%}
        {%- set where = '(' ~ where ~ ') and ' ~ since if where else since -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
