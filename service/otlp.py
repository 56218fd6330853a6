"""OTLP/HTTP trace requests (protobuf or JSON) turned into one line of OTLP/JSON, and the
`ExportTraceServiceResponse` that answers them.

A protobuf request is converted with `MessageToDict` (lowerCamelCase keys, enums as names,
64-bit integers as strings, all of which the ingest accepts), then its trace and span ids from
the base64 protobuf's JSON mapping gives to the lowercase hex OTLP/JSON requires. Spans whose
shape the ingest refuses (an unusable id, no start time, no end time or one before the start)
are counted in `partial_success`; the request is still written whole, and the ingest
quarantines those spans with file, line and reason (and, by its further rules, possibly others:
a token count out of range, a root span outside the accepted times).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from service.errors import ApiError

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
ID_KEYS = ("traceId", "spanId", "parentSpanId")
ID_BYTES = {"traceId": 16, "spanId": 8}


def media_type(content_type: str | None) -> str:
    """PROTOBUF or JSON from a Content-Type header (parameters such as charset ignored); 415 else."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        given = f"Content-Type {content_type!r} is not supported" if content_type else "no Content-Type"
        raise ApiError(415, f"{given}: send {PROTOBUF} or {JSON}")
    return media


def request_document(body: bytes, media: str) -> dict:
    """The ExportTraceServiceRequest of `body` as an OTLP/JSON object."""
    if media == PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise ApiError(400, "the body is not a protobuf ExportTraceServiceRequest") from None
        document = MessageToDict(request)
        for span in spans(document):
            _ids_to_hex(span)
            for link in span.get("links", []):
                _ids_to_hex(link)
        return document
    if not body.strip():
        return {}
    try:
        document = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ApiError(400, "the body must be one JSON object (an ExportTraceServiceRequest)")
    spans(document)  # checks the shape
    return document


def json_line(document: dict) -> bytes:
    """`document` as one compact line of JSON."""
    try:
        return (json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escaped in the JSON: no UTF-8 text holds it
        raise ApiError(400, "the body holds a string that is not valid Unicode (a lone surrogate)") from None


def spans(document: dict) -> list[dict]:
    """Every span object of the request; 400 when the nesting is not that of a request."""
    found = []
    for resource_spans in _list(document, "resourceSpans"):
        for scope_spans in _list(resource_spans, "scopeSpans"):
            found.extend(_list(scope_spans, "spans"))
    return found


def rejections(document: dict) -> Counter:
    """Why spans cannot be loaded: the reason per span (its first problem), counted."""
    return Counter(reason for reason in map(_rejection, spans(document)) if reason)


def _rejection(span: dict) -> str | None:
    for key, size in ID_BYTES.items():
        if not _valid_id(span.get(key), size):
            return f"{key} not {size} bytes or all zero"
    parent = span.get("parentSpanId")
    if parent not in (None, "", "0" * 16) and not _valid_id(parent, 8):
        return "parentSpanId not 8 bytes"
    start, end = _nanos(span.get("startTimeUnixNano")), _nanos(span.get("endTimeUnixNano"))
    if not start:  # zero is protobuf's "not set"
        return "no startTimeUnixNano"
    if end is None or end < start:
        return "endTimeUnixNano missing or before startTimeUnixNano"
    return None


def _nanos(value) -> int | None:
    """A count of nanoseconds as OTLP/JSON writes one: a number or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None


def response_body(reasons: Counter, media: str) -> bytes:
    response = ExportTraceServiceResponse()
    rejected = sum(reasons.values())
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = (
            f"{rejected} spans rejected ({', '.join(f'{n} {why}' for why, n in sorted(reasons.items()))}); "
            "they are kept in the ingest's quarantine"
        )
    if media == PROTOBUF:
        return response.SerializeToString()
    return json.dumps(MessageToDict(response), separators=(",", ":")).encode("utf-8")


def _list(parent: dict, key: str) -> list[dict]:
    value = parent.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ApiError(400, f"{key} must be an array of objects")
    return value


def _ids_to_hex(record: dict) -> None:
    for key in ID_KEYS:
        if key in record:
            record[key] = base64.b64decode(record[key]).hex()


_HEX = re.compile(r"[0-9a-fA-F]*")


def _valid_id(value, size: int) -> bool:
    """A hex id of `size` bytes, or (as protobuf's JSON mapping writes it) base64, not all zero."""
    if not isinstance(value, str):
        return False
    if len(value) == 2 * size and _HEX.fullmatch(value):
        raw = bytes.fromhex(value)
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
    return len(raw) == size and any(raw)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")
