{#- dbt's `where` config of a data test, with one addition: `__this__` in it stands for the
    tested relation, so a where can scope a test by a subquery over the model itself (a yml
    config cannot call ref). Used to test only the days a refresh rebuilt of a daily mart
    whose rows keep their old max_loaded_at when their day is rebuilt (fct_user_daily). This
    project's version of dbt's default (dispatch order in dbt_project.yml); the rest is dbt's. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where | replace('__this__', relation | string) }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
