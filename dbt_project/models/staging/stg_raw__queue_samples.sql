with

source as (

    select * from {{ source('raw', 'queue_samples') }}
    where {{ accepted_event_time('occurred_at') }}

),

renamed as (

    select
        ---------- ids
        event_id as queue_sample_id,
        batch_id,

        ---------- strings
        queue_name,

        ---------- numerics
        depth,

        ---------- timestamps
        occurred_at as sampled_at,
        {{ to_company_date('occurred_at') }} as sample_date,
        loaded_at

    from source

)

select * from renamed
