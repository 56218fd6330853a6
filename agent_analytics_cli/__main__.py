"""`python -m agent_analytics_cli ...` runs the `agent-analytics` command."""

import sys

from agent_analytics_cli.main import main

sys.exit(main())
