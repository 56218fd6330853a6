"""SQL text built from values: the one place a value (a path, a name) becomes an SQL literal.

DuckDB's COPY ... TO, read_parquet and ATTACH take their file names as literals, not as
prepared-statement parameters, so a path with a quote (`it's home`) must be escaped here.
"""

from __future__ import annotations

from os import PathLike


def literal(value: str | PathLike) -> str:
    """A single-quoted SQL string literal holding `value` exactly."""
    text = str(value)
    if "\x00" in text:
        raise ValueError("a NUL character cannot be part of an SQL string")
    return "'" + text.replace("'", "''") + "'"
