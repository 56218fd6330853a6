"""A real OpenTelemetry client: the official Python SDK (BatchSpanProcessor + the OTLP/HTTP
protobuf exporter) instruments a small fake agent and exports to `agent-analytics serve`; after
a build, the export endpoint counts exactly the messages, LLM calls, tokens and errors the
agent made (the expected figures are the agent's own tallies, kept as it runs).

The processor exports in batches of 2 spans (each trace has 3), and children end (and are queued) before their
root, so the spans of most traces arrive in different requests, i.e. different landing files:
the trace assembly across batches is exercised by a real exporter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from tests.service_server import make_tokens, start_server

CLI = Path(sys.executable).with_name("agent-analytics")


def run_fake_agent(tracer, tally: dict) -> None:
    """Eight user messages to the `support` agent: each one `invoke_agent` root with one or two
    `chat` spans and a tool call on every other message; message 5 fails."""
    for n in range(8):
        with tracer.start_as_current_span("invoke_agent support", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "support", "gen_ai.agent.name": "Support",
            "user.id": f"u-{n % 3}", "gen_ai.conversation.id": f"c-{n}",
        }) as root:
            for call in range(1 + n % 2):
                input_tokens, output_tokens = 100 * (n + 1) + call, 10 * (n + 1)
                with tracer.start_as_current_span("chat gpt-4o", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": input_tokens,
                    "gen_ai.usage.output_tokens": output_tokens,
                }):
                    pass
                tally["llm_calls"] += 1
                tally["input_tokens"] += input_tokens
                tally["output_tokens"] += output_tokens
            if n % 2 == 0:
                with tracer.start_as_current_span("execute_tool search", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search",
                }):
                    pass
                tally["tool_calls"] += 1
            if n == 5:
                root.set_status(Status(StatusCode.ERROR, "model timeout"))
                root.set_attribute("error.type", "timeout")
                tally["errors"] += 1
            tally["messages"] += 1


@pytest.fixture
def server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    tokens = make_tokens(home, agent="ingest", bi="read")
    server = start_server(home, tmp_path / "server.log")
    yield server, tokens
    server.stop()


def test_the_sdk_exports_and_the_metrics_count_exactly_what_the_agent_did(server):
    server, tokens = server
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces",
                                headers={"Authorization": f"Bearer {tokens['agent']}"})
    provider = TracerProvider(resource=Resource.create({"service.name": "fake-agent"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=2, schedule_delay_millis=50))
    tally = dict.fromkeys(("messages", "errors", "llm_calls", "input_tokens", "output_tokens", "tool_calls"), 0)
    run_fake_agent(provider.get_tracer("fake-agent"), tally)
    assert provider.force_flush(30_000)
    provider.shutdown()

    landed = sorted((server.home / "landing").glob("otlp-*.jsonl"))
    spans = tally["messages"] + tally["llm_calls"] + tally["tool_calls"]
    assert len(landed) >= 12  # 24 spans in batches of at most 2

    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    env.update(AGENT_ANALYTICS_HOME=str(server.home), AGENT_ANALYTICS_TZ="UTC")
    build = subprocess.run([str(CLI), "build"], env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    today = datetime.now(timezone.utc).date().isoformat()
    answer = httpx.post(f"{server.url}/v1/analytics/export", timeout=60,
                        headers={"Authorization": f"Bearer {tokens['bi']}"},
                        json={"start": today, "end": today, "tz": "UTC", "format": "json"})
    assert answer.status_code == 200, answer.text
    totals = answer.json()["totals"]
    assert {k: totals[k] for k in ("messages", "errors", "llm_calls", "input_tokens", "output_tokens")} == {
        k: tally[k] for k in ("messages", "errors", "llm_calls", "input_tokens", "output_tokens")}
    assert totals["total_tokens"] == tally["input_tokens"] + tally["output_tokens"]
    assert totals["cost_usd"] > 0  # gpt-4o is priced

    con = duckdb.connect(str(server.home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from fct_tool_calls").fetchone()[0] == tally["tool_calls"]
        assert con.execute("select sum(records), sum(loaded), sum(duplicates), sum(quarantined) from ingest.ledger "
                           "where record_type = 'span'").fetchone() == (spans, spans, 0, 0)
        assert con.execute("select count(*) from ingest.otel_spans where state <> 'assembled'").fetchone()[0] == 0
        split = con.execute("select count(*) from (select trace_id from ingest.otel_spans group by trace_id "
                            "having count(distinct batch_id) > 1)").fetchone()[0]
        assert split >= tally["messages"] // 2  # at least every other trace came in two requests
        assert con.execute("select agent_id, error_type from fct_messages where status = 'error'").fetchall() == [
            ("support", "timeout")]
    finally:
        con.close()
