{#- Grain: one row per billed provider and month (model null: the whole bill) and one per model
    line of such a bill. The estimate is the cost of the calls of the month's company days
    (fct_daily_cost_by_model); unpriced calls have no cost and are counted beside it. -#}
{%- set threshold_pct = var('bill_mismatch_pct') | float -%}

with

bills as (

    select * from {{ ref('stg_raw__bills') }}

),

daily_costs as (

    select * from {{ ref('fct_daily_cost_by_model') }}

),

monthly_costs as (

    select
        provider,
        lower(model) as model_key,
        cast({{ dbt.date_trunc('month', 'cost_date') }} as date) as cost_month,
        sum(cost_usd) as estimate_usd,
        sum(unpriced_calls) as unpriced_calls,
        sum(unpriced_tokens) as unpriced_tokens
    from daily_costs
    group by provider, lower(model), cast({{ dbt.date_trunc('month', 'cost_date') }} as date)

),

provider_costs as (

    select
        provider,
        cost_month,
        sum(estimate_usd) as estimate_usd,
        sum(unpriced_calls) as unpriced_calls,
        sum(unpriced_tokens) as unpriced_tokens
    from monthly_costs
    group by provider, cost_month

),

provider_bills as (

    select
        provider,
        bill_month,
        sum(amount_usd) as bill_usd
    from bills
    group by provider, bill_month

),

model_bills as (

    select
        provider,
        bill_month,
        model,
        sum(amount_usd) as bill_usd
    from bills
    where model is not null
    group by provider, bill_month, model

),

provider_lines as (

    select
        provider_bills.provider,
        provider_bills.bill_month,
        cast(null as {{ api.Column.translate_type('string') }}),
        provider_bills.bill_usd,
        provider_costs.estimate_usd,
        provider_costs.unpriced_calls,
        provider_costs.unpriced_tokens
    from provider_bills
    left join provider_costs
        on
            provider_bills.provider = provider_costs.provider
            and provider_bills.bill_month = provider_costs.cost_month

),

model_lines as (

    select
        model_bills.provider,
        model_bills.bill_month,
        model_bills.model,
        model_bills.bill_usd,
        monthly_costs.estimate_usd,
        monthly_costs.unpriced_calls,
        monthly_costs.unpriced_tokens
    from model_bills
    left join monthly_costs
        on
            model_bills.provider = monthly_costs.provider
            and model_bills.bill_month = monthly_costs.cost_month
            and model_bills.model = monthly_costs.model_key

),

bill_lines as (

    -- by position: provider_lines' null model has no name of its own
    select * from model_lines
    union all
    select * from provider_lines

),

amounts as (

    select
        provider,
        bill_month,
        model,
        cast(coalesce(estimate_usd, 0) as decimal(28, 10)) as estimate_usd,
        cast(bill_usd as decimal(28, 10)) as bill_usd,
        cast(coalesce(unpriced_calls, 0) as bigint) as unpriced_calls,
        cast(coalesce(unpriced_tokens, 0) as bigint) as unpriced_tokens
    from bill_lines

),

final as (

    select
        {{ dbt.hash(dbt.concat([
            'provider', "'|'", dbt.safe_cast('bill_month', api.Column.translate_type('string')),
            "'|'", "coalesce(model, '')"
        ])) }} as bill_key,
        provider,
        bill_month,
        model,
        estimate_usd,
        bill_usd,
        cast(bill_usd - estimate_usd as decimal(28, 10)) as diff_usd,
        case
            when estimate_usd > 0
                then round(cast(bill_usd - estimate_usd as double) / cast(estimate_usd as double) * 100, 4)
            when bill_usd > 0 then 100.0
            else 0.0
        end as diff_pct,
        case
            when estimate_usd > 0 then abs(bill_usd - estimate_usd) * 100 > {{ threshold_pct }} * estimate_usd
            else bill_usd > 0
        end as is_flagged,
        unpriced_calls,
        unpriced_tokens
    from amounts

)

select * from final
