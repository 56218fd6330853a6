{#- Grain: one row per queue depth sample (platform-wide). -#}

with

samples as (

    select * from {{ ref('stg_raw__queue_samples') }}

),

final as (

    select
        queue_sample_id,
        queue_name,
        depth,
        sampled_at,
        sample_date
    from samples

)

select * from final
