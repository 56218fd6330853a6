"""`serve` answers the same metrics document again from the one it computed while the data is
unchanged (service/document_cache.py): never across a publication or a goals change, never
older than AGENT_ANALYTICS_DOCUMENT_CACHE_S, never for another question.

In process (Starlette's TestClient on the app of a copy of the built fixture home), counting
the documents actually computed; the new data comes from a real ingest and build."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import service.read_routes as read_routes
from agent_analytics.settings import load_settings
from service.app import create_app
from tests.service_server import SCRIPT, copy_built_home, make_tokens

AS_OF = "2026-11-20T15:30:00Z"
MONTH = {"month": "2026-11", "as_of": AS_OF}


@pytest.fixture
def home(tmp_path, built_fixture_home) -> Path:
    return copy_built_home(built_fixture_home, tmp_path / "home")


@pytest.fixture
def computed(monkeypatch) -> list[tuple]:
    """The questions whose document was counted on the marts (not answered from the cache)."""
    seen = []
    real = read_routes.metrics_document

    def counting(settings, query, **kwargs):
        seen.append((query.period, query.month, query.as_of, tuple(query.agents or ())))
        return real(settings, query, **kwargs)

    monkeypatch.setattr(read_routes, "metrics_document", counting)
    return seen


def client_of(home: Path, cache_s: str = "300") -> TestClient:
    """A client of the home's app, with a read token (made once per home)."""
    settings = load_settings({"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC",
                              "AGENT_ANALYTICS_DOCUMENT_CACHE_S": cache_s})
    kept = home / "test-read-token"
    if not kept.exists():
        kept.write_text(make_tokens(home, reader="read")["reader"])
    client = TestClient(create_app(settings, listen_host="127.0.0.1"))
    client.headers["Authorization"] = f"Bearer {kept.read_text()}"
    return client


def messages_of(answer) -> int:
    assert answer.status_code == 200, answer.text
    return answer.json()["totals"]["messages"]


def test_the_same_question_is_counted_once_until_the_data_changes(home, computed):
    with client_of(home) as client:
        first = client.get("/v1/metrics", params=MONTH)
        again = client.get("/app/metrics", params=MONTH)  # the page's route shares the cache
        export = client.post("/v1/analytics/export", json={**MONTH, "format": "json"})
        assert again.content == first.content == export.content
        assert len(computed) == 1
        csv = client.post("/v1/analytics/export", json={**MONTH, "format": "csv"})  # CSV is counted each time
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv") and len(computed) == 2
        assert messages_of(first) == 9  # tests/fixtures: 7 + 2 new messages in November (a repeat, a bad line)

        # other questions are counted: another agent scope, another as_of, another period
        client.get("/v1/metrics", params={**MONTH, "agent": "support"})
        client.get("/v1/metrics", params={**MONTH, "as_of": "2026-11-20T15:31:00Z"})
        client.get("/v1/metrics", params={"period": "7d", "as_of": AS_OF})
        assert len(computed) == 5

        # a goal edited: the goals section changes, so the document is counted again
        (home / "goals.toml").write_text('[goals.dau]\nmetric = "dau"\ntarget = 2\ndirection = "at_least"\n')
        with_goal = client.get("/v1/metrics", params=MONTH)
        assert len(computed) == 6 and [g["name"] for g in with_goal.json()["goals"]["items"]] == ["dau"]

        # new data, ingested and built as the refresh does: the new publication is counted
        extra = home.parent / "extra.jsonl"
        extra.write_text(json.dumps({"event_id": "cache-new", "type": "message", "occurred_at": "2026-11-03T13:00:00Z",
                                     "user_id": "u9", "agent_id": "support", "status": "ok",
                                     "response_time_ms": 500}) + "\n")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
        environ.update({"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC"})
        for argv in (["ingest", str(extra)], ["build"]):
            proc = subprocess.run([str(SCRIPT), *argv], env=environ, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert messages_of(client.get("/v1/metrics", params=MONTH)) == 10
        assert len(computed) == 7


def test_kept_no_longer_than_the_setting_and_not_at_all_with_0(home, computed):
    with client_of(home, "0.5") as client:
        client.get("/v1/metrics", params=MONTH)
        client.get("/v1/metrics", params=MONTH)
        assert len(computed) == 1
        time.sleep(0.6)
        client.get("/v1/metrics", params=MONTH)
        assert len(computed) == 2
    computed.clear()
    with client_of(home, "0") as client:
        for _ in range(3):
            assert messages_of(client.get("/v1/metrics", params=MONTH)) == 9
        assert len(computed) == 3


def test_a_question_counted_up_to_now_is_kept_for_its_days(home, computed):
    """No as_of: the document counted a moment ago answers, and says when it was counted."""
    with client_of(home) as client:
        first = client.get("/v1/metrics", params={"period": "7d"}).json()
        second = client.get("/v1/metrics", params={"period": "7d"}).json()
        assert len(computed) == 1 and second["as_of"] == first["as_of"]
        assert second["generated_at"] == first["generated_at"]


def test_refused_questions_are_never_kept(home, computed):
    with client_of(home) as client:
        for _ in range(2):
            answer = client.get("/v1/metrics", params={"period": "7x"})
            assert answer.status_code == 400 and "7x" in answer.json()["error"]
        for _ in range(2):
            assert client.get("/v1/metrics", params={**MONTH, "agent": "nobody"}).status_code == 400
        assert len(computed) == 4  # both are found by the computation, each time


def test_before_the_first_publication_nothing_is_kept(tmp_path, built_fixture_home, computed):
    """The warehouse is written in place by every build: without the serving copy, every
    question is counted."""
    home = copy_built_home(built_fixture_home, tmp_path / "home")
    settings = load_settings({"AGENT_ANALYTICS_HOME": str(home)})
    from agent_analytics.serving import serving_database

    copy = serving_database(settings)
    assert copy.exists()
    copy.unlink()
    with client_of(home) as client:
        for _ in range(2):
            assert messages_of(client.get("/v1/metrics", params=MONTH)) == 9
    assert len(computed) == 2


def test_the_dashboards_first_view_is_counted_ahead(home, computed):
    """After a publication the server counts the page's first view (30 days, as of now) by
    itself: the page's first request, with no parameter, is answered without counting."""
    from service.document_cache import DEFAULT_VIEW

    with client_of(home) as client:
        cache, settings = client.app.state.documents, client.app.state.settings
        deadline = time.monotonic() + 60
        while cache.get(cache.key(settings, DEFAULT_VIEW)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        page = client.get("/app/metrics")
        assert page.status_code == 200 and page.json()["period"]["label"] == "30d"
        assert client.get("/v1/metrics", params={"period": "30d"}).content == page.content
        assert computed == []


def test_the_same_question_asked_at_once_is_counted_once(home, computed):
    """Requests waiting behind the one counting a question are answered by its document."""
    from concurrent.futures import ThreadPoolExecutor

    with client_of(home) as client:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.get("/v1/metrics", params=MONTH), range(4)))
        assert {a.status_code for a in answers} == {200} and len({a.content for a in answers}) == 1
        assert len(computed) == 1


def test_a_goals_edit_of_the_same_size_is_new_data(home, computed):
    """The goals file is known by its bytes, not by its size and time."""
    goals = home / "goals.toml"
    with client_of(home) as client:
        goals.write_text('[goals.dau]\nmetric = "dau"\ntarget = 2\ndirection = "at_least"\n')
        first = client.get("/v1/metrics", params=MONTH).json()["goals"]["items"]
        stat = os.stat(goals)
        goals.write_text('[goals.dau]\nmetric = "dau"\ntarget = 3\ndirection = "at_least"\n')
        os.utime(goals, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time
        second = client.get("/v1/metrics", params=MONTH).json()["goals"]["items"]
        assert (first[0]["target"], second[0]["target"]) == (2, 3) and len(computed) == 2
        # an unreadable goals path is the document's goals problem, not a failed request
        goals.unlink()
        goals.mkdir()
        answer = client.get("/v1/metrics", params=MONTH)
        assert answer.status_code == 200 and answer.json()["goals"]["problem"]
