{#- Grain: one row per deployment event, with the windows that compare the agent before and
    after it. Both windows have the same length: var deployment_window_hours, clipped at the
    agent's previous deployment (the before window holds only the version it replaced) and at
    its next deployment (the after window holds only this version). Clipping at "now" (the
    data's or the request's time) changes with every request and is done at query time
    (agent_analytics/deployments/). -#}
{%- set window_ms = (var('deployment_window_hours') | int) * 3600000 -%}

with

deployments as (

    select * from {{ ref('stg_raw__deployments') }}

),

neighbours_found as (

    select
        deployment_id,
        agent_id,
        agent_version,
        description,
        deployed_at,
        deployment_date,
        lag(agent_version) over (partition by agent_id order by deployed_at, deployment_id) as previous_version,
        lag(deployed_at) over (partition by agent_id order by deployed_at, deployment_id) as previous_deployed_at,
        lead(deployed_at) over (partition by agent_id order by deployed_at, deployment_id) as next_deployed_at
    from deployments

),

window_lengths as (

    select
        *,
        least(
            {{ window_ms }},
            coalesce({{ dbt.datediff('previous_deployed_at', 'deployed_at', 'millisecond') }}, {{ window_ms }}),
            coalesce({{ dbt.datediff('deployed_at', 'next_deployed_at', 'millisecond') }}, {{ window_ms }})
        ) as window_ms
    from neighbours_found

),

final as (

    select
        deployment_id,
        agent_id,
        agent_version,
        previous_version,
        description,
        deployed_at,
        deployment_date,
        previous_deployed_at,
        next_deployed_at,
        cast({{ var('deployment_window_hours') | int }} as integer) as window_hours,
        cast(window_ms as bigint) as window_ms,
        {{ dbt.dateadd('millisecond', '-window_ms', 'deployed_at') }} as before_start_at,
        {{ dbt.dateadd('millisecond', 'window_ms', 'deployed_at') }} as after_end_at
    from window_lengths

)

select * from final
