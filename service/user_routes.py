"""GET /v1/analytics/users/{user_id}: one user's activity over a period, as
`agent-analytics metrics --user ID --format json` prints it (agent_analytics/user_report.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from agent_analytics.exports import ExportError, MetricsQuery, to_json
from agent_analytics.periods import PeriodError
from agent_analytics.user_report import UserNotFoundError, user_document
from service.auth import require
from service.errors import ApiError, error_responses, refuse_unknown_parameters
from service.read_routes import LOCK_WAIT_S, warehouse_turn, warehouse_unavailable_as_503

router = APIRouter()
USER_PARAMETERS = {"period", "start", "end", "month", "agent", "tz", "as_of"}


@router.get("/v1/analytics/users/{user_id}", summary="one user's activity in a period (metrics --user)",
            dependencies=[Depends(require("read"))], response_class=Response,
            responses={200: {"description": "the user's totals, agents, first / last seen and days",
                             "content": {"application/json": {"schema": {"type": "object"}}}},
                       **error_responses(400, 401, 403, 404, 503)})
async def get_user(
    request: Request,
    user_id: str,
    period: Annotated[str | None, Query(description="today, week, month or Nd (default 30d)")] = None,
    start: Annotated[str | None, Query(description="first local day YYYY-MM-DD (with end)")] = None,
    end: Annotated[str | None, Query(description="last local day YYYY-MM-DD (with start)")] = None,
    month: Annotated[str | None, Query(description="a calendar month YYYY-MM")] = None,
    agent: Annotated[list[str] | None, Query(description="only this agent (repeatable)")] = None,
    tz: Annotated[str | None, Query(description="IANA time zone (default AGENT_ANALYTICS_TZ)")] = None,
    as_of: Annotated[str | None, Query(description="count up to this time: YYYY-MM-DD or an ISO time (default now)")] = None,
) -> Response:
    refuse_unknown_parameters(request, USER_PARAMETERS)
    query = MetricsQuery(period=period, start=start, end=end, month=month, agents=agent, tz=tz, as_of=as_of)
    async with warehouse_turn(request):
        return await run_in_threadpool(_answer, request.app.state.settings, query, user_id)


def _answer(settings, query: MetricsQuery, user_id: str) -> Response:
    try:
        with warehouse_unavailable_as_503():
            document = user_document(settings, query, user_id, lock_timeout_s=LOCK_WAIT_S)
    except (PeriodError, ExportError) as exc:
        raise ApiError(400, str(exc)) from None
    except UserNotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    return Response(to_json(document), media_type="application/json")
