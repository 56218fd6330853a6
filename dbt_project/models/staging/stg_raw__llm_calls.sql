with

source as (

    select * from {{ source('raw', 'llm_calls') }}
    where {{ accepted_event_time('occurred_at') }}

),

latest as (

    {{ latest_revision_rows('source') }}

),

renamed as (

    select
        ---------- ids
        {{ dbt.concat([
            'event_id', "'#'", dbt.safe_cast('call_index', api.Column.translate_type('string'))
        ]) }} as llm_call_id,
        event_id as message_id,
        call_index,
        batch_id,
        coalesce(revision, 0) as revision,

        ---------- strings
        provider,
        provider_raw,
        model,
        cost_source,

        ---------- numerics
        input_tokens,
        output_tokens,
        cache_read_tokens,
        input_tokens + output_tokens as total_tokens,
        reported_cost_usd,
        estimated_cost_usd,
        cost_usd,
        latency_ms,

        ---------- booleans
        cost_usd is not null as is_priced,

        ---------- timestamps
        occurred_at,
        {{ to_company_date('occurred_at') }} as call_date,
        loaded_at

    from latest

)

select * from renamed
