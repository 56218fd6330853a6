{#- The ingest bookkeeping lives in the DuckDB warehouse, which the loader writes on both engines;
    no mart reads it, so on Spark this model is left out. -#}
{{ config(enabled=target.type != 'spark') }}

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
        record_type,

        ---------- numerics
        lines,
        records,
        loaded,
        duplicates,
        quarantined,
        traces,

        ---------- timestamps
        ingested_at

    from source

)

select * from renamed
