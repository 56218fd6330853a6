"""POST /v1/traces and /v1/events: a body is written durably into landing/ (see
`ingestion.landing.write_landing_file`) before the answer, so every acknowledged request is
loaded by the next ingest, and a re-sent one is deduplicated there by its event or span ids."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ingestion.landing import write_landing_file
from service import otlp
from service.auth import require
from service.bodies import decoded, read_body
from service.errors import ApiError, error_responses, trace_error_responses, unavailable

router = APIRouter()
INGEST_ERRORS = error_responses(400, 401, 403, 413, 415, 503)
TRACE_ERRORS = trace_error_responses(400, 401, 403, 413, 415, 503)
_BINARY = {"type": "string", "format": "binary"}
_RESPONSE_SCHEMA = {
    "type": "object",
    "description": "ExportTraceServiceResponse (OTLP/JSON); partialSuccess only when spans were rejected",
    "properties": {
        "partialSuccess": {
            "type": "object",
            "properties": {
                "rejectedSpans": {"type": ["string", "integer"], "description": "an int64, as a string"},
                "errorMessage": {"type": "string"},
            },
        }
    },
}
_TRACES_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "an OTLP ExportTraceServiceRequest; optionally Content-Encoding: gzip",
        "content": {
            otlp.PROTOBUF: {"schema": _BINARY},
            otlp.JSON: {"schema": {"type": "object", "description": "ExportTraceServiceRequest in OTLP/JSON"}},
        },
    }
}
_EVENTS_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "JSON Lines, one event per line (docs/events.md); optionally Content-Encoding: gzip",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
    }
}


class EventsAccepted(BaseModel):
    lines: int
    file: str


@router.post(
    "/v1/traces",
    summary="OTLP/HTTP traces (protobuf or JSON)",
    dependencies=[Depends(require("ingest"))],
    response_class=Response,
    responses={
        200: {
            "description": "written durably; ExportTraceServiceResponse in the request's encoding",
            "content": {otlp.JSON: {"schema": _RESPONSE_SCHEMA}, otlp.PROTOBUF: {"schema": _BINARY}},
        },
        **TRACE_ERRORS,
    },
    openapi_extra=_TRACES_OPENAPI,
)
async def post_traces(request: Request) -> Response:
    settings = request.app.state.settings
    media = otlp.media_type(request.headers.get("content-type"))
    body = await read_body(request, settings.max_body_bytes)
    answer = await run_in_threadpool(_land_traces, settings, body, request.headers.get("content-encoding"), media)
    return Response(answer, media_type=media)


def _land_traces(settings, body: bytes, encoding: str | None, media: str) -> bytes:
    document = otlp.request_document(decoded(body, encoding, settings.max_body_bytes), media)
    if document.get("resourceSpans"):  # an empty request is answered, not written
        _land(settings, "otlp", otlp.json_line(document))
    return otlp.response_body(otlp.rejections(document), media)


@router.post(
    "/v1/events",
    summary="native events, JSON Lines (docs/events.md)",
    dependencies=[Depends(require("ingest"))],
    status_code=202,
    response_model=EventsAccepted,
    responses={202: {"description": "written durably into landing/; the ingest validates every line"}, **INGEST_ERRORS},
    openapi_extra=_EVENTS_OPENAPI,
)
async def post_events(request: Request) -> EventsAccepted:
    settings = request.app.state.settings
    body = await read_body(request, settings.max_body_bytes)
    return await run_in_threadpool(_land_events, settings, body, request.headers.get("content-encoding"))


def _land_events(settings, body: bytes, encoding: str | None) -> EventsAccepted:
    data = decoded(body, encoding, settings.max_body_bytes)
    if not data.strip():
        raise ApiError(400, "the body holds no events: send JSON Lines, one event per line")
    if not data.endswith(b"\n"):
        data += b"\n"
    path = _land(settings, "events", data)
    return EventsAccepted(lines=data.count(b"\n"), file=path.name)


def _land(settings, prefix: str, data: bytes) -> Path:
    """The body written durably into landing/; a disk that refuses it (full, read-only) is a
    503 the client retries, not a 500."""
    try:
        return write_landing_file(settings.landing_dir, prefix, data)
    except OSError as exc:
        raise unavailable(f"cannot write into landing/ now ({exc.strerror or type(exc).__name__}); retry later", 30) from None
