with

source as (

    select * from {{ source('raw', 'messages') }}
    where {{ accepted_event_time('occurred_at') }}

),

latest as (

    {{ latest_revision_rows('source') }}

),

renamed as (

    select
        ---------- ids
        event_id as message_id,
        user_id,
        agent_id,
        conversation_id,
        batch_id,
        coalesce(revision, 0) as revision,

        ---------- strings
        agent_name,
        agent_version,
        status,
        error_type,
        source_file,

        ---------- numerics
        response_time_ms,
        llm_call_count,
        tool_call_count,
        line_number,

        ---------- booleans
        status = 'error' as is_error,

        ---------- timestamps
        occurred_at,
        {{ to_company_date('occurred_at') }} as message_date,
        loaded_at

    from latest

)

select * from renamed
