{#- Incremental strategy per engine: DuckDB deletes and re-inserts the rebuilt rows;
    Spark without Delta/Iceberg has no merge or delete, so it overwrites partitions. -#}
{% macro rebuild_strategy() -%}
    {{ return('insert_overwrite' if target.type == 'spark' else 'delete+insert') }}
{%- endmacro %}

{#- The newest loaded_at already in this incremental model (its watermark). -#}
{% macro loaded_watermark() -%}
    (select coalesce(max(max_loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})
{%- endmacro %}

{#- Company days an incremental daily model rebuilds: days of messages loaded after this
    model's watermark, widened by one day on each side (a late message can move a session
    start across midnight), plus the last `lookback_days` days of data.
    `messages` has message_date and loaded_at. -#}
{% macro affected_days(messages) -%}
    select distinct {{ dbt.dateadd('day', 'shift.d', 'm.message_date') }} as affected_date
    from {{ messages }} as m
    cross join (select -1 as d union all select 0 as d union all select 1 as d) as shift
    where m.loaded_at > {{ loaded_watermark() }}
    union
    select distinct m.message_date as affected_date
    from {{ messages }} as m
    where m.message_date >= {{ dbt.dateadd('day', -(var('lookback_days') | int), '(select max(message_date) from ' ~ messages ~ ')') }}
{%- endmacro %}

{#- `select <columns> from <relation>`, restricted on incremental runs to rows of ingest
    batches loaded after this model's newest `loaded_at`. -#}
{% macro loaded_since_last_run(relation, columns='*') -%}
    select {{ columns }} from {{ relation }}
    {% if is_incremental() %}
    where loaded_at > (select coalesce(max(loaded_at), cast('1900-01-01' as timestamp)) from {{ this }})
    {% endif %}
{%- endmacro %}
