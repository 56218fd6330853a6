"""Deployments before and after: for each deployment of an agent, the same length of time
before and after it (clipped at the agent's previous and next deployments and at "now"), the
agent's metrics in both windows, the change and whether it is significant. Definitions:
docs/metric-definitions.md, *Deployments*.

windows.py finds the period's deployments and their windows (from the fct_deployments mart),
section.py computes the metrics document's `deployments` section in SQL (grouped aggregates,
the error rate's z-test from counts), command.py the `agent-analytics deployments` command
with every test of the A/B comparison (agent_analytics/comparison/) on each window's
messages, render.py draws the command's document for the terminal.
"""
