"""`adapter.dispatch` for sqlfluff's jinja templater: the project's duckdb__ (else default__) macro."""

from jinja2 import pass_context


@pass_context
def dispatch(context, macro_name, macro_namespace=None):
    return context.get(f"duckdb__{macro_name}") or context[f"default__{macro_name}"]
