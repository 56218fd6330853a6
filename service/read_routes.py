"""POST /v1/analytics/export and GET /v1/metrics: the metrics document of a period, as
`agent-analytics metrics --format json` prints it, or its daily rows as the export CSV.

The marts are read from the serving copy (serving/analytics.duckdb, `open_marts`) once a build
has published one: it is never written in place, so a build never makes a read wait. Before
the first publication they are read from the warehouse, read-only under its lock, which one
process and one connection hold at a time; a build (another process) holding it makes a read
give up after LOCK_WAIT_S with 503 and Retry-After, never wait as long as the build. Reads of
this server take turns (`warehouse_turn`) before they reach for either, waiting without holding
a thread, so a read waiting behind another read is never mistaken for one blocked by a build.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Literal

import anyio
import duckdb
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from agent_analytics import exports
from agent_analytics.exports import ExportError, MetricsQuery, NoWarehouseError, metrics_document, to_csv, to_json
from agent_analytics.periods import PeriodError
from agent_analytics.warehouse import WarehouseOpenError
from service.auth import require
from service.bodies import read_body
from service.document_cache import DEFAULT_VIEW, data_version
from service.errors import ApiError, error_responses, refuse_unknown_parameters, unavailable

router = APIRouter()
logger = logging.getLogger("agent_analytics.service")
LOCK_WAIT_S = 2.0
WARM_EVERY_S = 10.0
TURN_WAIT_S = 60.0
RETRY_AFTER_S = 5
EXPORT_SCHEMA_REF = {"$ref": "#/components/schemas/AnalyticsExport"}
_DOCUMENT = {
    200: {
        "description": "the metrics document (format json) or its daily rows (format csv)",
        "content": {"application/json": {"schema": EXPORT_SCHEMA_REF}, "text/csv": {"schema": {"type": "string"}}},
    },
}


class PeriodFields(BaseModel):
    """The period of a read body: at most one of period, start/end, month; its time zone and
    the time it is counted up to."""

    model_config = ConfigDict(extra="forbid", strict=True)

    period: str | None = None
    start: str | None = None
    end: str | None = None
    month: str | None = None
    tz: str | None = None
    as_of: str | None = None


class ExportRequest(PeriodFields):
    """The default period is 30d."""

    agents: list[str] | None = None
    format: Literal["json", "csv"] = "json"


_EXPORT_OPENAPI = {
    "requestBody": {
        "required": False,
        "description": "a JSON object, whatever the Content-Type (curl -d sends a form type); empty: the defaults",
        "content": {"application/json": {"schema": ExportRequest.model_json_schema()}},
    }
}


@router.post("/v1/analytics/export", summary="the metrics document of a period, JSON or CSV",
             dependencies=[Depends(require("read"))], response_class=Response,
             responses={**_DOCUMENT, **error_responses(400, 401, 403, 413, 503)}, openapi_extra=_EXPORT_OPENAPI)
async def post_export(request: Request) -> Response:
    fields = await json_object_body(request, '{"period": "30d", "format": "json"}')
    asked = ExportRequest.model_validate(fields)  # a ValidationError is answered 400
    query = MetricsQuery(**asked.model_dump(exclude={"format"}))
    return await answer_document(request, query, asked.format)


async def json_object_body(request: Request, example: str) -> dict:
    """The request's body as one JSON object, whatever its Content-Type (`curl -d` sends a form
    type); an empty body is {}. 400 naming the problem otherwise, with `example` of a good one."""
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    try:
        fields = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not JSON ({exc})") from None
    if not isinstance(fields, dict):
        raise ApiError(400, f"the body must be one JSON object, e.g. {example}")
    return fields


METRICS_PARAMETERS = {"period", "start", "end", "month", "agent", "tz", "as_of", "format"}


@router.get("/v1/metrics", summary="the same as POST /v1/analytics/export, for tools that only GET",
            dependencies=[Depends(require("read"))], response_class=Response,
            responses={**_DOCUMENT, **error_responses(400, 401, 403, 503)})
async def get_metrics(
    request: Request,
    period: Annotated[str | None, Query(description="today, week, month or Nd (default 30d)")] = None,
    start: Annotated[str | None, Query(description="first local day YYYY-MM-DD (with end)")] = None,
    end: Annotated[str | None, Query(description="last local day YYYY-MM-DD (with start)")] = None,
    month: Annotated[str | None, Query(description="a calendar month YYYY-MM")] = None,
    agent: Annotated[list[str] | None, Query(description="only this agent (repeatable)")] = None,
    tz: Annotated[str | None, Query(description="IANA time zone (default AGENT_ANALYTICS_TZ)")] = None,
    as_of: Annotated[str | None, Query(description="count up to this time: YYYY-MM-DD or an ISO time (default now)")] = None,
    format: Annotated[Literal["json", "csv"], Query(description="json (default) or csv")] = "json",
) -> Response:
    refuse_unknown_parameters(request, METRICS_PARAMETERS)
    query = MetricsQuery(period=period, start=start, end=end, month=month, agents=agent, tz=tz, as_of=as_of)
    return await answer_document(request, query, format)


@asynccontextmanager
async def warehouse_turn(request: Request) -> AsyncIterator[None]:
    """This request's turn to read the warehouse among the server's requests."""
    turn = request.app.state.warehouse_turn
    acquired = False
    with anyio.move_on_after(TURN_WAIT_S):
        await turn.acquire()
        acquired = True
    if not acquired:
        raise unavailable(f"reads have queued for over {TURN_WAIT_S:.0f} s; retry shortly", RETRY_AFTER_S)
    try:
        yield
    finally:
        turn.release()


@contextmanager
def warehouse_unavailable_as_503() -> Iterator[None]:
    """Whatever keeps the warehouse from being read now, answered 503 with Retry-After."""
    try:
        yield
    except NoWarehouseError:
        raise unavailable("no warehouse yet: run a build first", 60) from None
    except TimeoutError:
        raise unavailable("a build is writing the warehouse; retry shortly", RETRY_AFTER_S) from None
    except duckdb.CatalogException:
        raise unavailable("the warehouse has no marts yet: run a build first", 60) from None
    except (WarehouseOpenError, duckdb.IOException) as exc:
        raise unavailable(f"the warehouse cannot be read now ({type(exc).__name__})", RETRY_AFTER_S) from None


async def answer_document(request: Request, query: MetricsQuery, format: str) -> Response:
    """The metrics document of `query` in `format`: its JSON from this server's document cache
    when it holds the same question on the same data (service/document_cache.py), else counted
    in this request's turn on the marts (looked up again when the turn comes: a request that
    waited behind the same question is answered by its document)."""
    settings, cache = request.app.state.settings, request.app.state.documents
    key = await run_in_threadpool(cache.key, settings, query) if format == "json" else None
    kept = cache.get(key)
    if kept is None:
        async with warehouse_turn(request):
            kept = cache.get(key)
            if kept is None:
                document = await run_in_threadpool(_document, settings, query)
                if format == "csv":
                    return Response(to_csv(document), media_type="text/csv; charset=utf-8")
                kept = to_json(document).encode()
                cache.put(key, kept)
    return Response(kept, media_type="application/json")


async def keep_default_view_warm(app) -> None:
    """For the server's life: every WARM_EVERY_S, when the data served changed (a new
    publication, a new goals file) and the cache lacks the dashboard's first view on it, count
    it in a turn of its own (service/document_cache.py). A failure only leaves the first request
    to count it; it is logged once per distinct error."""
    settings, cache = app.state.settings, app.state.documents
    if cache.max_age_s <= 0:
        return
    warmed, last_error = None, None
    while True:
        try:
            version = await run_in_threadpool(data_version, settings)
            if version is not None and version != warmed:
                key = await run_in_threadpool(cache.key, settings, DEFAULT_VIEW)
                async with app.state.warehouse_turn:
                    if cache.get(key) is None:
                        document = await run_in_threadpool(_warm_document, settings)
                        cache.put(key, to_json(document).encode())
                warmed = version
            last_error = None
        except Exception as exc:  # noqa: BLE001 (whatever it is, the requests count the view themselves)
            error = f"{type(exc).__name__}: {exc}"
            if error != last_error:
                logger.warning("the dashboard's first view was not counted ahead: %s", error)
            last_error = error
        await anyio.sleep(WARM_EVERY_S)


def _warm_document(settings) -> dict:
    return exports.metrics_document(settings, DEFAULT_VIEW, lock_timeout_s=LOCK_WAIT_S)


def _document(settings, query: MetricsQuery) -> dict:
    try:
        with warehouse_unavailable_as_503():
            return metrics_document(settings, query, lock_timeout_s=LOCK_WAIT_S)
    except (PeriodError, ExportError) as exc:
        raise ApiError(400, str(exc)) from None
