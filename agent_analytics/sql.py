"""SQL text built from values: the one place a value (a path, a name) becomes an SQL literal.

DuckDB's COPY ... TO, read_parquet and ATTACH take their file names as literals, not as
prepared-statement parameters, so a path with a quote (`it's home`) must be escaped here; and
a file name that is not valid UTF-8 must be made text before DuckDB stores it (`stored_text`).
"""

from __future__ import annotations

import os
from os import PathLike


def literal(value: str | PathLike) -> str:
    """A single-quoted SQL string literal holding `value` exactly."""
    text = str(value)
    if "\x00" in text:
        raise ValueError("a NUL character cannot be part of an SQL string")
    return "'" + text.replace("'", "''") + "'"


def stored_text(text: str) -> str:
    """A file name or path as stored in the warehouse: a name that is not valid UTF-8 (Python
    holds its bytes as surrogates, which DuckDB refuses) keeps its bad bytes as \\xNN."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")
