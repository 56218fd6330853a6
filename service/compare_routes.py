"""POST /v1/analytics/compare: the A/B comparison of two versions of one agent, the document
`agent-analytics compare --format json` prints.

The samples are read in this server's turn on the marts (read_routes.warehouse_turn: the
serving copy, else the warehouse under its lock for at most LOCK_WAIT_S); the statistics (a
bootstrap of up to a few seconds) run after the turn is given back, so they never hold up the
other reads.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from agent_analytics.comparison import CompareQuery, Comparison, read_comparison
from agent_analytics.exports import ExportError, to_json
from agent_analytics.periods import PeriodError
from service.auth import require
from service.errors import ApiError, error_responses
from service.read_routes import (
    LOCK_WAIT_S,
    PeriodFields,
    json_object_body,
    warehouse_turn,
    warehouse_unavailable_as_503,
)

router = APIRouter()
EXAMPLE = '{"agent": "support", "versions": ["v1", "v2"], "period": "7d"}'


class CompareRequest(PeriodFields):
    """One agent and versions A and B; the default period is 7d."""

    agent: str
    versions: Annotated[list[str], Field(min_length=2, max_length=2, description="A and B; differences are B - A")]


_COMPARE_OPENAPI = {
    "requestBody": {
        "required": True,
        "description": "a JSON object, whatever the Content-Type (curl -d sends a form type)",
        "content": {"application/json": {"schema": CompareRequest.model_json_schema()}},
    }
}
_DOCUMENT = {
    200: {
        "description": "the comparison document",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AbComparison"}}},
    },
}


@router.post("/v1/analytics/compare", summary="A/B: two versions of one agent, with intervals, p-values and verdicts",
             dependencies=[Depends(require("read"))], response_class=Response,
             responses={**_DOCUMENT, **error_responses(400, 401, 403, 413, 503)}, openapi_extra=_COMPARE_OPENAPI)
async def post_compare(request: Request) -> Response:
    asked = CompareRequest.model_validate(await json_object_body(request, EXAMPLE))  # a ValidationError is answered 400
    query = CompareQuery(**{**asked.model_dump(), "versions": tuple(asked.versions)})
    return await answer_comparison(request, query)


async def answer_comparison(request: Request, query: CompareQuery) -> Response:
    """The comparison document of `query` (also the dashboard's /app/compare): the samples read
    in this request's turn, the statistics after it."""
    async with warehouse_turn(request):
        comparison = await run_in_threadpool(_read, request.app.state.settings, query)
    return Response(to_json(await run_in_threadpool(comparison.document)), media_type="application/json")


def _read(settings, query: CompareQuery) -> Comparison:
    try:
        with warehouse_unavailable_as_503():
            return read_comparison(settings, query, lock_timeout_s=LOCK_WAIT_S)
    except (PeriodError, ExportError) as exc:
        raise ApiError(400, str(exc)) from None
