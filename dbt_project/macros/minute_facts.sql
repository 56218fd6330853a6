{#- Per-minute message facts for the alert marts: messages, errors and response time
    (average, P50, P95) per UTC minute and the given extra grouping columns.
    Incremental runs rebuild every minute that newly loaded messages touch (a late message
    rebuilds its minute from all of that minute's messages), found through this model's
    watermark max(max_loaded_at). `messages` needs agent_id, is_error, response_time_ms,
    occurred_at and loaded_at. -#}
{% macro minute_facts(messages, group_columns=[]) -%}
{%- if is_incremental() -%}
{#- The first minute to rebuild, as a literal (see first_affected_day for why): the scan reads
    the messages from there on only. -#}
{%- set first_minute = query_literal(
    "select min(" ~ dbt.date_trunc('minute', 'occurred_at') ~ ") from " ~ messages
    ~ " where loaded_at > " ~ loaded_watermark(), 'timestamp', '9999-12-31 00:00:00') -%}
{%- endif %}

with

messages as (

    select
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        is_error,
        response_time_ms,
        loaded_at,
        {{ dbt.date_trunc('minute', 'occurred_at') }} as minute_at
    from {{ messages }}
    {% if is_incremental() %}
    where occurred_at >= {{ first_minute }}
    {% endif %}

),

{% if is_incremental() %}
affected_minutes as (

    select distinct minute_at
    from messages
    where loaded_at > {{ loaded_watermark() }}

),
{% endif %}

minute_facts as (

    select
        minute_at,
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        count(*) as messages,
        {{ response_time_facts() }}
        max(loaded_at) as max_loaded_at
    from messages
    {% if is_incremental() %}
    where minute_at in (select minute_at from affected_minutes)
    {% endif %}
    group by minute_at{% for column in group_columns %}, {{ column }}{% endfor %}

)

{%- endmacro %}
