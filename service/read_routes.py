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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Literal

import anyio
import duckdb
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from agent_analytics.exports import ExportError, MetricsQuery, NoWarehouseError, metrics_document, to_csv, to_json
from agent_analytics.periods import PeriodError
from agent_analytics.warehouse import WarehouseOpenError
from service.auth import require
from service.bodies import read_body
from service.errors import ApiError, error_responses, refuse_unknown_parameters, unavailable

router = APIRouter()
LOCK_WAIT_S = 2.0
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
    """The metrics document of `query` in `format`: from this server's document cache when it
    holds the same question on the same data (service/document_cache.py), else counted in this
    request's turn on the marts."""
    settings, cache = request.app.state.settings, request.app.state.documents
    key = await run_in_threadpool(cache.key, settings, query)
    document = cache.get(key)
    if document is None:
        async with warehouse_turn(request):
            document = await run_in_threadpool(_document, settings, query)
        cache.put(key, document)
    return _formatted(document, format)


def _document(settings, query: MetricsQuery) -> dict:
    try:
        with warehouse_unavailable_as_503():
            return metrics_document(settings, query, lock_timeout_s=LOCK_WAIT_S)
    except (PeriodError, ExportError) as exc:
        raise ApiError(400, str(exc)) from None


def _formatted(document: dict, format: str) -> Response:
    if format == "csv":
        return Response(to_csv(document), media_type="text/csv; charset=utf-8")
    return Response(to_json(document), media_type="application/json")
