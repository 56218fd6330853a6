{#- A provider-month's bill is the rows of the latest imported file that holds that provider
    and month: a corrected re-export replaces the earlier file's lines for it (ingestion/bills.py). -#}
with

source as (

    select * from {{ source('raw', 'bills') }}

),

latest as (

    select
        *,
        max(loaded_at) over (partition by provider, bill_month) as provider_month_loaded_at
    from source

),

renamed as (

    select
        ---------- ids
        {{ dbt.concat([
            'batch_id', "'#'", dbt.safe_cast('line_number', api.Column.translate_type('string'))
        ]) }} as bill_line_id,
        batch_id,

        ---------- strings
        provider,
        model,
        project,
        source_file,

        ---------- numerics
        line_number,
        amount_usd,

        ---------- dates
        bill_month,

        ---------- timestamps
        loaded_at

    from latest
    where loaded_at = provider_month_loaded_at

)

select * from renamed
