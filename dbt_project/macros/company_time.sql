{#- A UTC timestamp as wall-clock time in the company time zone (var company_tz). -#}
{% macro to_company_time(column) -%}
    {{ return(adapter.dispatch('to_company_time', 'agent_analytics')(column)) }}
{%- endmacro %}

{% macro default__to_company_time(column) -%}
    from_utc_timestamp({{ column }}, '{{ var("company_tz") }}')
{%- endmacro %}

{% macro duckdb__to_company_time(column) -%}
    {%- if var("company_tz") in ("UTC", "Etc/UTC") -%}
    {{ column }}
    {%- else -%}
    cast(({{ column }} at time zone 'UTC') at time zone '{{ var("company_tz") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}

{#- The company-time-zone calendar day of a UTC timestamp. -#}
{% macro to_company_date(column) -%}
    cast({{ to_company_time(column) }} as date)
{%- endmacro %}

{#- The start of the company-time-zone hour of a UTC timestamp, as a UTC timestamp: the
    timestamp less the time since its local hour began (exact across daylight-saving changes
    and in zones with 30 or 45-minute offsets, where a local hour is not a UTC hour). -#}
{% macro to_company_hour_start(column) -%}
    {%- set local = to_company_time(column) -%}
    ({{ column }} - ({{ local }} - {{ dbt.date_trunc('hour', local) }}))
{%- endmacro %}
