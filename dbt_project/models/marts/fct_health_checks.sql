{#- Grain: one row per availability probe (platform-wide, for uptime over any window). -#}

with

probes as (

    select * from {{ ref('stg_raw__health_checks') }}

),

final as (

    select
        health_check_id,
        component,
        is_up,
        latency_ms,
        checked_at,
        check_date
    from probes

)

select * from final
