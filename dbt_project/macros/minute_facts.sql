{#- Per-minute message facts for the alert marts: messages, errors and response time
    (average, P50, P95) per UTC minute and the given extra grouping columns, in the CTE
    `minute_facts` (see bucket_facts). -#}
{% macro minute_facts(messages, group_columns=[]) -%}
{{ bucket_facts(messages, 'minute', dbt.date_trunc('minute', 'occurred_at'), group_columns) }}
{%- endmacro %}

{#- Message facts per time bucket: messages, errors and response time (average, P50, P95) per
    bucket and the given extra grouping columns, in the CTE `<bucket>_facts` with the bucket's
    start in column `<bucket>_at` (`bucket_start`: that start as an expression of occurred_at).
    Incremental runs rebuild every bucket that newly loaded messages touch (a late message
    rebuilds its bucket from all of that bucket's messages), found through this model's
    watermark max(max_loaded_at). `messages` needs agent_id, is_error, response_time_ms,
    occurred_at and loaded_at. -#}
{% macro bucket_facts(messages, bucket, bucket_start, group_columns=[]) -%}
{%- set bucket_at = bucket ~ '_at' -%}
{%- if is_incremental() -%}
{#- The first bucket to rebuild, as a literal (see first_affected_day for why): the scan reads
    the messages from there on only. -#}
{%- set first_bucket = query_literal(
    "select min(" ~ bucket_start ~ ") from " ~ messages
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
        {{ bucket_start }} as {{ bucket_at }}
    from {{ messages }}
    {% if is_incremental() %}
    where occurred_at >= {{ first_bucket }}
    {% endif %}

),

{% if is_incremental() %}
affected_buckets as (

    select distinct {{ bucket_at }}
    from messages
    where loaded_at > {{ loaded_watermark() }}

),
{% endif %}

{{ bucket }}_facts as (

    select
        {{ bucket_at }},
        {% for column in group_columns %}{{ column }},
        {% endfor -%}
        count(*) as messages,
        {{ response_time_facts() }}
        max(loaded_at) as max_loaded_at
    from messages
    {% if is_incremental() %}
    where {{ bucket_at }} in (select affected_buckets.{{ bucket_at }} from affected_buckets)
    {% endif %}
    group by {{ bucket_at }}{% for column in group_columns %}, {{ column }}{% endfor %}

)

{%- endmacro %}
