"""The live dashboard of `agent-analytics serve` (docs/webapp.md) in a real browser: Debian's
chromium driven by Playwright against a real server on 127.0.0.1 serving the built fixture.

The figures the page shows are checked against the metrics document of the same query (GET
/v1/metrics with a bearer token) and, for one query, against the oracle (tests/oracle.py,
computed from the raw fixture files); the message lists against the fixture's messages
filtered here by hand. Screenshots of every section go to tests/artifacts/webapp/.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.service_server import copy_built_home, make_tokens, start_server

sys.path.insert(0, str(Path(__file__).parent))
import oracle  # noqa: E402  (tests/oracle.py: no code shared with the warehouse)

FIXTURES = Path(__file__).parent / "fixtures"
FILES = [FIXTURES / "day1.jsonl", FIXTURES / "day2.jsonl"]
AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
ARTIFACTS = Path(__file__).parent / "artifacts" / "webapp"
AS_OF = "2026-11-20T15:30:00Z"  # after the fixture's days: every query counts up to the same instant
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DRILL_KEYS = {"drill", "day", "hour", "status", "page"}
SECTIONS = ("overview", "engagement", "performance", "cost", "tokens", "health")


@pytest.fixture(scope="module")
def served(tmp_path_factory, built_fixture_home):
    """The built fixture served with a read token and an ingest token (UTC company zone)."""
    home = copy_built_home(built_fixture_home, tmp_path_factory.mktemp("webapp") / "home")
    tokens = make_tokens(home, reader="read", sender="ingest")
    server = start_server(home, home / "server.log", {"AGENT_ANALYTICS_TZ": "UTC"})
    yield server, tokens
    server.stop()
    log = server.log()
    assert tokens["reader"] not in log and tokens["sender"] not in log


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("Debian chromium is missing: .ci/run installs it (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Tab:
    """A page of a fresh browser context, with the console errors, page errors and requests
    seen by it."""

    def __init__(self, browser, base_url: str):
        # bypass_csp: axe-core is injected as an inline script, which the page's CSP forbids
        self.context = browser.new_context(viewport={"width": 1300, "height": 900}, bypass_csp=True)
        self.page = self.context.new_page()
        self.base = base_url
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.base}/{query}")
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_selector('main[data-ready="1"], main[data-ready="login"]', state="attached", timeout=60_000)

    def act(self, action) -> None:
        """Do `action` (which starts a new view) and wait for the view to be drawn."""
        action()
        self.ready()

    def login(self, token: str) -> None:
        self.open()
        self.page.fill("#token", token)
        self.page.click("#login-form button")
        self.page.wait_for_selector('main[data-ready="1"]', state="attached", timeout=60_000)

    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.page.url).query)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, served):
    """A tab logged in with the read token; no console error by the end of the test."""
    server, tokens = served
    opened = Tab(browser, server.url)
    opened.login(tokens["reader"])
    yield opened
    problems = opened.problems
    opened.close()
    assert problems == []
    assert all(r.startswith(server.url) for r in opened.requests)  # nothing from elsewhere: no CDN


def document_of(served, query: list[tuple[str, str]]) -> dict:
    """The metrics document of the page's query, from the API with a bearer token."""
    server, tokens = served
    params = [(k, v) for k, v in query if k not in DRILL_KEYS]
    response = httpx.get(f"{server.url}/v1/metrics", params=params, timeout=60,
                         headers={"Authorization": f"Bearer {tokens['reader']}"})
    assert response.status_code == 200, response.text
    return response.json()


SHOWN = """() => {
  const value = (node) => node ? node.getAttribute('data-value') : undefined;
  const kpis = Object.fromEntries([...document.querySelectorAll('[data-kpi]')].map(
    (k) => [k.dataset.kpi, value(k.querySelector('.value'))]));
  const agents = [...document.querySelectorAll('#agent-table tbody tr')].map((tr) => [
    tr.querySelector('[data-key=agent_label]').innerText, value(tr.querySelector('[data-key=messages]')),
    value(tr.querySelector('[data-key=cost_usd]')), value(tr.querySelector('[data-key=error_rate_pct]'))]);
  const daily = [...document.querySelectorAll('#overview figure tbody tr')].map((tr) => [
    tr.querySelector('[data-key=date]').innerText, value(tr.querySelector('[data-key=messages]')),
    value(tr.querySelector('[data-key=errors]'))]);
  const cost = [...document.querySelectorAll('#cost figure tbody tr')].map(
    (tr) => value(tr.querySelector('[data-key=cost_usd]')));
  return {kpis, agents, daily, cost, line: document.querySelector('#period-line').innerText};
}"""


def number(text: str | None):
    return None if text is None else json.loads(text)


def shown(tab: Tab) -> dict:
    seen = tab.page.evaluate(SHOWN)
    return {
        "kpis": {k: number(v) for k, v in seen["kpis"].items()},
        "agents": [(label, number(m), number(c), number(e)) for label, m, c, e in seen["agents"]],
        "daily": [(day, number(m), number(e)) for day, m, e in seen["daily"]],
        "cost": [number(c) for c in seen["cost"]],
        "line": seen["line"],
    }


def expected(doc: dict) -> dict:
    return {
        "kpis": {k: doc["overview"][k]["value"] for k in
                 ("active_users", "dau", "sessions", "messages", "active_agents", "cost_usd", "error_rate_pct")},
        "agents": [(a["agent_label"], a["messages"], a["cost_usd"], a["error_rate_pct"]) for a in doc["performance"]["agents"]],
        "daily": [(d["date"], d["messages"], d["errors"]) for d in doc["daily"]],
        "cost": [d["cost_usd"] for d in doc["cost"]["by_day"]],
    }


def assert_shows_document(tab: Tab, served) -> dict:
    doc = document_of(served, tab.query())
    seen = shown(tab)
    assert {k: v for k, v in seen.items() if k != "line"} == expected(doc)
    period = doc["period"]
    assert seen["line"].startswith(f"{period['label']}: {period['start_date']} to {period['end_date']}")
    assert f"time zone {doc['time_zone']}" in seen["line"]
    return doc


# ----------------------------------------------------------------- the figures


def test_the_figures_are_the_metrics_document_of_each_view(tab, served):
    page = tab.page
    tab.act(lambda: tab.open(f"?month=2026-11&as_of={AS_OF}"))
    doc = assert_shows_document(tab, served)
    # and the oracle agrees, from the raw files: 9 messages in November, 1 error
    want = oracle.compute(FILES, {"kind": "month", "month": "2026-11"}, "UTC",
                          datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc), None, None)
    assert doc["overview"]["messages"]["value"] == want["overview"]["messages"]["value"] == 9
    assert shown(tab)["kpis"]["error_rate_pct"] == pytest.approx(want["overview"]["error_rate_pct"]["value"])
    assert page.inner_text('[data-kpi="cost_usd"] .value') == "$0.18"
    assert page.inner_text('[data-kpi="error_rate_pct"] .value') == "11.11%"
    assert page.inner_text("#month-label") == "2026-11"

    # the month switcher: previous (October: nothing), next (back to November)
    tab.act(lambda: page.click("#prev-month"))
    assert dict(tab.query())["month"] == "2026-10"
    assert assert_shows_document(tab, served)["overview"]["messages"]["value"] == 0
    tab.act(lambda: page.click("#next-month"))
    assert dict(tab.query())["month"] == "2026-11"
    assert_shows_document(tab, served)

    # a rolling period, N days, custom dates
    tab.act(lambda: page.select_option("#period", "7d"))
    assert dict(tab.query())["period"] == "7d" and "month" not in dict(tab.query())
    assert_shows_document(tab, served)
    page.select_option("#period", "nd")
    page.wait_for_selector('main[data-ready="1"]', state="attached")
    page.fill("#days", "20")
    tab.act(lambda: page.press("#days", "Tab"))
    assert dict(tab.query())["period"] == "20d"
    assert assert_shows_document(tab, served)["overview"]["messages"]["value"] == 9
    page.select_option("#period", "custom")
    page.fill("#start", "2026-11-03")
    page.fill("#end", "2026-11-05")
    tab.act(lambda: page.click("#apply-dates"))
    assert (dict(tab.query())["start"], dict(tab.query())["end"]) == ("2026-11-03", "2026-11-05")
    assert assert_shows_document(tab, served)["overview"]["messages"]["value"] == 3  # m6, m7, m8

    # agents: one, then both, then all
    tab.act(lambda: page.select_option("#agents", ["support"]))
    assert [v for k, v in tab.query() if k == "agent"] == ["support"]
    assert assert_shows_document(tab, served)["overview"]["messages"]["value"] == 1  # m7
    tab.act(lambda: page.select_option("#agents", ["sales", "support"]))
    assert_shows_document(tab, served)
    tab.act(lambda: page.click("#all-agents"))
    assert "agent" not in dict(tab.query())

    # time zone: New York moves m6 (00:10 UTC on the 3rd) to the 2nd, out of the period
    page.fill("#tz", "America/New_York")
    tab.act(lambda: page.press("#tz", "Tab"))
    assert dict(tab.query())["tz"] == "America/New_York"
    doc = assert_shows_document(tab, served)
    assert doc["time_zone"] == "America/New_York" and doc["overview"]["messages"]["value"] == 2

    # a view is a link: opened afresh it shows the same
    url = page.url
    tab.act(lambda: tab.open("?" + urlsplit(url).query))
    assert page.url == url and page.input_value("#tz") == "America/New_York"
    assert page.input_value("#start") == "2026-11-03"
    assert_shows_document(tab, served)


def test_the_agent_table_sorts_and_an_agent_scopes_the_page(tab, served):
    page = tab.page
    tab.open(f"?month=2026-11&as_of={AS_OF}")
    doc = document_of(served, tab.query())
    by_messages = sorted(doc["performance"]["agents"], key=lambda a: a["messages"])
    page.click("#agent-table th:nth-child(3) button")  # messages, ascending
    assert page.get_attribute("#agent-table th:nth-child(3)", "aria-sort") == "ascending"
    assert [r[0] for r in shown(tab)["agents"]] == [a["agent_label"] for a in by_messages]
    page.click("#agent-table th:nth-child(3) button")
    assert [r[0] for r in shown(tab)["agents"]] == [a["agent_label"] for a in reversed(by_messages)]

    tab.act(lambda: page.get_by_role("button", name="Sales Agent (sales)").first.click())
    assert [v for k, v in tab.query() if k == "agent"] == ["sales"]
    doc = assert_shows_document(tab, served)
    assert doc["scope"]["agents"] == ["sales"] and doc["overview"]["messages"]["value"] == 4  # m5, m6, m8, m9


# ----------------------------------------------------------------- the message audit


def fixture_messages(start: datetime, end: datetime, agent: str | None = None, hour: int | None = None,
                     errors: bool | None = None, tz: str = "UTC") -> list[str]:
    """The ids of the fixture's valid messages in [start, end), newest first (then by id, descending)."""
    table = oracle.load(FILES).messages
    chosen = []
    for row in table.itertuples():
        at = oracle.from_us(row.us)
        if not start <= at < end or (agent and row.agent != agent) or (errors is not None and bool(row.err) != errors):
            continue
        if hour is not None and at.astimezone(ZoneInfo(tz)).hour != hour:
            continue
        chosen.append((row.us, row.eid))
    return [eid for _, eid in sorted(chosen, reverse=True)]


UTC = timezone.utc
NOVEMBER = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 20, 15, 30, tzinfo=UTC))


def open_numbers(tab: Tab, section: str, nth: int = 1) -> None:
    tab.page.click(f"#{section} figure:nth-of-type({nth}) .toggle")


def message_ids(tab: Tab) -> list[str]:
    """The message ids of the list shown, read from its JSON link (the page shows no ids)."""
    href = tab.page.get_attribute("#messages-json", "href")
    server_url = tab.base
    response = tab.page.request.get(server_url + href)
    assert response.status == 200
    return [m["message_id"] for m in response.json()["messages"]]


def shown_rows(tab: Tab) -> list[list[str]]:
    return tab.page.eval_on_selector_all("#messages tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")


def test_drill_into_an_agent_a_day_an_hour_and_an_error_point(tab, served):
    page = tab.page
    tab.open(f"?month=2026-11&as_of={AS_OF}")

    # an agent's messages: the "list" cell of its row
    tab.act(lambda: page.click("#agent-table tbody tr:has-text('Support Agent') [data-key=agent_id] button"))
    assert dict(tab.query())["drill"] == "messages" and dict(tab.query())["agent"] == "support"
    assert message_ids(tab) == fixture_messages(*NOVEMBER, agent="support") == ["m7", "m4", "m3", "m2", "m1"]
    rows = shown_rows(tab)
    assert len(rows) == 5 and page.inner_text("#messages-scope").startswith("5 messages")
    # time (UTC), user, agent, version, status, error type, response time, LLM calls, tool calls, tokens, cost, tools
    m4 = rows[1]
    assert m4[1:6] == ["u1", "support", "no data", "error", "timeout"]
    m3 = rows[2]
    m3_cost = oracle.load(FILES).messages.set_index("eid").loc["m3", "cost"]  # gpt-4o's price of its tokens
    assert 0 < m3_cost < 0.01
    assert m3[0] == "2026-11-02, 10:40:00" and m3[7:] == ["1", "1", "550", f"${float(m3_cost):.4f}", "search_kb"]
    assert_shows_document(tab, served)  # the sections above are scoped to the agent too
    page.locator("section#messages").screenshot(path=str(artifact("messages-agent.png")))

    # back to every agent, then a day from the overview chart's numbers
    tab.act(lambda: page.click("#all-agents"))
    open_numbers(tab, "overview")
    tab.act(lambda: page.click("#overview figure tbody tr:has-text('2026-11-02') [data-key=date] button"))
    assert dict(tab.query())["day"] == "2026-11-02"
    day = (datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    assert message_ids(tab) == fixture_messages(*day) == ["m5", "m9", "m4", "m3", "m2", "m1"]

    # the link reproduces the list in a fresh page
    link = page.get_attribute("#messages-link", "href")
    tab.act(lambda: tab.open(link))
    assert message_ids(tab) == ["m5", "m9", "m4", "m3", "m2", "m1"]

    # an error-rate point: the errors of that day
    tab.act(lambda: tab.open(f"?month=2026-11&as_of={AS_OF}"))
    page.click("#health figure .toggle")
    tab.act(lambda: page.click("#health figure tbody tr:has-text('2026-11-02') [data-key=date] button"))
    assert (dict(tab.query())["day"], dict(tab.query())["status"]) == ("2026-11-02", "error")
    assert message_ids(tab) == fixture_messages(*day, errors=True) == ["m4"]

    # an hour of the day, in New York time: 05:00-06:00 there is 10:00-11:00 UTC on 2 November
    tab.act(lambda: tab.open(f"?month=2026-11&as_of={AS_OF}&tz=America/New_York"))
    page.click("#performance figure .toggle")
    tab.act(lambda: page.click("#performance figure tbody tr:nth-child(6) [data-key=hour] button"))
    assert dict(tab.query())["hour"] == "5"
    new_york = (datetime(2026, 11, 1, 4, tzinfo=UTC), datetime(2026, 11, 20, 15, 30, tzinfo=UTC))
    assert message_ids(tab) == fixture_messages(*new_york, hour=5, tz="America/New_York") == ["m3", "m2", "m1"]
    assert shown_rows(tab)[0][0] == "2026-11-02, 05:40:00"  # shown in the view's zone


def test_a_click_on_a_bar_lists_its_messages(tab):
    page = tab.page
    tab.open(f"?month=2026-11&as_of={AS_OF}")
    # where the cost chart draws its bar of 2026-11-03 (index 2: the third day of the month)
    x, y = page.evaluate("""() => {
      const plot = document.querySelectorAll('#cost figure [role=img]')[0].plot;
      plot.over.scrollIntoView({block: 'center'});
      const box = plot.over.getBoundingClientRect();
      return [box.left + plot.valToPos(2, 'x'), box.top + box.height - 3];
    }""")
    page.mouse.move(x, y)  # uPlot's cursor follows the mouse; the click lists its point's messages
    tab.act(lambda: page.mouse.click(x, y))
    assert dict(tab.query())["day"] == "2026-11-03"
    assert message_ids(tab) == fixture_messages(datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 4, tzinfo=UTC)) \
        == ["m7", "m6"]


def test_the_message_list_pages_on_the_server(served):
    server, tokens = served
    reader = {"Authorization": f"Bearer {tokens['reader']}"}
    everything = fixture_messages(*NOVEMBER)
    pages, page = [], 1
    while True:
        response = httpx.get(f"{server.url}/app/messages", headers=reader, timeout=60,
                             params={"month": "2026-11", "as_of": AS_OF, "page_size": 2, "page": page})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["total"], body["pages"], body["page"]) == (9, 5, page)
        pages.append([m["message_id"] for m in body["messages"]])
        if page == body["pages"]:
            break
        page += 1
    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    assert sum(pages, []) == everything and len(set(everything)) == 9
    beyond = httpx.get(f"{server.url}/app/messages", headers=reader,
                       params={"month": "2026-11", "as_of": AS_OF, "page": 9}).json()
    assert (beyond["total"], beyond["messages"]) == (9, [])
    for params, message in [
        ({"page_size": 501}, "page_size: Input should be less than or equal to 500"),
        ({"page": 0}, "page: Input should be greater than or equal to 1"),
        ({"hour": 24}, "hour: Input should be less than or equal to 23"),
        ({"status": "failed"}, "status: Input should be 'ok' or 'error'"),
        ({"hour": "noon"}, "hour: Input should be a valid integer"),
        ({"agent": "nobody"}, "unknown agent 'nobody' (known agents: sales, support)"),
        ({"token": "x"}, "unknown parameter 'token'"),
        ({"start": "2026-11-05", "end": "2026-11-01"}, "start"),
    ]:
        response = httpx.get(f"{server.url}/app/messages", headers=reader, params={"as_of": AS_OF, **params})
        assert response.status_code == 400, (params, response.text)
        assert message in response.json()["error"], (params, response.text)


# ----------------------------------------------------------------- access


def test_the_page_needs_a_read_token_and_keeps_it_in_an_httponly_cookie(browser, served):
    server, tokens = served
    assert httpx.get(f"{server.url}/app/metrics").status_code == 401
    assert httpx.get(f"{server.url}/app/messages").status_code == 401
    assert httpx.get(f"{server.url}/app/session").json() == {
        "access": "none", "time_zone": None, "today": None, "agents": [], "data_as_of": None, "waiting_files": 0,
        "newest_waiting_file_age_s": None}
    page_answer = httpx.get(f"{server.url}/")
    assert page_answer.status_code == 200 and page_answer.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page_answer.headers["content-security-policy"]
    for token, status in ((tokens["sender"], 403), ("aat_not-a-token", 401), ("", 400)):
        refused = httpx.post(f"{server.url}/login", data={"token": token})
        assert refused.status_code == status and "set-cookie" not in refused.headers
        if token:
            assert token not in refused.text
    accepted = httpx.post(f"{server.url}/login", data={"token": tokens["reader"]})
    assert accepted.status_code == 303 and accepted.headers["location"] == "/"
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Secure" not in cookie
    jar = {"aa_read_token": tokens["reader"]}
    assert httpx.get(f"{server.url}/app/metrics", cookies=jar, params={"month": "2026-11", "as_of": AS_OF}).status_code == 200
    assert httpx.get(f"{server.url}/app/metrics", cookies={"aa_read_token": tokens["sender"]}).status_code == 403
    out = httpx.post(f"{server.url}/logout", cookies=jar)
    assert out.status_code == 303 and 'aa_read_token=""' in out.headers["set-cookie"]

    tab = Tab(browser, server.url)
    try:
        tab.open()
        page = tab.page
        assert page.is_visible("#login") and not page.is_visible("#dashboard")
        page.fill("#token", tokens["sender"])
        page.click("#login-form button")
        page.wait_for_function("document.querySelector('#login-error').innerText !== ''")
        assert page.inner_text("#login-error") == "Refused: token 'sender' has the scope ingest; this endpoint needs read"
        page.screenshot(path=str(artifact("login-refused.png")))
        page.fill("#token", tokens["reader"])
        page.click("#login-form button")
        tab.ready()
        page.wait_for_selector('main[data-ready="1"]')
        assert page.is_visible("#dashboard") and not page.is_visible("#login") and not page.is_visible("#open-note")
        (cookie,) = tab.context.cookies()
        assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("aa_read_token", True, "Strict")
        assert page.evaluate("document.cookie") == ""  # scripts cannot read it
        assert all(tokens["reader"] not in url for url in tab.requests)
        ready = httpx.get(f"{server.url}/readyz").json()
        assert page.get_attribute("#as-of", "data-as-of") == ready["last_build"]
        assert page.inner_text("#as-of").startswith("Data as of ")
        tab.act(lambda: page.click("#logout button"))
        assert page.is_visible("#login") and tab.context.cookies() == []
    finally:
        tab.close()
    # the browser reports the refused login (403), the only request answered with an error
    assert [p.split(" (")[0] for p in tab.problems] == [
        "error: Failed to load resource: the server responded with a status of 403"]


def test_open_on_loopback_without_tokens_and_says_so(browser, tmp_path, built_fixture_home):
    home = copy_built_home(built_fixture_home, tmp_path / "home")
    server = start_server(home, tmp_path / "server.log", {"AGENT_ANALYTICS_TZ": "UTC"})
    try:
        assert httpx.get(f"{server.url}/app/session").json()["access"] == "open"
        assert httpx.get(f"{server.url}/app/metrics", params={"month": "2026-11", "as_of": AS_OF}).status_code == 200
        assert httpx.get(f"{server.url}/v1/metrics").status_code == 401  # the API keeps its tokens
        (home / "landing" / "late.jsonl").write_text((FIXTURES / "day2.jsonl").read_text())
        tab = Tab(browser, server.url)
        try:
            tab.open(f"?month=2026-11&as_of={AS_OF}")
            page = tab.page
            assert page.is_visible("#open-note") and "anyone on this machine can read it" in page.inner_text("#open-note")
            assert page.inner_text("#pending").startswith("1 landed file(s) not built yet")
            assert not page.is_visible("#logout")
            assert page.inner_text('[data-kpi="messages"] .value') == "9"
        finally:
            tab.close()
        assert tab.problems == []
    finally:
        server.stop()
    assert "the dashboard at http://127.0.0.1:" in server.log()


# ----------------------------------------------------------------- accessibility and screenshots


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def test_every_chart_has_its_numbers_and_axe_finds_no_serious_violation(tab, served):
    page = tab.page
    tab.open(f"?month=2026-11&as_of={AS_OF}")
    figures = page.locator("figure.chart")
    assert figures.count() == 7
    for i in range(figures.count()):
        figure = figures.nth(i)
        assert figure.locator("[role=img]").get_attribute("aria-label").startswith(figure.locator("figcaption").inner_text())
        assert figure.locator("canvas").count() == 1  # drawn
        toggle = figure.locator(".toggle")
        assert toggle.get_attribute("aria-expanded") == "false" and not figure.locator("table").is_visible()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true" and figure.locator("table").is_visible()
    doc = document_of(served, tab.query())
    assert shown(tab)["daily"] == expected(doc)["daily"]  # the numbers of the first chart are the document's
    for section in SECTIONS:
        path = artifact(f"section-{section}.png")
        page.locator(f"section#{section}").screenshot(path=str(path))
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page.screenshot(path=str(artifact("page.png")), full_page=True)
    print(f"screenshots in {ARTIFACTS}")

    page.add_script_tag(path=str(AXE))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []
    # the drill-down list too
    tab.act(lambda: page.click("#overview figure tbody tr:has-text('2026-11-02') [data-key=date] button"))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    assert [v["id"] for v in results["violations"] if v["impact"] in ("serious", "critical")] == []


def test_open_only_on_a_loopback_address(tmp_path):
    """In process: with no token, a server listening on every address keeps the page's data closed."""
    from starlette.testclient import TestClient

    from agent_analytics.settings import load_settings
    from service.app import create_app

    settings = load_settings({"AGENT_ANALYTICS_HOME": str(tmp_path / "home")})
    closed, opened = ("0.0.0.0", "192.0.2.1", None), ("127.0.0.1", "::1", "localhost")
    for host in closed + opened:
        with TestClient(create_app(settings, listen_host=host)) as client:
            session, metrics = client.get("/app/session"), client.get("/app/metrics")
        if host in closed:
            assert (session.status_code, session.json()["access"], metrics.status_code) == (200, "none", 401), host
        else:  # let in, and there is no warehouse yet
            assert (session.status_code, metrics.status_code) == (503, 503), host
            assert metrics.json() == {"error": "no warehouse yet: run a build first"}


# ----------------------------------------------------------------- deployments and versions

VERSIONS_AS_OF = "2026-11-11T00:00:00Z"
# tests/test_compare.py's hand fixture (support v1 and v2 on 2026-11-10, counted in its
# docstring), with the deployments of v1 (2026-11-01) and of v2 (2026-11-10 09:00 UTC).
DEPLOYED = [
    {"event_id": "dep-v1", "type": "deployment", "occurred_at": "2026-11-01T00:00:00Z", "agent_id": "support",
     "agent_version": "v1"},
    {"event_id": "dep-v2", "type": "deployment", "occurred_at": "2026-11-10T09:00:00Z", "agent_id": "support",
     "agent_version": "v2", "description": "shorter prompts"},
]


@pytest.fixture(scope="module")
def versioned(tmp_path_factory):
    """The A/B hand fixture with two deployments, built and served (UTC) with a read token."""
    from tests.test_compare import HAND, run

    home = tmp_path_factory.mktemp("webapp-versions") / "home"
    events = home.parent / "hand.jsonl"
    events.write_text("\n".join(HAND + [json.dumps(d) for d in DEPLOYED]) + "\n")
    for argv in (["ingest", str(events)], ["build"]):
        proc = run(home, *argv)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tokens = make_tokens(home, reader="read")
    server = start_server(home, home / "server.log", {"AGENT_ANALYTICS_TZ": "UTC"})
    yield server, tokens
    server.stop()


TABLE = """(selector) => [...document.querySelectorAll(selector + ' tbody tr')].map((tr) => Object.fromEntries(
  [...tr.querySelectorAll('td')].map((td) => [td.dataset.key, [td.innerText, td.getAttribute('data-value')]])))"""


def test_deployments_are_marked_and_two_versions_compared(browser, versioned):
    server, tokens = versioned
    opened = Tab(browser, server.url)
    opened.login(tokens["reader"])
    page = opened.page
    bearer = {"Authorization": f"Bearer {tokens['reader']}"}
    try:
        opened.act(lambda: opened.open(f"?start=2026-11-05&end=2026-11-11&as_of={VERSIONS_AS_OF}"))
        doc = httpx.get(f"{server.url}/v1/metrics", params={"start": "2026-11-05", "end": "2026-11-11",
                                                            "as_of": VERSIONS_AS_OF}, headers=bearer, timeout=60).json()
        (item,) = doc["deployments"]["items"]  # v1's deployment is before the period
        # v2 at 09:00 with v1 before it; the windows are cut by now (the as-of time), 15 h after
        assert (item["version"], item["previous_version"], item["window_hours"], item["clipped_by"]) == ("v2", "v1", 15.0, "now")
        assert page.locator("#deployments").is_visible() and not page.locator("#versions").is_visible()
        (row,) = page.evaluate(TABLE, "#deployment-table")
        assert row["version"][0] == "v1 → v2" and row["description"][0] == "shorter prompts"
        assert row["window_hours"][0] == "15.0 (cut by now)"
        for key, side, metric in (("before_messages", "before", "messages"), ("after_messages", "after", "messages"),
                                  ("before_error_rate_pct", "before", "error_rate_pct"),
                                  ("after_p95_response_time_ms", "after", "p95_response_time_ms")):
            want = item[side][metric]
            assert (None if row[key][1] is None else float(row[key][1])) == want, key
        # a marker on 2026-11-10 on every day chart with deployments (messages, DAU, cost, error rate)
        markers = page.eval_on_selector_all("figure.chart[data-markers]", "fs => fs.map(f => JSON.parse(f.dataset.markers))")
        assert markers == [[["2026-11-10", "support v2"]]] * 4
        assert "Deployments: 2026-11-10 support v2." in page.locator("#overview figure [role=img]").get_attribute("aria-label")
        page.locator("section#deployments").screenshot(path=str(artifact("section-deployments.png")))

        # the deployment's "compare" scopes the page to the agent and compares v1 with v2
        opened.act(lambda: page.click("#deployment-table [data-key=new_version] button"))
        query = dict(opened.query())
        assert (query["agent"], query["version_a"], query["version_b"]) == ("support", "v1", "v2")
        assert page.locator("#versions").is_visible()
        options = page.eval_on_selector_all("#version-a option", "os => os.map(o => o.textContent)")
        assert options == ["v1 (5 messages)", "v2 (6 messages)"]  # counted in tests/test_compare.py
        compared = httpx.post(f"{server.url}/v1/analytics/compare", headers=bearer, timeout=60, json={
            "agent": "support", "versions": ["v1", "v2"], "start": "2026-11-05", "end": "2026-11-11",
            "as_of": VERSIONS_AS_OF}).json()
        rows = {r["metric"][1]: r for r in page.evaluate(TABLE, "#comparison-table")}
        assert set(rows) == set(compared["metrics"])
        for metric, want in compared["metrics"].items():
            for key in ("a", "b", "difference", "ci_low", "ci_high", "p_value", "sample_a", "sample_b"):
                got = rows[metric][key][1]
                assert (None if got is None else float(got)) == want[key], (metric, key)
            assert rows[metric]["verdict"][0] == want["verdict"]
        # the hand counts of tests/test_compare.py: v1 5 messages, 1 error; v2 6 messages, 1 error
        assert (float(rows["messages"]["a"][1]), float(rows["messages"]["b"][1])) == (5, 6)
        assert float(rows["error_rate_pct"]["a"][1]) == 20.0
        assert float(rows["error_rate_pct"]["b"][1]) == pytest.approx(100 / 6)
        assert page.locator("#comparison-warnings li").count() == len(compared["warnings"]) > 0
        page.locator("section#versions").screenshot(path=str(artifact("section-versions.png")))
        page.add_script_tag(path=str(AXE))
        results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
        assert [v["id"] for v in results["violations"] if v["impact"] in ("serious", "critical")] == []

        # the same version twice is refused on the page, before any request
        page.select_option("#version-b", "v1")
        page.click("#compare-versions")
        assert page.locator("#versions-error").inner_text() == "Choose two different versions."
        # the link reproduces the comparison; another agent drops it
        opened.act(lambda: opened.open(f"?start=2026-11-05&end=2026-11-11&as_of={VERSIONS_AS_OF}&agent=support"
                                       "&version_a=v2&version_b=v1"))
        swapped = {r["metric"][1]: r for r in page.evaluate(TABLE, "#comparison-table")}
        assert (float(swapped["messages"]["a"][1]), float(swapped["messages"]["b"][1])) == (6, 5)
        # a version without messages in the period: said in the section, no comparison shown
        opened.act(lambda: opened.open(f"?start=2026-11-05&end=2026-11-11&as_of={VERSIONS_AS_OF}&agent=support"
                                       "&version_a=v1&version_b=v9"))
        assert page.locator("#versions-error").inner_text().startswith("Version v9 has no messages of support")
        assert page.locator("#comparison-table").count() == 0 and page.locator("#overview").is_visible()
        opened.act(lambda: page.select_option("#agents", ["sales"]))
        assert "version_a" not in dict(opened.query())
        assert page.locator("#versions-note").inner_text() == (
            "sales has one version with messages in this period (v1): nothing to compare.")
    finally:
        problems = opened.problems
        opened.close()
    assert problems == []


def test_versions_and_compare_answer_clear_errors(versioned):
    server, tokens = versioned
    bearer = {"Authorization": f"Bearer {tokens['reader']}"}
    period = {"start": "2026-11-05", "end": "2026-11-11", "as_of": VERSIONS_AS_OF}
    found = httpx.get(f"{server.url}/app/versions", params={"agent": "support", **period}, headers=bearer, timeout=60)
    assert found.status_code == 200
    assert found.json()["versions"] == [{"version": "v1", "messages": 5}, {"version": "v2", "messages": 6}]
    # the page's default period is 30 days up to as-of, as /app/metrics: o1 (v1, 2026-11-01) counts too
    found = httpx.get(f"{server.url}/app/versions", params={"agent": "support", "as_of": VERSIONS_AS_OF},
                      headers=bearer, timeout=60).json()
    assert (found["period"]["label"], found["versions"][0]) == ("30d", {"version": "v1", "messages": 6})
    for path, params, message in (
        ("/app/versions", {"agent": "nobody", **period}, "nobody"),
        ("/app/versions", {"agent": "support", "colour": "red", **period}, "colour"),
        ("/app/compare", {"agent": "support", "version_a": "v1", "version_b": "v9", **period}, "v9"),
        ("/app/compare", {"agent": "support", "version_a": "v1", "version_b": "v1", **period}, "two different versions"),
        ("/app/compare", {"agent": "support", "version_a": "v1", "version_b": "v2", "period": "7x"}, "7x"),
    ):
        answer = httpx.get(f"{server.url}{path}", params=params, headers=bearer, timeout=60)
        assert answer.status_code == 400 and message in answer.json()["error"], (path, params, answer.text)
    assert httpx.get(f"{server.url}/app/versions", params={"agent": "support"}, timeout=60).status_code == 401
