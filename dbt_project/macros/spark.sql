{#- What the Spark target (dbt-spark, profiles.yml) needs besides the models' dispatched macros. -#}

{#- The raw layer on Spark: before every run (on-run-start), a view per table of the source
    `raw` over that table's Parquet files, so that source('raw', ...) reads the files DuckDB
    reads (the sources' external_location). The files are var raw_layer_files under var
    raw_layer_root, the one place that names them for both engines; on a cluster the root is an
    object-store path (docs/spark.md). Hadoop's glob reads `{a,b}` as either pattern, and a glob
    that ends in files keeps Spark from guessing partition columns from the folders. -#}
{% macro spark_raw_files(table) -%}
    {%- set patterns = var('raw_layer_files') | map('replace', '{name}', table) | list -%}
    {{- return(var('raw_layer_root') ~ '/{' ~ patterns | join(',') ~ '}') -}}
{%- endmacro %}

{#- The same for the source `prices`: one file per table under var spark_prices_root. -#}
{% macro create_spark_raw_views() -%}
    {%- if target.type == 'spark' and execute -%}
        {%- set schemas = [] -%}
        {%- for source in graph.sources.values() if source.source_name in ('raw', 'prices') -%}
            {%- if source.schema not in schemas -%}
                {%- do run_query('create schema if not exists ' ~ source.schema) -%}
                {%- do schemas.append(source.schema) -%}
            {%- endif -%}
            {%- set files = spark_raw_files(source.name) if source.source_name == 'raw'
                else var('spark_prices_root') ~ '/' ~ source.name ~ '.parquet' -%}
            {%- do run_query(
                'create or replace view ' ~ source.schema ~ '.' ~ source.identifier
                ~ ' as select * from parquet.`' ~ files ~ '`'
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- The contracts name DuckDB's types; Spark calls varchar `string` (its varchar needs a length).
    dbt builds this query to learn the types a contract declares. -#}
{% macro spark__get_empty_schema_sql(columns) -%}
    select
    {% for name in columns -%}
        {%- set data_type = columns[name]['data_type'] -%}
        cast(null as {{ 'string' if data_type | lower == 'varchar' else data_type }}) as {{ columns[name]['name'] }}
        {{- ", " if not loop.last }}
    {% endfor %}
{%- endmacro %}

{#- Milliseconds from one timestamp to another, as DuckDB's date_diff('millisecond', ...) counts
    them (each truncated to the millisecond): dbt-spark's datediff counts whole seconds. The
    models ask for no other part. -#}
{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart != 'millisecond' -%}
        {{ exceptions.raise_compiler_error("datediff on Spark: only 'millisecond' is defined here, not " ~ datepart) }}
    {%- endif -%}
    (unix_millis(cast({{ second_date }} as timestamp_ltz)) - unix_millis(cast({{ first_date }} as timestamp_ltz)))
{%- endmacro %}

{#- Spark's date_trunc returns a timestamp with time zone; the models keep times without one. -#}
{% macro spark__date_trunc(datepart, date) -%}
    cast(date_trunc('{{ datepart }}', {{ date }}) as timestamp_ntz)
{%- endmacro %}

{#- An interval added to a date or time. dbt-spark's dateadd goes through to_timestamp of epoch
    seconds, which is NULL under timestampType TIMESTAMP_NTZ (profiles.yml) and drops the
    milliseconds. The models add days to dates and hours or milliseconds to times. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- if datepart == 'day' -%}
        date_add({{ from_date_or_timestamp }}, {{ interval }})
    {%- else -%}
        timestampadd({{ datepart }}, {{ interval }}, {{ from_date_or_timestamp }})
    {%- endif -%}
{%- endmacro %}
