{#- The company's prices (stg_prices__company_prices, from the prices file). A call's cost is its
    reported cost, else its company price, else the genai-prices estimate made at ingest
    (fct_llm_calls). Because the prices apply when the models build, a changed prices file
    re-prices history: the incremental models rebuild the days of the calls whose price range
    changed since the last successful build (stg_prices__price_changes), besides the days of
    newly loaded data. -#}

{#- Whether the price row `prices` (a relation with provider, model, is_pattern, model_like,
    valid_from, valid_to) applies to the call `calls` (provider, model) on the company day
    `call_date`. `!` escapes `%`, `_` and itself in model_like on both engines. -#}
{% macro company_price_matches(calls, prices, call_date) -%}
    {{ prices }}.provider = {{ calls }}.provider
    and (
        (not {{ prices }}.is_pattern and {{ prices }}.model = {{ calls }}.model)
        or ({{ prices }}.is_pattern and {{ calls }}.model like {{ prices }}.model_like escape '!')
    )
    and {{ call_date }} >= {{ prices }}.valid_from
    and ({{ prices }}.valid_to is null or {{ call_date }} < {{ prices }}.valid_to)
{%- endmacro %}

{#- The cost of the call `calls` at the per-token rates of `prices`, exact: tokens as
    decimal(10, 0) (at most 10^9 per call) times rates of decimal(20, 12) fit both engines'
    decimals without loss, and the sum is rounded half up to the stored 10 decimals. -#}
{% macro company_cost(calls, prices) -%}
    cast(
        cast({{ calls }}.input_tokens - {{ calls }}.cache_read_tokens as decimal(10, 0)) * {{ prices }}.input_rate
        + cast({{ calls }}.cache_read_tokens as decimal(10, 0)) * {{ prices }}.cache_read_rate
        + cast({{ calls }}.output_tokens as decimal(10, 0)) * {{ prices }}.output_rate
        as decimal(18, 10)
    )
{%- endmacro %}

{#- The company days (message_date) of the stored calls of `llm_calls` (fct_llm_calls) that a
    changed price range matches, as an SQL list of date literals, queried when the model runs;
    none when no price changed or no stored call is affected (and on a full refresh, which
    rebuilds everything). -#}
{% macro repriced_days(llm_calls) -%}
    {%- set changes = ref('stg_prices__price_changes') -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if run_query('select count(*) from ' ~ changes).columns[0].values()[0] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        select distinct calls.message_date
        from {{ llm_calls }} as calls
        inner join {{ changes }} as changes
            on {{ company_price_matches('calls', 'changes', to_company_date('calls.occurred_at')) }}
        order by calls.message_date
    {%- endset -%}
    {%- set days = run_query(query).columns[0].values() -%}
    {%- if days | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set literals = [] -%}
    {%- for day in days -%}
        {%- do literals.append(sql_literal(day, 'date')) -%}
    {%- endfor -%}
    {{ return('(' ~ literals | join(', ') ~ ')') }}
{%- endmacro %}

{#- What affected_days reads besides its argument, for dbt to run the model after it: a model
    that calls affected_days only on incremental runs calls this outside that condition, where
    dbt's parse sees the refs. -#}
{% macro affected_days_depends_on() -%}
    -- depends_on: {{ ref('fct_llm_calls') }}, {{ ref('stg_prices__price_changes') }}
{%- endmacro %}
