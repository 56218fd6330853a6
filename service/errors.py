"""Every error is a JSON body `{"error": "..."}` naming the problem, logged once (never with
the token); an unexpected exception is logged with its traceback and answered 500 without
details.

`POST /v1/traces` answers errors as the OTLP/HTTP specification says: a `google.rpc.Status`
in the request's encoding (protobuf for a protobuf request; JSON `{"code", "message"}` beside
`error` otherwise), so exporters log the server's reason."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from google.rpc.status_pb2 import Status
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("agent_analytics.service")

DESCRIPTIONS = {
    400: "malformed body or parameters",
    401: "missing, unknown or revoked bearer token",
    403: "the token's scope does not allow this endpoint",
    404: "no such item (a user without messages in the warehouse)",
    413: "body over AGENT_ANALYTICS_MAX_BODY_MB after decompression",
    415: "unsupported Content-Type or Content-Encoding",
    503: "not available now (no warehouse yet, a build writing it, landing/ not writable): retry after Retry-After seconds",
}


class ErrorBody(BaseModel):
    error: str


class TraceErrorBody(ErrorBody):
    """The JSON form of google.rpc.Status, with `error` as on every other endpoint."""

    code: int
    message: str


TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
# HTTP status -> the gRPC status code the OTLP specification pairs with it.
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 405: 12, 413: 8, 415: 3, 500: 13, 503: 14}


class ApiError(Exception):
    """An answer other than success, with its status and a message naming the problem."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def refuse_unknown_parameters(request: Request, known: set[str]) -> None:
    """400 for a query parameter the route does not take (FastAPI would ignore it silently)."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ApiError(400, f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(known))})")


def unavailable(message: str, retry_after_s: int) -> ApiError:
    return ApiError(503, message, {"Retry-After": str(retry_after_s)})


def error_responses(*codes: int) -> dict:
    """The `responses` of a route declaring these error statuses with the JSON error body."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


def trace_error_responses(*codes: int) -> dict:
    """The same for /v1/traces: google.rpc.Status as protobuf or JSON."""
    return {code: {"model": TraceErrorBody, "description": DESCRIPTIONS[code],
                   "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}}} for code in codes}


def validation_message(errors) -> str:
    """One line from pydantic's or FastAPI's validation errors: the field and what is wrong."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        if error.get("type") == "extra_forbidden":
            parts.append(f"unknown key {where!r}")
        else:
            parts.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _answer(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    logger.warning("%d %s %s: %s", status, request.method, request.url.path, message)
    return error_response(request.url.path, request.headers.get("content-type"), status, message, headers)


def error_response(path: str, content_type: str | None, status: int, message: str,
                   headers: dict[str, str] | None = None) -> Response:
    if path != TRACES_PATH:
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    code = GRPC_CODES.get(status, 2)  # 2: UNKNOWN
    if (content_type or "").split(";", 1)[0].strip().lower() == PROTOBUF:
        body = Status(code=code, message=message).SerializeToString()
        return Response(body, status_code=status, headers=headers, media_type=PROTOBUF)
    return JSONResponse({"error": message, "code": code, "message": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _answer(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer(request, 400, validation_message(exc.errors()))

    @app.exception_handler(ValidationError)
    async def invalid_body(request: Request, exc: ValidationError) -> JSONResponse:
        return _answer(request, 400, validation_message(exc.errors()))

    app.add_middleware(CatchAll)


class CatchAll:
    """ASGI middleware answering 500 for an exception no handler took, logged once with its
    traceback. (Starlette's own last-resort handler re-raises, so the server logs it again.)"""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watching_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        except Exception:  # noqa: BLE001 - the last resort: the client gets no details
            logger.exception("500 %s %s: unexpected error", scope.get("method"), scope.get("path"))
            if not started:
                content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
                answer = error_response(scope.get("path", ""), content_type, 500, "internal error")
                await answer(scope, receive, send)
