"""Budgets: the [budgets.<name>] tables of the goals file, each against its month to date.

The hand fixture's cost by company day (UTC), from tests/fixtures (see tests/test_end_to_end.py):
11-02 support $0.055125 and sales $0.10 (anthropic $0.15, openai $0.005125), 11-03 sales $0.02
(azure, at 00:10), 11-05 sales $0.005 (openai, at 08:00); nothing else in November. A document
for 11-02..11-05 ends at 11-06 00:00: November so far is $0.180125, the last 7 days (10-30..11-05)
too, at $0.180125 / 7 a day over the 25 days left: a forecast of $0.180125 x 32 / 7.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import jsonschema
import pytest

from agent_analytics.budgets import Budget, load_budgets
from agent_analytics.exports import load_schema
from agent_analytics.goals import load_goals
from agent_analytics.metrics.budgets import budget_rows, budget_window
from tests.goals_file_helpers import day_steps, one_line_problem, rules
from tests.service_server import SCRIPT, copy_built_home

GOALS = """
[goals.budget]
metric = "cost_per_month"
target = 1
direction = "at_most"

[budgets.company]
budget_usd = 1
description = "all agents"

[budgets.tight]
budget_usd = 0.5

[budgets.sales]
budget_usd = 0.1
agent = "sales"

[budgets.anthropic]
budget_usd = 1
provider = "anthropic"

[budgets.mistral]
budget_usd = 5
provider = "mistral"
"""
WEEK = 0.180125  # the fixture's cost of November, all of it in the 7 days before 11-06


def _metrics(home: Path, goals: Path, *args: str, start: str = "2026-11-02") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_") and k != "DAGSTER_HOME"}
    env.update(AGENT_ANALYTICS_HOME=str(home), AGENT_ANALYTICS_GOALS=str(goals))
    return subprocess.run([str(SCRIPT), "metrics", "--start", start, "--end", "2026-11-05", *args],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def home(built_fixture_home, tmp_path_factory) -> Path:
    return copy_built_home(built_fixture_home, tmp_path_factory.mktemp("budgets") / "home")


@pytest.fixture
def goals(tmp_path) -> Path:
    path = tmp_path / "goals.toml"
    path.write_text(GOALS)
    return path


def _check(row: dict, spend, week, days_elapsed, days_left, budget, status, exhausted="computed"):
    rate = week / days_elapsed
    forecast = spend + rate * days_left
    assert row["budget_usd"] == budget and row["status"] == status, row
    assert row["spend_usd"] == pytest.approx(spend) and row["last_7_days_usd"] == pytest.approx(week), row
    assert row["run_rate_usd_per_day"] == pytest.approx(rate) and row["forecast_usd"] == pytest.approx(forecast), row
    assert row["percent_used"] == pytest.approx(spend / budget * 100), row
    assert row["forecast_pct"] == pytest.approx(forecast / budget * 100), row
    if exhausted == "computed":
        exhausted = (budget - spend) / rate
    assert row["days_until_exhausted"] == (None if exhausted is None else pytest.approx(exhausted)), row


def test_every_budget_against_the_hand_fixture(home, goals):
    run = _metrics(home, goals, "--format", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    jsonschema.validate(doc, load_schema())
    b = doc["budgets"]
    assert (b["problem"], b["month"], b["time_zone"], b["days_left_in_month"]) == (None, "2026-11", "UTC", 25)
    rows = {r["name"]: r for r in b["items"]}
    assert list(rows) == ["company", "tight", "sales", "anthropic", "mistral"]
    _check(rows["company"], WEEK, WEEK, 7, 25, 1.0, "on_track")  # forecast $0.82: 31.9 days to go
    _check(rows["tight"], WEEK, WEEK, 7, 25, 0.5, "forecast_over")  # forecast $0.82 > $0.50
    _check(rows["sales"], 0.125, 0.125, 7, 25, 0.1, "exceeded", exhausted=0)  # $0.125 spent of $0.10
    _check(rows["anthropic"], 0.15, 0.15, 7, 25, 1.0, "on_track")  # the provider's calls only
    _check(rows["mistral"], 0, 0, 7, 25, 5.0, "on_track", exhausted=None)  # no spend: run rate 0
    assert rows["company"]["forecast_usd"] == pytest.approx(WEEK * 32 / 7)
    assert rows["company"]["days_until_exhausted"] == pytest.approx((1 - WEEK) * 7 / WEEK)
    assert (rows["sales"]["scope"], rows["sales"]["agent_id"], rows["sales"]["provider"]) == ("agent", "sales", None)
    assert (rows["anthropic"]["scope"], rows["anthropic"]["provider"]) == ("provider", "anthropic")
    assert rows["company"]["scope"] == "company" and rows["company"]["description"] == "all agents"
    assert doc["goals"]["items"][0]["name"] == "budget"  # goals and budgets share the file

    # the budgets follow the period's end, not its start: a one-day period ends at the same point
    assert json.loads(_metrics(home, goals, "--format", "json", start="2026-11-05").stdout)["budgets"] == b

    # an agent's document holds that agent's budgets only; company and provider budgets stay out
    scoped = json.loads(_metrics(home, goals, "--format", "json", "--agent", "sales").stdout)
    assert scoped["budgets"]["items"] == [rows["sales"]]
    assert json.loads(_metrics(home, goals, "--format", "json", "--agent", "support").stdout)["budgets"]["items"] == []

    # the terminal view, the dashboard and the email show them
    text = _metrics(home, goals).stdout
    assert "== Budgets (2026-11 to date, UTC)" in text
    assert "  tight                                    forecast over $0.18 of $0.50 (36% used)" in text
    assert "    forecast $0.82 (165%) at $0.03/day, exhausted in 12.4 days" in text
    assert "sales (agent sales)" in text and "already spent" in text and "not exhausted at this rate" in text
    assert max(len(line) for line in text.splitlines()) <= 100

    from agent_analytics.periods import Page, parse_period
    from agent_analytics.reports.dashboard import render_page
    from agent_analytics.reports.summary import summary_text

    page = Page("custom", "Custom", parse_period(None, "2026-11-02", "2026-11-05", None,
                                                 datetime(2026, 11, 6, tzinfo=timezone.utc), "UTC"))
    html = render_page(page, doc, [page])
    assert html.count('class="goal budget"') == 5 and '<section id="budgets">' in html
    # spend bars: tight at 36.0% in amber with its forecast marked at 100%, sales red and full
    assert ('data-budget="tight"><span><b>tight</b></span><div class="track"><div class="fill warn" style="width:36.0%">'
            '</div><div class="forecast" style="width:100.0%">') in html
    assert '<div class="fill off" style="width:100.0%">' in html and '<div class="fill on" style="width:15.0%">' in html
    assert ("- anthropic (provider anthropic): on track, $0.15 of $1.00 (15% used); forecast $0.69 (69%) at $0.02/day, "
            "exhausted in 39.7 days") in summary_text("R", doc, doc)
    # the PDF report has a table of them (a cell wraps its text)
    import io

    from pypdf import PdfReader

    from agent_analytics.reports.pdf import render_pdf

    pdf_text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(render_pdf("R", doc, doc))).pages).replace("\n", " ")
    assert "Budgets (2026-11 to date, UTC)" in pdf_text and "sales (agent sales) exceeded $0.13 of $0.10 (125%" in pdf_text


def test_a_day_in_progress_counts_up_to_the_end_and_its_elapsed_part(home, goals):
    """As of 11-05 12:00 the day in progress holds m8 (08:00, $0.005, sales, openai): 6.5 days
    of the last 7 have passed and 25.5 are left. November so far is all of the fixture's cost."""
    doc = json.loads(_metrics(home, goals, "--format", "json", "--as-of", "2026-11-05T12:00:00Z").stdout)
    assert doc["budgets"]["days_left_in_month"] == 25.5
    rows = {r["name"]: r for r in doc["budgets"]["items"]}
    _check(rows["company"], WEEK, WEEK, 6.5, 25.5, 1.0, "on_track")
    _check(rows["sales"], 0.125, 0.125, 6.5, 25.5, 0.1, "exceeded", exhausted=0)
    # as of 07:00 m8 has not happened: the day's row-level cost is cut at the end
    early = json.loads(_metrics(home, goals, "--format", "json", "--as-of", "2026-11-05T07:00:00Z").stdout)
    rows = {r["name"]: r for r in early["budgets"]["items"]}
    _check(rows["company"], WEEK - 0.005, WEEK - 0.005, 6 + 7 / 24, 25 + 17 / 24, 1.0, "on_track")


def test_a_broken_budget_is_named_and_the_goals_stand(home, tmp_path):
    goals = tmp_path / "goals.toml"
    goals.write_text(GOALS + '\n[budgets.nothing]\nagent = "sales"\n')
    doc = json.loads(_metrics(home, goals, "--format", "json").stdout)
    problem = f"{goals}: budgets.nothing.budget_usd: must be a number of USD > 0 (at most 1e15)"
    assert doc["budgets"]["problem"] == problem and doc["budgets"]["items"] == []
    assert [g["name"] for g in doc["goals"]["items"]] == ["budget"] and doc["goals"]["problem"] is None
    assert f"The budgets were not used: {problem}" in _metrics(home, goals).stdout
    from agent_analytics.reports.summary import summary_text

    assert f"Budgets (2026-11 to date, UTC):\nThe budgets were not used: {problem}" in summary_text("R", doc, doc)


def test_without_budgets_there_is_no_budgets_section(home, tmp_path):
    doc = json.loads(_metrics(home, tmp_path / "none.toml", "--format", "json").stdout)
    assert doc["budgets"] == {"problem": None, "month": "2026-11", "time_zone": "UTC", "days_left_in_month": 25, "items": []}
    assert "== Budgets" not in _metrics(home, tmp_path / "none.toml").stdout


@pytest.mark.parametrize(("text", "problem"), [
    ("budgets = 3", "budgets: must be a table of budgets ([budgets.<name>])"),
    ('[budgets."a b"]\nbudget_usd = 1', "budgets.a b: a budget name is 1 to 64 letters"),
    ("[budgets.x]\n", "budgets.x.budget_usd: must be a number of USD > 0"),
    ("[budgets.x]\nbudget_usd = 0", "budgets.x.budget_usd: must be a number of USD > 0"),
    ("[budgets.x]\nbudget_usd = -5", "budgets.x.budget_usd: must be a number of USD > 0"),
    ('[budgets.x]\nbudget_usd = "100"', "budgets.x.budget_usd: must be a number of USD > 0"),
    ("[budgets.x]\nbudget_usd = true", "budgets.x.budget_usd: must be a number of USD > 0"),
    ("[budgets.x]\nbudget_usd = nan", "budgets.x.budget_usd: must be a number of USD > 0"),
    ("[budgets.x]\nbudget_usd = 1" + "0" * 400, "budgets.x.budget_usd: must be a number of USD > 0"),
    ('[budgets.x]\nbudget_usd = 1\nagent = ""', "budgets.x.agent: must be an agent id"),
    ('[budgets.x]\nbudget_usd = 1\nprovider = 3', "budgets.x.provider: must be a provider name"),
    ('[budgets.x]\nbudget_usd = 1\nagent = "a"\nprovider = "b"', "budgets.x: a budget is company-wide, for one agent"),
    ('[budgets.x]\nbudget_usd = 1\nmonthly = true', "budgets.x.monthly: unknown setting"),
    ("[budgets.x]\nbudget_usd = 1\ndescription = 2", "budgets.x.description: must be a string"),
    ("[budget.x]\nbudget_usd = 1", "budget: unknown setting (expected: goals, budgets)"),
    ("[budgets.x\n", "not valid TOML"),
])
def test_each_mistake_in_a_budget_is_one_line_naming_the_field(tmp_path, text, problem):
    assert problem in one_line_problem(load_budgets, tmp_path / "goals.toml", text)


def test_budgets_are_read_exactly_and_goals_ignore_them(tmp_path):
    path = tmp_path / "goals.toml"
    path.write_text('[budgets.a]\nbudget_usd = 0.1\n[budgets.b]\nbudget_usd = 7\nprovider = " openai "\n')
    assert load_budgets(path) == [Budget("a", Decimal("0.1")), Budget("b", Decimal("7"), provider="openai")]
    assert load_goals(path) == [] and load_budgets(tmp_path / "none.toml") == []


# ---------------------------------------------------------------- the month boundary, in a company time zone

@pytest.fixture
def marts():
    """The four tables a budget reads, by hand, company time zone America/New_York (UTC-5).
    Agent a: $7 a day 11-27..11-30, $2 on 12-01, $3 on 12-02 (mart) of which $1 at 09:00 local
    and $2 at 17:00 local (row level). A row at 12-02 03:00 UTC belongs to the company day 12-01
    (22:00 local). Provider openai: $1.50 on 12-01, $0.50 at 12-02 10:00 local."""
    con = duckdb.connect()
    con.execute("create table fct_agent_daily (activity_date date, agent_id varchar, cost_usd decimal(38, 10))")
    con.execute("create table fct_daily_cost_by_provider (cost_date date, provider varchar, cost_usd decimal(38, 10))")
    con.execute("create table fct_messages (agent_id varchar, message_date date, occurred_at timestamp, "
                "cost_usd decimal(38, 10))")
    con.execute("create table fct_llm_calls (provider varchar, message_date date, occurred_at timestamp, "
                "cost_usd decimal(18, 10))")
    con.execute("insert into fct_agent_daily values ('2026-11-27', 'a', 7), ('2026-11-28', 'a', 7), ('2026-11-29', 'a', 7),"
                " ('2026-11-30', 'a', 7), ('2026-12-01', 'a', 52), ('2026-12-02', 'a', 3)")
    con.execute("insert into fct_messages values ('a', '2026-12-01', '2026-12-01 12:00', 2),"
                " ('a', '2026-12-01', '2026-12-02 03:00', 50), ('a', '2026-12-02', '2026-12-02 14:00', 1),"
                " ('a', '2026-12-02', '2026-12-02 22:00', 2)")
    con.execute("insert into fct_daily_cost_by_provider values ('2026-12-01', 'openai', 1.5), ('2026-12-02', 'openai', 0.5)")
    con.execute("insert into fct_llm_calls values ('openai', '2026-12-02', '2026-12-02 15:00', 0.5)")
    yield con
    con.close()


TZ = "America/New_York"


def test_the_month_holds_the_end_in_the_company_time_zone(marts):
    """12-02 17:00 UTC is noon of 12-02 in New York: December so far is 12-01's $52 and $1 of
    12-02 (the $2 at 22:00 UTC is after the end); the last 7 days (11-26..12-02 noon, 6.5 days)
    add November's $28: $81, $81 / 6.5 a day over the 29.5 days left."""
    end = datetime(2026, 12, 2, 17, tzinfo=timezone.utc)
    window = budget_window(end, TZ)
    assert (window.last_day, window.fraction, window.month_first, window.whole_through) == (
        date(2026, 12, 2), 0.5, date(2026, 12, 1), date(2026, 12, 1))
    budgets = [Budget("all", Decimal(100)), Budget("a", Decimal(500), agent="a"), Budget("b", Decimal(5), agent="b"),
               Budget("openai", Decimal(2), provider="openai")]
    rows = {r["name"]: r for r in budget_rows(marts, budgets, end, TZ)}
    assert {r["month"] for r in rows.values()} == {"2026-12"}
    _check(rows["all"], 53, 81, 6.5, 29.5, 100.0, "forecast_over")
    _check(rows["a"], 53, 81, 6.5, 29.5, 500.0, "on_track")  # forecast 53 + 81 / 6.5 x 29.5 = 420.6
    _check(rows["b"], 0, 0, 6.5, 29.5, 5.0, "on_track", exhausted=None)
    _check(rows["openai"], 2, 2, 6.5, 29.5, 2.0, "exceeded", exhausted=0)  # $1.50 + $0.50: all of it spent
    assert rows["all"]["forecast_usd"] == pytest.approx(53 + 81 / 6.5 * 29.5)


def test_at_the_month_end_the_month_is_whole_and_its_forecast_is_its_spend(marts):
    """12-01 05:00 UTC is midnight in New York: November is over (its last 7 days 11-24..11-30
    hold $28), nothing of December counts, though it is December 1 in UTC."""
    end = datetime(2026, 12, 1, 5, tzinfo=timezone.utc)
    row = budget_rows(marts, [Budget("all", Decimal(20))], end, TZ)[0]
    assert row["month"] == "2026-11"
    _check(row, 28, 28, 7, 0, 20.0, "exceeded", exhausted=0)
    assert row["forecast_usd"] == 28
    # one hour later December has begun: nothing spent yet, the run rate still from November
    row = budget_rows(marts, [Budget("all", Decimal(20))], end + timedelta(hours=1), TZ)[0]
    assert row["month"] == "2026-12"
    _check(row, 0, 28, 6 + 1 / 24, 30 + 23 / 24, 20.0, "forecast_over")


# ---------------------------------------------------------------- the alert rule kinds

_rules = rules


@pytest.mark.parametrize(("rule", "problem"), [
    ({"metric": "budget_forecast_over", "channels": ["hook"]}, "rules.r.budget: is required"),
    ({"metric": "budget_spend_pct", "threshold": 80, "channels": ["hook"]}, "rules.r.budget: is required"),
    ({"metric": "budget_spend_pct", "budget": "b", "channels": ["hook"]}, "rules.r.threshold: is required"),
    ({"metric": "budget_forecast_over", "budget": "b", "threshold": 1, "channels": ["hook"]},
     "rules.r: a budget_forecast_over rule takes no comparison or threshold (it fires while the forecast is over"),
    ({"metric": "daily_cost", "budget": "b", "comparison": ">", "threshold": 0, "channels": ["hook"]},
     "rules.r.budget: only a budget_forecast_over or budget_spend_pct rule names a budget"),
    ({"metric": "budget_spend_pct", "budget": "b", "goal": "g", "threshold": 80, "channels": ["hook"]},
     "rules.r.goal: only a goal_off_track rule names a goal"),
    ({"metric": "budget_spend_pct", "budget": "b", "threshold": 80, "scope": "sales", "channels": ["hook"]},
     "rules.r.scope: budget_spend_pct is platform-wide"),
])
def test_a_budget_rule_names_its_budget(rule, problem):
    from agent_analytics.alerts.rules import AlertsConfigError

    with pytest.raises(AlertsConfigError, match="^" + re.escape(f"alerts.toml: {problem}")):
        _rules({"r": rule})


def test_budget_alerts_fire_once_per_episode(built_fixture_home, tmp_path):
    """The last complete day before the data's watermark (11-05) is 11-04: November to date is
    $0.175125 (all but m8), over the last 7 days too; forecast $0.175125 x 33 / 7 = $0.8256 at
    26 days left. Budget tight ($0.50): forecast over, 35.0% spent; budget roomy ($1): neither."""
    from agent_analytics.alerts.evaluate import evaluate
    from agent_analytics.settings import load_settings
    from agent_analytics.warehouse import open_warehouse

    home = copy_built_home(built_fixture_home, tmp_path / "home")
    goals = tmp_path / "goals.toml"
    goals.write_text("[budgets.tight]\nbudget_usd = 0.5\n[budgets.roomy]\nbudget_usd = 1\n")
    settings = load_settings({"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_GOALS": str(goals)})
    config = _rules({
        "tight-forecast": {"metric": "budget_forecast_over", "budget": "tight", "channels": ["hook"]},
        "roomy-forecast": {"metric": "budget_forecast_over", "budget": "roomy", "channels": ["hook"]},
        "tight-30": {"metric": "budget_spend_pct", "budget": "tight", "threshold": 30, "channels": ["hook"]},
        "tight-50": {"metric": "budget_spend_pct", "budget": "tight", "threshold": 50, "channels": ["hook"]},
        "gone": {"metric": "budget_forecast_over", "budget": "no-such-budget", "channels": ["hook"]},
    })
    assert config.rules["tight-forecast"].condition_text() == "budget tight forecast over budget for 1d"
    assert config.rules["tight-30"].condition_text() == "budget tight spend >= 30% of budget for 1d"
    now = datetime(2026, 11, 6, 12, tzinfo=timezone.utc)
    with open_warehouse(settings.warehouse_path) as con:
        result = evaluate(con, config, settings, now)
        episodes = con.execute("select rule_name, started_at, trigger_value from alerts.episodes order by 1").fetchall()
        states = dict(con.execute("select rule_name, evaluated_through from alerts.rule_state").fetchall())
        assert evaluate(con, config, settings, now).events == []  # evaluated days are not evaluated again
    assert [e[0] for e in result.events] == ["alert.triggered", "alert.triggered"]
    assert episodes[0] == ("tight-30", datetime(2026, 11, 4), pytest.approx(0.175125 / 0.5 * 100))
    assert episodes[1] == ("tight-forecast", datetime(2026, 11, 4), 1.0)
    assert set(states) == set(config.rules)


def test_a_budget_episode_resolves_when_a_new_month_starts():
    """Spend at 95%, 99% of the budget on 11-29 and 11-30, then December starts at 2%: one
    episode, triggered on 11-29 and resolved on 12-01. A day without a value (the budget left
    the file) neither opens nor resolves one."""
    from agent_analytics.alerts.evaluate import State, advance

    rule = _rules({"r": {"metric": "budget_spend_pct", "budget": "b", "threshold": 90, "channels": ["hook"]}}).rules["r"]
    first = datetime(2026, 11, 29)

    def steps(values):
        return day_steps(first, values)

    state, transitions = advance(rule, "all", State(), steps([95.0, 99.0, 2.0]))
    assert [(t.kind, t.at) for t in transitions] == [("triggered", datetime(2026, 11, 30)), ("resolved", datetime(2026, 12, 1))]
    assert state.episode_id is None
    state, transitions = advance(rule, "all", State(), steps([95.0, None, 96.0]))
    assert [t.kind for t in transitions] == ["triggered"] and state.episode_id is not None


def test_a_budget_alert_names_its_budget_and_what_it_is_at():
    from agent_analytics.alerts import events as ev

    rules = _rules({"f": {"metric": "budget_forecast_over", "budget": "tight", "channels": ["hook"]},
                    "p": {"metric": "budget_spend_pct", "budget": "tight", "threshold": 80, "channels": ["hook"]}}).rules
    at = datetime(2026, 11, 4)
    fired = ev.alert_data(rules["f"], "all", "e1", at, at, 1.0)
    assert fired["budget"] == "tight"
    assert ev.headline({"event": ev.TRIGGERED, "data": fired}) == (
        "ALERT [warning] f (budget tight): budget tight forecast over budget for 1d: forecast over budget")
    resolved = ev.alert_data(rules["f"], "all", "e1", at, at, 0.0, resolved=True)
    assert ev.headline({"event": ev.RESOLVED, "data": resolved}) == (
        "RESOLVED [warning] f (budget tight): now forecast within budget")
    fired = ev.alert_data(rules["p"], "all", "e2", at, at, 83.25)
    assert ev.headline({"event": ev.TRIGGERED, "data": fired}) == (
        "ALERT [warning] p (budget tight): budget tight spend >= 80% of budget for 1d: 83.2% of budget spent")


def test_days_the_daily_cost_marts_do_not_hold_yet_come_from_the_calls(home, tmp_path):
    """A build that stopped after the row-level facts leaves the daily cost marts behind: the
    spend of their missing days comes from the messages and calls, so it is the same."""
    from agent_analytics.metrics.budgets import spend_by

    lagging = copy_built_home(home, tmp_path / "home") / "warehouse.duckdb"
    windows = [budget_window(datetime(2026, 11, 6, tzinfo=timezone.utc), "UTC"),  # whole days
               budget_window(datetime(2026, 11, 5, 12, tzinfo=timezone.utc), "UTC")]  # a day in progress
    with duckdb.connect(str(lagging)) as con:
        expected = [{kind: spend_by(con, kind, w) for kind in ("agent", "provider")} for w in windows]
        assert float(sum(m for m, _ in expected[0]["agent"].values())) == pytest.approx(WEEK)
        for table, column in (("fct_agent_daily", "activity_date"), ("fct_daily_cost_by_provider", "cost_date")):
            assert con.execute(f"delete from {table} where {column} >= date '2026-11-03'").fetchone()[0] > 0
        assert [{kind: spend_by(con, kind, w) for kind in ("agent", "provider")} for w in windows] == expected
