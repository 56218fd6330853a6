{#- The ingest bookkeeping lives in the DuckDB warehouse, which the loader writes on both engines;
    no mart reads it, so on Spark this model is left out. -#}
{{ config(enabled=target.type != 'spark') }}

with

source as (

    select * from {{ source('ingest', 'quarantine') }}

),

renamed as (

    select
        ---------- ids
        {{ dbt.concat([
            'batch_id', "'#'", dbt.safe_cast('line_number', api.Column.translate_type('string'))
        ]) }} as quarantined_line_id,
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
