{#- The measures every reader shares, defined once. The marts (fct_agent_daily,
    fct_daily_activity, fct_daily_cost_by_*) group them by company day; the metrics layer
    (agent_analytics/metrics/measures.py) renders these same macros with Jinja and groups them
    by any window, time zone and agent scope. So a mart and the metrics document of the same
    whole days agree by construction. Plain SQL and Jinja only (no dbt context): both sides
    must be able to render them. Ratios (error rate, averages, cost per message) are always
    quotients of these sums, never averages of daily ratios. Counts and token sums are cast to
    bigint: DuckDB sums integers into an int128 (hugeint), which ODBC drivers, Tableau, Power BI
    and Parquet readers handle badly. Sums of call costs are cast to decimal(38,10), DuckDB's sum
    of decimal(18,10), which Spark makes decimal(28,10). -#}

{#- Over fct_messages rows. -#}
{% macro message_measures() -%}
    count(*) as messages,
    cast(coalesce(sum(case when is_error then 1 else 0 end), 0) as bigint) as errors,
    count(response_time_ms) as timed_messages,
    sum(response_time_ms) as total_response_time_ms,
    cast(coalesce(sum(input_tokens), 0) as bigint) as input_tokens,
    cast(coalesce(sum(output_tokens), 0) as bigint) as output_tokens,
    cast(coalesce(sum(total_tokens), 0) as bigint) as total_tokens,
    coalesce(sum(cost_usd), 0) as cost_usd,
    cast(coalesce(sum(llm_call_count), 0) as bigint) as llm_calls,
    cast(coalesce(sum(unpriced_call_count), 0) as bigint) as unpriced_calls,
    cast(coalesce(sum(unpriced_tokens), 0) as bigint) as unpriced_tokens
{%- endmacro %}

{#- Over fct_llm_calls rows. Cost sums priced calls only; unpriced calls (no reported cost, no
    known price) are counted, never costed at $0. -#}
{% macro call_measures() -%}
    count(*) as llm_calls,
    cast(coalesce(sum(case when is_priced then 1 else 0 end), 0) as bigint) as priced_calls,
    cast(coalesce(sum(case when is_priced then 0 else 1 end), 0) as bigint) as unpriced_calls,
    cast(coalesce(sum(input_tokens), 0) as bigint) as input_tokens,
    cast(coalesce(sum(output_tokens), 0) as bigint) as output_tokens,
    cast(coalesce(sum(cache_read_tokens), 0) as bigint) as cache_read_tokens,
    cast(coalesce(sum(total_tokens), 0) as bigint) as total_tokens,
    cast(coalesce(sum(case when is_priced then 0 else total_tokens end), 0) as bigint) as unpriced_tokens,
    cast(coalesce(sum(case when is_priced then 0 else input_tokens end), 0) as bigint) as unpriced_input_tokens,
    cast(coalesce(sum(case when is_priced then 0 else output_tokens end), 0) as bigint) as unpriced_output_tokens,
    cast(coalesce(sum(cost_usd), 0) as decimal(38, 10)) as cost_usd,
    cast(coalesce(sum(reported_cost_usd), 0) as decimal(38, 10)) as reported_cost_usd,
    cast(coalesce(sum(case when cost_source = 'estimated' then cost_usd end), 0) as decimal(38, 10)) as estimated_cost_usd
{%- endmacro %}

{#- Over fct_sessions rows; a session counts in the day (window) of its first message. -#}
{% macro session_measures() -%}
    count(*) as sessions,
    coalesce(sum(duration_ms), 0) as total_session_duration_ms,
    cast(coalesce(sum(message_count), 0) as bigint) as session_messages
{%- endmacro %}

{#- DAU / WAU / MAU per day of `days` (a relation with column activity_date, every day from
    the first to the last to report, with no gap): distinct users over the 1 / 7 / 30 days
    ending on the day, never sums of daily counts. `user_days` (user_id, active_date) holds
    each user's active days, none before the first day of `days`. Each active day of a user
    opens a window that the user's next active day takes over; a running sum of window starts
    and ends counts the users whose window covers each day. -#}
{% macro active_users(user_days, days) -%}
    select
        days.activity_date,
        cast(sum(coalesce(changes.dau_change, 0)) over (order by days.activity_date rows between unbounded preceding and current row) as bigint) as dau,
        cast(sum(coalesce(changes.wau_change, 0)) over (order by days.activity_date rows between unbounded preceding and current row) as bigint) as wau,
        cast(sum(coalesce(changes.mau_change, 0)) over (order by days.activity_date rows between unbounded preceding and current row) as bigint) as mau
    from {{ days }} as days
    left join (
        with next_active as (
            select
                user_id,
                active_date,
                lead(active_date) over (partition by user_id order by active_date) as next_active_date
            from {{ user_days }}
        )
        select edge_date, sum(dau_change) as dau_change, sum(wau_change) as wau_change, sum(mau_change) as mau_change
        from (
            select active_date as edge_date, 1 as dau_change, 1 as wau_change, 1 as mau_change from next_active
            union all
            select active_date + 1, -1, 0, 0 from next_active
            union all
            select least(coalesce(next_active_date, active_date + 7), active_date + 7), 0, -1, 0 from next_active
            union all
            select least(coalesce(next_active_date, active_date + 30), active_date + 30), 0, 0, -1 from next_active
        ) as edges
        group by edge_date
    ) as changes on changes.edge_date = days.activity_date
{%- endmacro %}
