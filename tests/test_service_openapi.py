"""The live server against its own OpenAPI document (schemathesis): for generated requests to
every operation, with a token of the operation's scope, no 5xx, and every status code,
content type and body the document declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service_server import copy_built_home, make_tokens, start_server

FIXTURES = Path(__file__).parent / "fixtures"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
INGEST_PATHS = ("/v1/traces", "/v1/events")
# read with a bearer token or the dashboard's login cookie
READ_BY_THE_PAGE = ("/app/metrics", "/app/messages", "/app/versions", "/app/compare")

# Bodies of these types are generated as bytes and text: send them as such.
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@pytest.fixture(scope="module")
def served(tmp_path_factory, built_fixture_home):
    """A server on a home built from the fixture, and a token of each scope."""
    home = copy_built_home(built_fixture_home, tmp_path_factory.mktemp("openapi") / "home")
    tokens = make_tokens(home, sender="ingest", reader="read")
    server = start_server(home, home / "server.log")
    yield server, tokens
    server.stop()


@pytest.fixture(scope="module")
def api_schema(served):
    server, _tokens = served
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


WITH_INPUT = [("/v1/traces", "POST"), ("/v1/events", "POST"), ("/v1/analytics/export", "POST"), ("/v1/metrics", "GET"),
              ("/v1/analytics/compare", "POST"), ("/app/metrics", "GET"), ("/app/messages", "GET"),
              ("/app/versions", "GET"), ("/app/compare", "GET"), ("/v1/analytics/users/{user_id}", "GET")]
# Negative cases (data the document does not allow) only where there is input to get wrong.
RUNS = ([(path, method, GenerationMode.POSITIVE) for path, method in [*WITH_INPUT, ("/healthz", "GET"), ("/readyz", "GET"),
                                                                                ("/app/session", "GET")]]
        + [(path, method, GenerationMode.NEGATIVE) for path, method in WITH_INPUT])


# schemathesis' own pytest integration of a schema loaded at run time (`from_fixture`) does not
# run under this pytest; its strategies run under Hypothesis directly instead.
@pytest.mark.parametrize("path, method, mode", RUNS, ids=[f"{m} {p} {mode.value}" for p, m, mode in RUNS])
def test_every_answer_matches_the_document(api_schema, served, path, method, mode):
    server, tokens = served
    token = tokens["sender"] if path in INGEST_PATHS else tokens["reader"]
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def check(case):
        case.call_and_validate(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    check()


def test_the_document_declares_every_error_and_the_bearer_scheme(served):
    import httpx

    server, _tokens = served
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer",
        "description": "a token made by `agent-analytics tokens create --scope ingest|read`",
    }
    expected = {
        ("/v1/traces", "post"): {"200", "400", "401", "403", "413", "415", "503"},
        ("/v1/events", "post"): {"202", "400", "401", "403", "413", "415", "503"},
        ("/v1/analytics/export", "post"): {"200", "400", "401", "403", "413", "503"},
        ("/v1/analytics/compare", "post"): {"200", "400", "401", "403", "413", "503"},
        ("/v1/metrics", "get"): {"200", "400", "401", "403", "503"},
        ("/v1/analytics/users/{user_id}", "get"): {"200", "400", "401", "403", "404", "503"},
        ("/healthz", "get"): {"200"},
        ("/readyz", "get"): {"200", "503"},
        ("/", "get"): {"200"},  # the dashboard (service/webapp_routes.py)
        ("/login", "post"): {"303", "400", "401", "403", "413"},
        ("/logout", "post"): {"303"},
        ("/app/session", "get"): {"200", "503"},
        ("/app/metrics", "get"): {"200", "400", "401", "403", "503"},
        ("/app/messages", "get"): {"200", "400", "401", "403", "503"},
        ("/app/versions", "get"): {"200", "400", "401", "403", "503"},
        ("/app/compare", "get"): {"200", "400", "401", "403", "503"},
    }
    operations = {(path, method): op for path, item in document["paths"].items() for method, op in item.items()}
    assert set(operations) == set(expected)
    for key, codes in expected.items():
        assert set(operations[key]["responses"]) == codes, key
        for code in codes - {"200", "202", "303"}:
            content = operations[key]["responses"][code]["content"]
            if key[0] == "/v1/traces":  # google.rpc.Status, as the OTLP/HTTP specification says
                assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/TraceErrorBody"}
                assert content["application/x-protobuf"]["schema"] == {"type": "string", "format": "binary"}
            else:
                assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert ("security" in operations[key]) == (key[0].startswith("/v1/") or key[0] in READ_BY_THE_PAGE), key
