with

source as (

    select * from {{ source('raw', 'health_checks') }}
    where {{ accepted_event_time('occurred_at') }}

),

renamed as (

    select
        ---------- ids
        event_id as health_check_id,
        batch_id,

        ---------- strings
        component,

        ---------- numerics
        latency_ms,

        ---------- booleans
        is_up,

        ---------- timestamps
        occurred_at as checked_at,
        {{ to_company_date('occurred_at') }} as check_date,
        loaded_at

    from source

)

select * from renamed
