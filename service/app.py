"""The FastAPI application of `agent-analytics serve` and its OpenAPI 3.1 document."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from agent_analytics import comparison
from agent_analytics.exports import load_schema
from agent_analytics.settings import Settings
from agent_analytics.tokens import tokens_path
from ingestion.landing import remove_stale_incoming
from service import compare_routes, health_routes, ingest_routes, read_routes, user_routes, webapp_routes
from service.auth import TokenStore
from service.document_cache import DocumentCache
from service.errors import install_error_handlers

logger = logging.getLogger("agent_analytics.service")
STALE_INCOMING_S = 3600.0  # a temporary this old belongs to a writer that was killed


def create_app(settings: Settings, listen_host: str | None = None) -> FastAPI:
    """The application; `listen_host` is the address the server listens on: on a loopback one, with
    no token at all, the dashboard is open (service/webapp_routes.py)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        removed = remove_stale_incoming(settings.landing_dir, STALE_INCOMING_S)
        if removed:
            logger.info("removed %d unfinished writes of a previous server from %s", len(removed), settings.landing_dir)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(read_routes.keep_default_view_warm, app)
            yield
            tasks.cancel_scope.cancel()

    app = FastAPI(
        title="agent-analytics",
        version="1",
        summary="Receives agents' traces and events; serves the metrics of the analytics guide.",
        docs_url=None,  # the interactive pages load scripts from a CDN; the document is /openapi.json
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.listen_host = listen_host
    app.state.tokens = TokenStore(tokens_path(settings.home))
    app.state.warehouse_turn = anyio.Lock()  # see read_routes.warehouse_turn
    app.state.documents = DocumentCache(settings.document_cache_s)  # see service/document_cache.py
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    install_error_handlers(app)
    for module in (ingest_routes, read_routes, compare_routes, user_routes, health_routes, webapp_routes):
        app.include_router(module.router)
    app.mount("/static", webapp_routes.static_files(), name="static")
    app.openapi = lambda: _openapi(app)
    return app


def _openapi(app: FastAPI) -> dict:
    """FastAPI's document, with the JSON schemas of the export and the comparison, and without
    the 422 FastAPI declares for parameters: a request that does not validate is answered 400."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for name, schema in (("AnalyticsExport", load_schema()), ("AbComparison", comparison.load_schema())):
        schemas[name] = {k: v for k, v in schema.items() if k not in ("$schema", "$id")}
    app.openapi_schema = document
    return document
