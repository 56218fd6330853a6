"""Agent analytics: the library every other package builds on.

The code is five packages in layers; each imports only its own layer and those below it
(tests/test_layering.py checks it), lowest first:

1. `agent_analytics`: settings, the warehouse connection, the metrics layer, exports, reports,
   alerts, the synthetic event generator. Plain Python and DuckDB, no Dagster.
2. `ingestion`: landing files validated and loaded into the raw layer. No Dagster.
3. `orchestration`: the Dagster definitions (assets, checks, jobs, schedules, sensors) and the
   build that runs them.
4. `service`: the HTTP service (`agent-analytics serve`): traces and events in, metrics out.
5. `agent_analytics_cli`: the `agent-analytics` command, a thin layer over the four above.
"""
