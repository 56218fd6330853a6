{#- Grain: one row per company day and queue. -#}

with

samples as (

    select * from {{ ref('stg_raw__queue_samples') }}

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            dbt.safe_cast('sample_date', api.Column.translate_type('string')), "'|'", 'queue_name'
        ])) }} as queue_day_key,
        sample_date,
        queue_name,
        count(*) as samples,
        {{ arg_max_value('depth', ['sampled_at', 'queue_sample_id']) }} as latest_depth,
        avg(depth) as avg_depth,
        max(depth) as max_depth,
        {{ percentile('depth', 0.95) }} as p95_depth
    from samples
    group by sample_date, queue_name

)

select * from final
