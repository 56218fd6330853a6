{#- Grain: one row per agent seen in messages or deployments. -#}

{#- fct_messages is read in each CTE below, not through one shared CTE: DuckDB would
    materialize a CTE read twice (10M rows). The latest name and version are found in two
    steps (the time of each agent's latest message carrying one, then that message, ties to
    the largest message id) instead of one arg_max over a (time, id) key: 0.46 s -> 0.13 s
    over 10M messages. -#}

with

message_agents as (

    select
        agent_id,
        min(occurred_at) as first_message_at,
        max(occurred_at) as last_message_at,
        count(*) as lifetime_messages,
        max(case when agent_name is not null then occurred_at end) as named_at,
        max(case when agent_version is not null then occurred_at end) as versioned_at
    from {{ ref('fct_messages') }}
    group by agent_id

),

{% for value, at in [('agent_name', 'named_at'), ('agent_version', 'versioned_at')] %}
latest_{{ value }} as (

    select
        messages.agent_id,
        {{ arg_max_value('messages.' ~ value, 'messages.message_id') }} as {{ value }}
    from {{ ref('fct_messages') }} as messages
    inner join message_agents
        on
            messages.agent_id = message_agents.agent_id
            and messages.occurred_at = message_agents.{{ at }}
    where messages.{{ value }} is not null
    group by messages.agent_id

),
{% endfor %}

deployments as (

    select * from {{ ref('stg_raw__deployments') }}

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
        coalesce(latest_agent_name.agent_name, message_agents.agent_id, deployment_agents.agent_id) as agent_name,
        coalesce(deployment_agents.latest_deployed_version, latest_agent_version.agent_version) as latest_version,
        message_agents.first_message_at,
        message_agents.last_message_at,
        coalesce(message_agents.lifetime_messages, 0) as lifetime_messages,
        coalesce(deployment_agents.deployments, 0) as deployments,
        deployment_agents.last_deployed_at
    from message_agents
    left join latest_agent_name on message_agents.agent_id = latest_agent_name.agent_id
    left join latest_agent_version on message_agents.agent_id = latest_agent_version.agent_id
    full outer join deployment_agents on message_agents.agent_id = deployment_agents.agent_id

)

select * from final
