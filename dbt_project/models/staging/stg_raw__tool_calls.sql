with

source as (

    select * from {{ source('raw', 'tool_calls') }}
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
        ]) }} as tool_call_id,
        event_id as message_id,
        call_index,
        batch_id,
        coalesce(revision, 0) as revision,

        ---------- strings
        tool_name,
        status,

        ---------- numerics
        latency_ms,

        ---------- booleans
        status = 'error' as is_error,

        ---------- timestamps
        occurred_at,
        {{ to_company_date('occurred_at') }} as call_date,
        loaded_at

    from latest

)

select * from renamed
