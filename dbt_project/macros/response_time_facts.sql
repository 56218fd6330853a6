{#- The error and response-time aggregates shared by the daily and per-minute message facts:
    errors, timed messages, total / average / P50 / P95 response time (P99 where asked). -#}
{% macro response_time_facts(with_p99=false) -%}
        cast(sum(case when is_error then 1 else 0 end) as bigint) as errors,
        count(response_time_ms) as timed_messages,
        sum(response_time_ms) as total_response_time_ms,
        avg(response_time_ms) as avg_response_time_ms,
        {{ percentile('response_time_ms', 0.5) }} as p50_response_time_ms,
        {{ percentile('response_time_ms', 0.95) }} as p95_response_time_ms,
        {%- if with_p99 %}
        {{ percentile('response_time_ms', 0.99) }} as p99_response_time_ms,
        {%- endif %}
{%- endmacro %}
