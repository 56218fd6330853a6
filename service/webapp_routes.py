"""The live dashboard (docs/webapp.md): GET / (one page, its files under /static, no CDN), the
login that keeps a read token in an HttpOnly, SameSite=Strict cookie, and the page's data:
/app/session, /app/metrics (the metrics document, as GET /v1/metrics answers it),
/app/messages (the message audit behind a figure, paginated on the server), and for one agent
/app/versions (its versions with messages in the period) and /app/compare (the A/B comparison of
two of them, as POST /v1/analytics/compare answers it).

Who may read: a request carrying a token of scope `read`, in the cookie or as a bearer token.
A server listening on a loopback address (127.0.0.1, ::1, localhost) while no token exists at
all is open: the page says so. The token never appears in a URL, a log line or an error body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from agent_analytics.comparison import CompareQuery
from agent_analytics.comparison.samples import versions_with_messages
from agent_analytics.exports import ExportError, MetricsQuery, check_agents, open_marts
from agent_analytics.periods import PeriodError, PeriodQuery, check_tz, local_date, parse_as_of, parse_period
from agent_analytics.tokens import TokenError
from agent_analytics.webapp.messages import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    MessageFilter,
    MessagesError,
    list_messages,
)
from service.auth import bearer, check_token
from service.bodies import read_body
from service.compare_routes import answer_comparison
from service.errors import ApiError, error_responses, refuse_unknown_parameters, unavailable
from service.health_routes import readiness
from service.read_routes import LOCK_WAIT_S, answer_document, warehouse_turn, warehouse_unavailable_as_503

STATIC_DIR = Path(__file__).resolve().parents[1] / "agent_analytics" / "webapp" / "static"
COOKIE = "aa_read_token"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
TAG = "dashboard"
# The page loads only its own files; uPlot sets element styles from script, which CSP allows.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PERIOD_PARAMETERS = {"period", "start", "end", "month", "agent", "tz", "as_of"}
MESSAGE_PARAMETERS = PERIOD_PARAMETERS | {"hour", "status", "page", "page_size"}
COMPARE_PARAMETERS = PERIOD_PARAMETERS | {"version_a", "version_b"}
PAGE_DEFAULT_PERIOD = "30d"  # the page's, as /app/metrics (the command line's compare defaults to 7d)

router = APIRouter(tags=[TAG])
cookie = APIKeyCookie(name=COOKIE, auto_error=False, scheme_name="LoginCookie",
                      description="the read token kept by POST /login (HttpOnly, SameSite=Strict)")


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


def open_here(request: Request) -> bool:
    """True when this server listens on a loopback address and no token exists: the page and
    its data are open to whoever reaches this machine's loopback."""
    if getattr(request.app.state, "listen_host", None) not in LOOPBACK:
        return False
    try:
        return not request.app.state.tokens.tokens()
    except TokenError as exc:
        raise unavailable(f"the token store cannot be read: {exc}", 60) from None


def page_reader(request: Request,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
                kept: Annotated[str | None, Security(cookie)] = None) -> str:
    """A dependency admitting the page's readers: 'token' (a read token, as a bearer token or
    in the login cookie) or 'open' (see the module's docstring); 401 otherwise, 403 for a token
    of another scope."""
    presented = credentials.credentials if credentials else kept
    if presented:
        check_token(request, presented, "read")
        return "token"
    if open_here(request):
        return "open"
    raise ApiError(401, "log in with a token of scope read (the form at /), or send 'Authorization: Bearer <token>'",
                   {"WWW-Authenticate": "Bearer"})


# ----------------------------------------------------------------------------- the page


@router.get("/", summary="the dashboard: one page, its scripts and styles served from /static",
            response_class=FileResponse, include_in_schema=True,
            responses={200: {"content": {"text/html": {}}, "description": "the page (it logs in when needed)"}})
def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.post("/login", status_code=303, summary="keep a read token in an HttpOnly, SameSite=Strict cookie, then go to /",
             responses={303: {"description": "logged in: back to the page"}, **error_responses(400, 401, 403, 413)},
             openapi_extra={"requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
                 "schema": {"type": "object", "properties": {"token": {"type": "string"}}, "required": ["token"]}}}}})
async def login(request: Request) -> Response:
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    values = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=4).get("token") or [""]
    presented = values[0].strip()
    if not presented:
        raise ApiError(400, "the form has no token: paste a token made by 'agent-analytics tokens create --scope read'")
    check_token(request, presented, "read")
    answer = RedirectResponse("/", status_code=303)
    answer.set_cookie(COOKIE, presented, httponly=True, samesite="strict", path="/",
                      secure=request.url.scheme == "https")
    return answer


@router.post("/logout", status_code=303, summary="forget the login cookie, then go to /",
             responses={303: {"description": "logged out: back to the page"}})
def logout(request: Request) -> Response:
    answer = RedirectResponse("/", status_code=303)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
    return answer


# ----------------------------------------------------------------------------- its data


class Agent(BaseModel):
    id: str
    name: str | None


class Session(BaseModel):
    access: Literal["token", "open", "none"]  # none: log in first (nothing else is filled in)
    time_zone: str | None = None  # the company time zone, the default of the page
    today: str | None = None  # the local date now in that zone
    agents: list[Agent] = []
    data_as_of: str | None = None  # when the last successful build or refresh finished
    waiting_files: int = 0  # landed files not built yet
    newest_waiting_file_age_s: float | None = None


@router.get("/app/session", summary="who may read, the agents, the data's age: what the page needs first",
            response_model=Session, responses=error_responses(503))
async def session(request: Request) -> Session:
    try:
        access = page_reader(request, await bearer(request), await cookie(request))
    except ApiError as exc:
        if exc.status in (401, 403):
            return Session(access="none")
        raise
    settings = request.app.state.settings
    async with warehouse_turn(request):
        agents = await run_in_threadpool(_agents, settings)
    ready = await run_in_threadpool(readiness, settings)
    tz = settings.company_tz
    return Session(access=access, time_zone=tz, today=local_date(parse_as_of(None, tz), tz).isoformat(), agents=agents,
                   data_as_of=ready.last_build, waiting_files=ready.waiting_files,
                   newest_waiting_file_age_s=ready.newest_waiting_file_age_s)


def _agents(settings) -> list[Agent]:
    with warehouse_unavailable_as_503(), open_marts(settings, lock_timeout_s=LOCK_WAIT_S) as con:
        rows = con.execute("select agent_id, agent_name from dim_agents order by agent_id").fetchall()
    return [Agent(id=a, name=n) for a, n in rows]


Period = Annotated[str | None, Query(description="today, week, month or Nd (default 30d)")]
Day = Annotated[str | None, Query(description="a local day YYYY-MM-DD (start and end go together)")]
Month = Annotated[str | None, Query(description="a calendar month YYYY-MM")]
Agents = Annotated[list[str] | None, Query(description="only this agent (repeatable)")]
Zone = Annotated[str | None, Query(description="IANA time zone (default AGENT_ANALYTICS_TZ)")]
AsOf = Annotated[str | None, Query(description="count up to this time: YYYY-MM-DD or an ISO time (default now)")]


@router.get("/app/metrics", summary="the metrics document of GET /v1/metrics, for the page (cookie or bearer)",
            response_class=Response, dependencies=[Depends(page_reader)],
            responses={200: {"description": "the metrics document", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AnalyticsExport"}}}}, **error_responses(400, 401, 403, 503)})
async def page_metrics(request: Request, period: Period = None, start: Day = None, end: Day = None,
                       month: Month = None, agent: Agents = None, tz: Zone = None, as_of: AsOf = None) -> Response:
    refuse_unknown_parameters(request, PERIOD_PARAMETERS)
    query = MetricsQuery(period=period, start=start, end=end, month=month, agents=agent, tz=tz, as_of=as_of)
    return await answer_document(request, query, "json")


class Message(BaseModel):
    occurred_at: str
    message_id: str
    user_id: str | None
    agent_id: str
    agent_version: str | None
    status: str
    error_type: str | None
    response_time_ms: float | None
    llm_calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    tools: list[str]


class MessagePage(BaseModel):
    period: dict
    filters: dict
    total: int  # messages matching, over all pages
    page: int
    page_size: int
    pages: int
    messages: list[Message]  # newest first, then by message id (a stable order)


@router.get("/app/messages", summary="the messages behind a figure: a period, agents, an hour of the day, a status",
            response_model=MessagePage, dependencies=[Depends(page_reader)],
            responses=error_responses(400, 401, 403, 503))
async def messages(
    request: Request, period: Period = None, start: Day = None, end: Day = None, month: Month = None,
    agent: Agents = None, tz: Zone = None, as_of: AsOf = None,
    hour: Annotated[int | None, Query(ge=0, le=23, description="only this local hour of the day, 0-23")] = None,
    status: Annotated[Literal["ok", "error"] | None, Query(description="only messages of this status")] = None,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page number, from 1")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="messages per page")] = DEFAULT_PAGE_SIZE,
) -> JSONResponse:
    refuse_unknown_parameters(request, MESSAGE_PARAMETERS)
    settings = request.app.state.settings
    query = MetricsQuery(period=period, start=start, end=end, month=month, agents=agent, tz=tz, as_of=as_of)
    async with warehouse_turn(request):
        found = await run_in_threadpool(_messages, settings, query, hour, status, page, page_size)
    return JSONResponse(found)


def _messages(settings, query: MetricsQuery, hour, status, page, page_size) -> dict:
    try:
        tz = check_tz(query.tz or settings.company_tz)
        as_of = parse_as_of(query.as_of, tz)
        chosen_period = parse_period(query.period, query.start, query.end, query.month, as_of, tz)
        with warehouse_unavailable_as_503(), open_marts(settings, lock_timeout_s=LOCK_WAIT_S) as con:
            agents = check_agents(con, query.agents)
            chosen = MessageFilter(chosen_period, agents, hour, status, page, page_size)
            return list_messages(con, chosen)
    except (PeriodError, ExportError, MessagesError) as exc:
        raise ApiError(400, str(exc)) from None


class Version(BaseModel):
    version: str
    messages: int


class Versions(BaseModel):
    agent: str
    period: dict
    versions: list[Version]  # every version of the agent with messages in the period, by name


OneAgent = Annotated[str, Query(description="the agent whose versions are listed or compared")]


@router.get("/app/versions", summary="the versions of one agent with messages in the period, for the comparison",
            response_model=Versions, dependencies=[Depends(page_reader)], responses=error_responses(400, 401, 403, 503))
async def versions(request: Request, agent: OneAgent, period: Period = None, start: Day = None, end: Day = None,
                   month: Month = None, tz: Zone = None, as_of: AsOf = None) -> Versions:
    refuse_unknown_parameters(request, PERIOD_PARAMETERS)
    query = PeriodQuery(period=period, start=start, end=end, month=month, tz=tz, as_of=as_of)
    async with warehouse_turn(request):
        return await run_in_threadpool(_versions, request.app.state.settings, agent, query)


def _versions(settings, agent: str, query: PeriodQuery) -> Versions:
    try:
        chosen, _ = query.resolve(settings.company_tz, PAGE_DEFAULT_PERIOD)
        with warehouse_unavailable_as_503(), open_marts(settings, lock_timeout_s=LOCK_WAIT_S) as con:
            (agent,) = check_agents(con, [agent])
            found = versions_with_messages(con, agent, chosen)
    except (PeriodError, ExportError) as exc:
        raise ApiError(400, str(exc)) from None
    return Versions(agent=agent, period=chosen.describe(), versions=[Version(version=v, messages=n) for v, n in found.items()])


@router.get("/app/compare", summary="A/B: two versions of one agent, the document of POST /v1/analytics/compare",
            response_class=Response, dependencies=[Depends(page_reader)],
            responses={200: {"description": "the comparison document", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/AbComparison"}}}}, **error_responses(400, 401, 403, 503)})
async def compare(request: Request, agent: OneAgent,
                  version_a: Annotated[str, Query(description="version A")],
                  version_b: Annotated[str, Query(description="version B; differences are B - A")],
                  period: Period = None, start: Day = None, end: Day = None, month: Month = None, tz: Zone = None,
                  as_of: AsOf = None) -> Response:
    refuse_unknown_parameters(request, COMPARE_PARAMETERS)
    given = period or start or end or month  # none: the page's default period, not the command's
    query = CompareQuery(agent=agent, versions=(version_a, version_b), period=period if given else PAGE_DEFAULT_PERIOD,
                         start=start, end=end, month=month, tz=tz, as_of=as_of)
    return await answer_comparison(request, query)

