"""The metrics layer: every number of the analytics guide for one period and scope.

Exports, the terminal view, reports and alerts all read `compute_metrics`, so no two
outputs can disagree. Definitions: docs/metric-definitions.md.
"""

from agent_analytics.metrics.compute import MetricsRequest, compute_metrics

__all__ = ["MetricsRequest", "compute_metrics"]
