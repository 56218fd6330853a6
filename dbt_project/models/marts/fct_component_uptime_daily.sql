{#- Grain: one row per company day and component. Uptime = up probes / all probes; the
    day's incidents are those that started on it. -#}

with

probes as (

    select * from {{ ref('stg_raw__health_checks') }}

),

incidents as (

    select * from {{ ref('fct_downtime_incidents') }}

),

probe_counts as (

    select
        check_date as uptime_date,
        component,
        count(*) as probes,
        sum(case when is_up then 1 else 0 end) as up_probes,
        avg(latency_ms) as avg_latency_ms
    from probes
    group by check_date, component

),

incident_counts as (

    select
        incident_date,
        component,
        count(*) as incidents,
        sum(downtime_minutes) as downtime_minutes
    from incidents
    group by incident_date, component

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('probe_counts.uptime_date', api.Column.translate_type('string')), "'|'", 'probe_counts.component'
        ])) }} as component_day_key,
        probe_counts.uptime_date,
        probe_counts.component,
        probe_counts.probes,
        probe_counts.up_probes,
        probe_counts.probes - probe_counts.up_probes as down_probes,
        probe_counts.up_probes * 1.0 / probe_counts.probes as uptime_ratio,
        probe_counts.avg_latency_ms,
        coalesce(incident_counts.incidents, 0) as incidents,
        coalesce(incident_counts.downtime_minutes, 0) as downtime_minutes
    from probe_counts
    left join incident_counts
        on incident_counts.incident_date = probe_counts.uptime_date
        and incident_counts.component = probe_counts.component

)

select * from final
