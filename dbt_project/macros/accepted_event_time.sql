{#- Events whose time lies outside the accepted range (settings AGENT_ANALYTICS_EVENT_TIME_MIN and
    AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H) are not part of the warehouse. Ingestion quarantines
    them; this filter in the staging views also keeps out those of a raw layer loaded before the
    range existed or with a wider one, so a stray year-1 or year-9999 event can never stretch a day
    spine over millennia. -#}
{% macro accepted_event_time(column) -%}
    {{ column }} >= cast('{{ var("event_time_min") }}' as timestamp)
    and {{ column }} < cast({{ dbt.dateadd('hour', var('event_time_max_ahead_h') | int, dbt.current_timestamp()) }} as timestamp)
{%- endmacro %}
