{#- Incremental strategy per engine: DuckDB deletes and re-inserts the rebuilt rows (with
    `replace_from=true`, the strategy below, for a model configured with `replace_from`);
    Spark without Delta/Iceberg has no merge or delete, so it overwrites the partitions (days,
    `day_partition`) its new rows fall in: those models' new rows are every row of each day
    they rebuild. -#}
{% macro rebuild_strategy(replace_from=false) -%}
    {%- if target.type == 'spark' -%}
        {{ return('insert_overwrite') }}
    {%- endif -%}
    {{ return('replace_from' if replace_from else 'delete+insert') }}
{%- endmacro %}

{#- The partition column of an incremental model on Spark (its day column, whose partitions an
    insert_overwrite replaces); none on DuckDB. -#}
{% macro day_partition(column) -%}
    {{ return(column if target.type == 'spark' else none) }}
{%- endmacro %}

{#- The materialization of an incremental model without a day column (the sessionized messages,
    the minute marts): on Spark, which cannot replace some rows of a table without a table
    format that deletes (Delta, Iceberg), a table every run rebuilds. -#}
{% macro incremental_or_table() -%}
    {{ return('table' if target.type == 'spark' else 'incremental') }}
{%- endmacro %}

{#- Incremental strategy `replace_from` (config `replace_from`: a timestamp column): deletes
    the target's rows whose `unique_key` value is among the new rows' and whose `replace_from`
    is at or after the new rows' earliest one, then inserts the new rows. With a key that
    names one row (message_id) this is delete+insert; with a coarser key (user, agent) the new
    rows replace each key's rows from that point on, for a model whose new rows are all of
    those keys' rows from that point on (fct_sessions).
    Why not delete+insert: by (user, agent) it would delete a pair's earlier sessions, which
    the run does not rebuild, and by session_id it would keep a session a late message merged
    away; and dbt's incremental_predicates cannot name the new rows' table, so the earliest
    value is queried (one run_query) and goes into the delete as a literal, which lets a table
    stored in about `replace_from` order skip its older segments. -#}
{% macro get_incremental_replace_from_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = [arg_dict['unique_key']] if arg_dict['unique_key'] is string else arg_dict['unique_key'] -%}
    {%- set column = config.get('replace_from') -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set earliest = query_literal("select min(" ~ column ~ ") from " ~ source, 'timestamp', none) -%}
    {%- if earliest is not none %}
    delete from {{ target }} as existing
    where existing.{{ column }} >= {{ earliest }}
      and exists (
          select 1 from {{ source }} as new_rows
          where {% for key in keys %}new_rows.{{ key }} = existing.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
      );
    {%- endif %}
    insert into {{ target }} ({{ columns }}) (select {{ columns }} from {{ source }})
{%- endmacro %}

{#- The newest `column` value already in this incremental model (its watermark;
    1900-01-01 while it is empty), queried when the model runs and written in as a literal.
    Not a scalar subquery: DuckDB pushes a literal into every scan it filters, skipping older
    Parquet row groups and table segments, but a subquery used twice in one model (fct_llm_calls
    filters both the calls and the messages) becomes one shared plan joined above the scans, and
    the second scan then reads every stored row (at 100M messages, 17 s and 8 GB instead of under
    a second). Spark also needs the literal: it refuses to overwrite a table that the query
    writing it reads. -#}
{% macro loaded_watermark(column='max_loaded_at') -%}
    {{ return(query_literal('select max(' ~ column ~ ') from ' ~ this, 'timestamp')) }}
{%- endmacro %}

{#- The one value `query` returns, queried when the model runs, as a literal of `sql_type`
    (`empty` when it is NULL; none when `empty` is none). -#}
{% macro query_literal(query, sql_type='timestamp', empty='1900-01-01 00:00:00') -%}
    {%- set value = none -%}
    {%- if execute -%}
        {%- set value = run_query(query).columns[0].values()[0] -%}
    {%- endif -%}
    {%- set value = value if value is not none else empty -%}
    {{- return(none if value is none else sql_literal(value, sql_type)) -}}
{%- endmacro %}

{#- `value` as an SQL literal of `sql_type`. -#}
{% macro sql_literal(value, sql_type='timestamp') -%}
    {{- return("cast('" ~ value ~ "' as " ~ sql_type ~ ")") -}}
{%- endmacro %}

{#- Company days an incremental daily model rebuilds: days of messages loaded after this
    model's watermark, widened by one day on each side (a late message can move a session
    start across midnight), plus the last `lookback_days` days of data, plus the days of calls
    whose company price changed (repriced_days, macros/company_prices.sql).
    `messages` has message_date and loaded_at. -#}
{% macro affected_days(messages) -%}
    {%- set repriced = repriced_days(ref('fct_llm_calls')) -%}
    select distinct {{ dbt.dateadd('day', 'shift.d', 'm.message_date') }} as affected_date
    from {{ messages }} as m
    cross join (select -1 as d union all select 0 as d union all select 1 as d) as shift
    where m.loaded_at > {{ loaded_watermark() }}
    union
    select distinct m.message_date as affected_date
    from {{ messages }} as m
    where m.message_date >= (
        select {{ dbt.dateadd('day', -(var('lookback_days') | int), 'max(message_date)') }} from {{ messages }}
    )
    {%- if repriced %}
    union
    select distinct m.message_date as affected_date
    from {{ messages }} as m
    where m.message_date in {{ repriced }}
    {%- endif %}
{%- endmacro %}

{#- The earliest of affected_days(messages), queried when the model runs and written in as a
    literal (9999-12-31 when there is none). A daily model filters on it besides `in (select
    affected_date ...)`: DuckDB pushes the literal into its scan, skipping the segments of older
    days, but not the `in`, with which every stored row is read. -#}
{% macro first_affected_day(messages) -%}
    {{ return(query_literal(
        "select min(affected_date) from (" ~ affected_days(messages) ~ ") as affected", 'date', '9999-12-31')) }}
{%- endmacro %}

{#- `select <columns> from <relation>`, restricted on incremental runs to the rows the run
    rebuilds: on DuckDB the rows of ingest batches loaded after this model's newest `loaded_at`;
    on Spark, which overwrites whole days, every row of the days (`day_column` of `relation`)
    of the messages loaded since then. A message rewritten by a later batch with its next
    revision keeps its day, so the day's rows, read from staging (latest revisions only), are
    exact.
    `or_rows`: a condition on `relation` of more rows the run rebuilds (those of messages whose
    calls a changed company price re-prices), or none. -#}
{% macro loaded_since_last_run(relation, columns='*', day_column='message_date', or_rows=none) -%}
    select {{ columns }} from {{ relation }}
    {% if is_incremental() %}
    where {{ adapter.dispatch('loaded_since_last_run_filter', 'agent_analytics')(day_column) }}
    {%- if or_rows %}
        or {{ or_rows }}
    {%- endif %}
    {% endif %}
{%- endmacro %}

{% macro default__loaded_since_last_run_filter(day_column) -%}
    loaded_at > {{ loaded_watermark('loaded_at') }}
{%- endmacro %}

{% macro spark__loaded_since_last_run_filter(day_column) -%}
    {{ day_column }} in (
        select message_date from {{ ref('stg_raw__messages') }}
        where loaded_at > {{ loaded_watermark('loaded_at') }}
    )
{%- endmacro %}
