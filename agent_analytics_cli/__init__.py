"""The `agent-analytics` command line (main.py), the top layer: see agent_analytics/__init__.py."""
