"""GET /healthz (the process answers) and GET /readyz (the marts can be read), no token."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from agent_analytics.exports import open_marts
from agent_analytics.periods import iso
from ingestion.landing import scan
from service.errors import error_responses
from service.read_routes import LOCK_WAIT_S, warehouse_turn, warehouse_unavailable_as_503

router = APIRouter()


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    last_build: str | None  # when the last successful build or refresh wrote exports/analytics.json
    waiting_files: int  # files in landing/ not loaded yet
    newest_waiting_file_age_s: float | None
    oldest_waiting_file_age_s: float | None


@router.get("/healthz", summary="liveness: the process answers", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", summary="readiness: the marts can be read", response_model=Ready,
            responses=error_responses(503))
async def readyz(request: Request) -> Ready:
    settings = request.app.state.settings
    async with warehouse_turn(request):
        await run_in_threadpool(_check_warehouse, settings)
    return await run_in_threadpool(readiness, settings)


def _check_warehouse(settings) -> None:
    with warehouse_unavailable_as_503(), open_marts(settings, lock_timeout_s=LOCK_WAIT_S) as con:
        con.execute("select count(*) from dim_agents").fetchone()  # the marts are there


def readiness(settings) -> Ready:
    ages = []
    now = time.time()
    for path in scan(settings.landing_dir)[0]:
        try:
            ages.append(max(now - os.lstat(path).st_mtime, 0.0))
        except OSError:
            continue  # loaded and moved away meanwhile
    return Ready(
        status="ready",
        last_build=last_build(settings),
        waiting_files=len(ages),
        newest_waiting_file_age_s=round(min(ages), 3) if ages else None,
        oldest_waiting_file_age_s=round(max(ages), 3) if ages else None,
    )


def last_build(settings) -> str | None:
    try:
        mtime = (settings.exports_dir / "analytics.json").stat().st_mtime
    except OSError:
        return None
    return iso(datetime.fromtimestamp(mtime, timezone.utc))
