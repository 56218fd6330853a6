{#- A post-hook of the large incremental marts that a period query filters on a time column:
    after a full build, DuckDB rewrites the table sorted by `column`, so that each of its row
    groups holds a few days and a period's scan skips the others by their min/max. The full
    build's rows come out of a hash join or an aggregate in no order: at 100M messages every
    one of fct_messages' 818 row groups held every day, and one day's distinct users read them
    all (2.2 s; 0.03 s sorted). An `order by` in the model itself sorts while the join holds its
    hash table, and ran out of memory there (9.4 GiB, one thread); sorting the built table
    reads a plain scan and spills. Incremental runs append their few days at the end, which
    keeps the order, so they skip the rewrite. The sorted copy replaces the table (one write;
    the `order by` fixes its order whatever preserve_insertion_order says) and gets the
    contract's not-null constraints back. On Spark the marts are partitioned by day instead. -#}
{% macro stored_in_order(column) -%}
    {{ return(adapter.dispatch('stored_in_order', 'agent_analytics')(column)) }}
{%- endmacro %}

{% macro default__stored_in_order(column) -%}
{%- endmacro %}

{% macro duckdb__stored_in_order(column) -%}
    {#- At post-hook time is_incremental() is still false after a first or full build: the
        relation cache learns of the new table only when the materialization returns. -#}
    {%- if not is_incremental() -%}
        {%- set sorted = this.incorporate(path={'identifier': this.identifier ~ '__in_order'}) -%}
        create or replace table {{ sorted }} as select * from {{ this }} order by {{ column }};
        {% for name, col in model.columns.items() -%}
            {%- for constraint in col.constraints -%}
                {%- if constraint.type != 'not_null' -%}
                    {%- do exceptions.raise_compiler_error(
                        'stored_in_order keeps only not_null constraints; ' ~ this ~ '.' ~ name ~ ' has ' ~ constraint.type) -%}
                {%- endif %}
        alter table {{ sorted }} alter column {{ adapter.quote(name) }} set not null;
            {%- endfor %}
        {%- endfor %}
        drop table {{ this }};
        alter table {{ sorted }} rename to {{ adapter.quote(this.identifier) }}
    {%- endif -%}
{%- endmacro %}
