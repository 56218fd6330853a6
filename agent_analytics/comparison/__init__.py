"""A/B comparison: two versions of one agent over a period, metric by metric, with the
difference, its confidence interval, a p-value and a verdict (`agent-analytics compare`,
POST /v1/analytics/compare). Definitions: docs/metric-definitions.md, *A/B comparison*.

samples.py reads the per-unit values from the marts, statistics.py tests them, document.py
assembles the document, render.py draws it for the terminal, request.py checks a request and
ties them together.
"""

from agent_analytics.comparison.document import load_schema
from agent_analytics.comparison.request import (
    CompareQuery,
    Comparison,
    ComparisonError,
    compare_document,
    read_comparison,
)

__all__ = ["CompareQuery", "Comparison", "ComparisonError", "compare_document", "load_schema", "read_comparison"]
