with

source as (

    select * from {{ source('ingest', 'quarantine') }}

),

renamed as (

    select
        ---------- ids
        batch_id,

        ---------- strings
        file_name,
        reason,
        raw_line,

        ---------- numerics
        line_number,

        ---------- timestamps
        quarantined_at

    from source

)

select * from renamed
