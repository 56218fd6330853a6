with

source as (

    select * from {{ source('prices', 'company_prices') }}

),

renamed as (

    select
        ---------- strings
        provider,
        model,
        model_like,

        ---------- numerics
        literal_chars,
        input_rate,
        cache_read_rate,
        output_rate,

        ---------- booleans
        is_pattern,

        ---------- dates
        valid_from,
        valid_to

    from source

)

select * from renamed
