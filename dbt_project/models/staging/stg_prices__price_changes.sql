with

source as (

    select * from {{ source('prices', 'price_changes') }}

),

renamed as (

    select
        ---------- strings
        provider,
        model,
        model_like,

        ---------- booleans
        is_pattern,

        ---------- dates
        valid_from,
        valid_to

    from source

)

select * from renamed
