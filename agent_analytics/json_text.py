"""JSON text that every JSON reader accepts, whatever the data.

Python's `json` writes `NaN` and `Infinity` for non-finite floats, which RFC 8259 does not
allow and strict readers (browsers' JSON.parse, jq, most BI tools) refuse. Every JSON output
of the product (exports, alert payloads, webhook bodies) goes through `dumps`, which writes a
non-finite number as null: a value that cannot be computed, like an average with no messages.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal


def finite(value):
    """`value` with every non-finite float or Decimal (in dicts, lists and tuples) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps(value, **kwargs) -> str:
    """`json.dumps` of `finite(value)`; never writes NaN or Infinity."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
