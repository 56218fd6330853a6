{#- Grain: one row per user and agent the user ever sent a message to (surrogate key
    user_agent_key): when the user was first and last seen with that agent. A user's first
    message ever (over all agents, or over an agent scope) is the earliest first_seen_at of
    the user's rows: the basis of new and returning users.
    Incremental on DuckDB: the pairs with newly loaded messages get their rows again, the
    earliest and latest of the stored row and of the new messages. On Spark (no deletes
    without a table format) a table every run rebuilds. -#}
{{
    config(
        materialized=incremental_or_table(),
        unique_key=['user_id', 'agent_id'],
        incremental_strategy=rebuild_strategy(),
        on_schema_change='fail',
    )
}}

with

messages as (

    select * from {{ ref('fct_messages') }}
    {% if is_incremental() %}
    where loaded_at > {{ loaded_watermark() }}
    {% endif %}

),

new_pairs as (

    select
        user_id,
        agent_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(loaded_at) as max_loaded_at
    from messages
    group by user_id, agent_id

),

{% if is_incremental() %}
stored_pairs as (

    select
        kept.user_id,
        kept.agent_id,
        kept.first_seen_at,
        kept.last_seen_at,
        kept.max_loaded_at
    from {{ this }} as kept
    inner join new_pairs
        on kept.user_id = new_pairs.user_id and kept.agent_id = new_pairs.agent_id

),
{% endif %}

pairs as (

    select
        user_agent_pairs.user_id,
        user_agent_pairs.agent_id,
        min(user_agent_pairs.first_seen_at) as first_seen_at,
        max(user_agent_pairs.last_seen_at) as last_seen_at,
        max(user_agent_pairs.max_loaded_at) as max_loaded_at
    from (
        select * from new_pairs
        {% if is_incremental() %}
        union all
        select * from stored_pairs
        {% endif %}
    ) as user_agent_pairs
    group by user_agent_pairs.user_id, user_agent_pairs.agent_id

),

final as (

    select
        {{ dbt.hash(dbt.concat(['user_id', "'|'", 'agent_id'])) }} as user_agent_key,
        user_id,
        agent_id,
        first_seen_at,
        {{ to_company_date('first_seen_at') }} as first_seen_date,
        last_seen_at,
        max_loaded_at
    from pairs

)

select * from final
