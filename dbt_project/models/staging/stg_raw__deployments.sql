with

source as (

    select * from {{ source('raw', 'deployments') }}
    where {{ accepted_event_time('occurred_at') }}

),

renamed as (

    select
        ---------- ids
        event_id as deployment_id,
        agent_id,
        batch_id,

        ---------- strings
        agent_version,
        description,

        ---------- timestamps
        occurred_at as deployed_at,
        {{ to_company_date('occurred_at') }} as deployment_date,
        loaded_at

    from source

)

select * from renamed
