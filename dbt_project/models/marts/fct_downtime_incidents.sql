{#- Grain: one row per downtime incident: a maximal run of consecutive down probes of one
    component. It lasts from the first down probe to the next up probe; an incident with no
    up probe after it yet is ongoing and lasts until the component's latest probe. -#}

with

probes as (

    select * from {{ ref('stg_raw__health_checks') }}

),

neighbours_found as (

    select
        component,
        checked_at,
        is_up,
        lag(is_up) over (partition by component order by checked_at, health_check_id) as previous_is_up,
        lead(checked_at) over (partition by component order by checked_at, health_check_id) as next_checked_at,
        max(checked_at) over (partition by component) as latest_checked_at
    from probes

),

down_probes_numbered as (

    select
        *,
        sum(case when previous_is_up is null or previous_is_up then 1 else 0 end) over (
            partition by component order by checked_at
            rows between unbounded preceding and current row
        ) as incident_number
    from neighbours_found
    where not is_up

),

incidents as (

    select
        component,
        incident_number,
        min(checked_at) as started_at,
        max(checked_at) as last_down_at,
        -- The probe after the run's last down probe (an up probe), or null while the run is
        -- ongoing: only the component's latest probe has no next probe. Not arg_max_value:
        -- DuckDB's arg_max skips null values, so an ongoing run of several down probes got
        -- its last down probe as end and was reported as closed.
        case when count(next_checked_at) = count(*) then max(next_checked_at) end as ended_at,
        max(latest_checked_at) as latest_checked_at,
        count(*) as down_probes
    from down_probes_numbered
    group by component, incident_number

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            'component', "'|'", dbt.safe_cast('started_at', api.Column.translate_type('string'))
        ])) }} as incident_id,
        component,
        started_at,
        ended_at,
        {{ to_company_date('started_at') }} as incident_date,
        down_probes,
        ended_at is null as is_ongoing,
        -- a double division on every engine (Spark divides by a decimal literal in decimals)
        cast({{ dbt.datediff('started_at', 'coalesce(ended_at, latest_checked_at)', 'millisecond') }} as double)
        / 60000 as downtime_minutes
    from incidents

)

select * from final
