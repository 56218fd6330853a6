{#- Grain: one row per agent seen in messages or deployments. -#}

with

messages as (

    -- the mart, not the staging view: a table scan instead of re-reading every raw Parquet file
    select agent_id, agent_name, agent_version, occurred_at, message_id from {{ ref('fct_messages') }}

),

deployments as (

    select * from {{ ref('stg_raw__deployments') }}

),

message_agents as (

    select
        agent_id,
        {{ arg_max_value('agent_name', ['occurred_at', 'message_id']) }} as agent_name,
        {{ arg_max_value('agent_version', ['occurred_at', 'message_id']) }} as latest_message_version,
        min(occurred_at) as first_message_at,
        max(occurred_at) as last_message_at,
        count(*) as lifetime_messages
    from messages
    group by agent_id

),

deployment_agents as (

    select
        agent_id,
        {{ arg_max_value('agent_version', ['deployed_at', 'deployment_id']) }} as latest_deployed_version,
        max(deployed_at) as last_deployed_at,
        count(*) as deployments
    from deployments
    group by agent_id

),

final as (

    select
        coalesce(message_agents.agent_id, deployment_agents.agent_id) as agent_id,
        coalesce(message_agents.agent_name, message_agents.agent_id, deployment_agents.agent_id) as agent_name,
        coalesce(deployment_agents.latest_deployed_version, message_agents.latest_message_version) as latest_version,
        message_agents.first_message_at,
        message_agents.last_message_at,
        coalesce(message_agents.lifetime_messages, 0) as lifetime_messages,
        coalesce(deployment_agents.deployments, 0) as deployments,
        deployment_agents.last_deployed_at
    from message_agents
    full outer join deployment_agents on deployment_agents.agent_id = message_agents.agent_id

)

select * from final
