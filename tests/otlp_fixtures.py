"""Hand-written OTLP/JSON spans and requests for the OpenTelemetry ingest tests."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

BASE = datetime(2026, 11, 2, 12, 0, 0, tzinfo=timezone.utc)
BASE_NS = int(BASE.timestamp()) * 10**9


def attr(key: str, value) -> dict:
    """One OTLP attribute; ints as strings (the proto3 JSON mapping of int64), bools, floats, text."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def span(trace_id: str, span_id: str, parent: str | None = None, *, start_ms: int = 0, duration_ms: int = 100,
         attributes: dict | None = None, error: bool | str = False, name: str = "span", **raw) -> dict:
    """A span starting `start_ms` after BASE; `error` True gives status code 2 (an int), a
    string gives that status code as written (an enum name)."""
    start = BASE_NS + start_ms * 10**6
    body = {"traceId": trace_id, "spanId": span_id, "name": name, "kind": 1,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + duration_ms * 10**6),
            "attributes": [attr(k, v) for k, v in (attributes or {}).items()]}
    if parent:
        body["parentSpanId"] = parent
    if error:
        body["status"] = {"code": 2 if error is True else error}
    body.update(raw)
    return body


def request(*spans: dict, service: str = "support-service", resource: dict | None = None) -> dict:
    attributes = [attr("service.name", service)] + [attr(k, v) for k, v in (resource or {}).items()]
    return {"resourceSpans": [{"resource": {"attributes": attributes},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def lines(*requests: dict) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in requests)


def b64(hex_id: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode()


def trace_id(n: int) -> str:
    return f"{n:032x}"


def span_id(n: int) -> str:
    return f"{n:016x}"
