with

source as (

    select * from {{ source('ingest', 'ledger') }}

),

renamed as (

    select
        ---------- ids
        batch_id,
        content_hash,

        ---------- strings
        file_name,
        file_path,

        ---------- numerics
        lines,
        loaded,
        duplicates,
        quarantined,

        ---------- timestamps
        ingested_at

    from source

)

select * from renamed
