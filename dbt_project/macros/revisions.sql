{#- Messages assembled from OpenTelemetry spans can be written again by a later batch, whole,
    with the next `revision`, when more of their spans arrive (ingestion/traces.py). Native
    events are revision 0 (NULL in batches from before the column) and written once. -#}

{#- The rows of `rows` (a relation with event_id and revision) that belong to each message's
    latest revision. The revised messages are few, so the join's build side is small. -#}
{% macro latest_revision_rows(rows) -%}
    select {{ rows }}.* from {{ rows }}
    left join (
        select
            event_id,
            max(revision) as latest_revision
        from {{ source('raw', 'messages') }}
        where revision > 0
        group by event_id
    ) as revised on {{ rows }}.event_id = revised.event_id
    where revised.event_id is null or {{ rows }}.revision = revised.latest_revision
{%- endmacro %}

{#- Strategy of the row-level marts fed by messages (fct_messages, fct_llm_calls,
    fct_tool_calls): append, except that a message's newer revision first deletes its older
    rows. On Spark, which has no delete without a table format that deletes, insert_overwrite
    of the days the new messages fall on, rebuilt from staging (loaded_since_last_run): a
    revised message keeps its day, and staging holds its latest revision only. -#}
{% macro revision_strategy() -%}
    {{ return('insert_overwrite' if target.type == 'spark' else 'append_revisions') }}
{%- endmacro %}

{#- Incremental strategy `append_revisions`: delete the target's rows of messages whose new
    rows are a revision (> 0) or rewrite stored rows (loaded no later than the target's newest
    row: a changed company price re-prices them, macros/company_prices.sql), then insert the
    new rows. The count is queried first so that a run with neither (nearly every load) pays
    nothing for the delete. -#}
{% macro get_incremental_append_revisions_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set key = arg_dict['unique_key'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set rewritten = "new_rows.revision > 0 or new_rows.loaded_at <= "
        ~ query_literal('select max(loaded_at) from ' ~ target) -%}
    {%- set revised = 0 -%}
    {%- if execute -%}
        {%- set revised = run_query("select count(*) from " ~ source ~ " as new_rows where " ~ rewritten).columns[0].values()[0] -%}
    {%- endif -%}
    {%- if revised > 0 %}
    delete from {{ target }}
    where {{ key }} in (select new_rows.{{ key }} from {{ source }} as new_rows where {{ rewritten }});
    {%- endif %}
    insert into {{ target }} ({{ columns }}) (select {{ columns }} from {{ source }})
{%- endmacro %}
