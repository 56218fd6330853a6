"""Goals: the goals file, and each goal against a period, with the hand fixture's numbers.

The fixture's figures (tests/test_end_to_end.py derives them by hand): 11-02..11-05 has
9 messages, 1 error, 6 sessions, 3 active users, cost $0.180125, P95 7,650 ms (8 timed
messages of 1..8 s) and DAU 3, 2, 0, 1. Sales has DAU 2, 1, 0, 1 on those days. The custom
period is 4 days of November (30 days): a total per month is projected x 7.5.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from agent_analytics.exports import load_schema
from agent_analytics.goals import load_goals
from agent_analytics.metrics.goals import month_factor
from agent_analytics.periods import parse_period
from tests.goals_file_helpers import day_steps, one_line_problem, rules
from tests.service_server import SCRIPT, copy_built_home

GOALS = """
[goals.dau]
metric = "dau"
target = 2
direction = "at_least"
description = "typical day"

[goals.budget]
metric = "cost_per_month"
target = 1
direction = "at_most"

[goals.sessions]
metric = "sessions_per_month"
target = 40
direction = "at_least"

[goals.cost-per-user]
metric = "cost_per_user"
target = 0.10
direction = "at_most"

[goals.errors]
metric = "error_rate"
target = 10
direction = "at_most"

[goals.p95]
metric = "response_time"
statistic = "p95"
target = 8000
direction = "at_most"

[goals.sales-dau]
metric = "dau"
target = 1
direction = "at_least"
agent = "sales"
"""


def _metrics(home: Path, goals: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_") and k != "DAGSTER_HOME"}
    env.update(AGENT_ANALYTICS_HOME=str(home), AGENT_ANALYTICS_GOALS=str(goals))
    return subprocess.run([str(SCRIPT), "metrics", "--start", "2026-11-02", "--end", "2026-11-05", *args],
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def home(built_fixture_home, tmp_path_factory) -> Path:
    return copy_built_home(built_fixture_home, tmp_path_factory.mktemp("goals") / "home")


def test_every_goal_against_the_hand_fixture(home, tmp_path):
    goals = tmp_path / "goals.toml"
    goals.write_text(GOALS)
    run = _metrics(home, goals, "--format", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    jsonschema.validate(doc, load_schema())
    assert doc["goals"]["problem"] is None
    rows = {g["name"]: g for g in doc["goals"]["items"]}
    assert list(rows) == ["dau", "budget", "sessions", "cost-per-user", "errors", "p95", "sales-dau"]

    def check(name, actual, projection, gap, progress, on_track):
        g = rows[name]
        assert g["actual"] == pytest.approx(actual) and g["gap"] == pytest.approx(gap), g
        assert (g["projection"] is None) if projection is None else g["projection"] == pytest.approx(projection), g
        assert g["progress_pct"] == pytest.approx(progress) and g["on_track"] is on_track, g

    check("dau", 1.5, None, -0.5, 75.0, False)  # (3 + 2 + 0 + 1) / 4
    check("budget", 0.180125, 1.3509375, 0.3509375, 135.09375, False)  # 0.180125 x 30 / 4
    check("sessions", 6, 45, 5, 112.5, True)
    check("cost-per-user", 0.180125 / 3, None, 0.180125 / 3 - 0.10, 0.180125 / 3 / 0.10 * 100, True)
    check("errors", 100 / 9, None, 100 / 9 - 10, 100 / 9 / 10 * 100, False)
    check("p95", 7650, None, -350, 7650 / 80, True)
    check("sales-dau", 1.0, None, 0.0, 100.0, True)  # (2 + 1 + 0 + 1) / 4: at least 1 is met
    assert rows["budget"]["compared"] == "projection" and rows["p95"]["statistic"] == "p95"
    assert rows["dau"]["statistic"] is None and rows["sales-dau"]["agent_id"] == "sales"
    assert (rows["dau"]["unit"], rows["budget"]["unit"], rows["errors"]["unit"]) == ("users", "USD", "%")

    # an agent's document holds that agent's goals only; company-wide goals stay out
    scoped = json.loads(_metrics(home, goals, "--format", "json", "--agent", "sales").stdout)
    assert [g["name"] for g in scoped["goals"]["items"]] == ["sales-dau"]
    assert scoped["goals"]["items"][0] == rows["sales-dau"]
    assert json.loads(_metrics(home, goals, "--format", "json", "--agent", "support").stdout)["goals"]["items"] == []

    # the dashboard draws a bar per goal, as wide as its progress up to 100%, coloured by track
    from agent_analytics.periods import Page
    from agent_analytics.reports.dashboard import render_page
    from agent_analytics.reports.summary import summary_text

    page = Page("custom", "Custom", parse_period(None, "2026-11-02", "2026-11-05", None,
                                                 datetime(2026, 11, 6, tzinfo=timezone.utc), "UTC"))
    html = render_page(page, doc, [page])
    assert html.count('class="goal"') == 7
    assert '<div class="goal" data-goal="budget">' in html and 'class="fill off" style="width:100.0%"' in html
    assert 'class="fill off" style="width:75.0%"' in html and 'class="fill on" style="width:95.6%"' in html  # dau, p95
    assert "sales-dau (sales)" in html and "projected $1.35 ($0.18 in the period); 135% of target" in html
    # the report email lists the goals with their status
    assert "- budget: off track, at most $1.00 a month: projected $1.35 ($0.18 in the period)" in summary_text("R", doc, doc)

    text = _metrics(home, goals).stdout
    assert "== Goals" in text
    assert "budget" in text and "off track" in text and "projected $1.35" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_a_broken_goals_file_is_named_and_the_rest_of_the_document_stands(home, tmp_path):
    goals = tmp_path / "goals.toml"
    goals.write_text('[goals.dau]\nmetric = "dau"\ndirection = "at_least"\n')
    run = _metrics(home, goals, "--format", "json")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["goals"] == {"problem": f"{goals}: goals.dau.target: must be a number >= 0 (in users)", "items": []}
    assert doc["performance"]["messages"] == 9
    assert f"goals file not used: {goals}: goals.dau.target" in _metrics(home, goals).stdout
    from agent_analytics.reports.summary import summary_text

    assert f"Goals:\nThe goals file was not used: {goals}: goals.dau.target" in summary_text("R", doc, doc)


def test_without_a_goals_file_there_are_no_goals(home, tmp_path):
    doc = json.loads(_metrics(home, tmp_path / "none.toml", "--format", "json").stdout)
    assert doc["goals"] == {"problem": None, "items": []}
    assert "== Goals" not in _metrics(home, tmp_path / "none.toml").stdout


@pytest.mark.parametrize(("text", "problem"), [
    ("goals = 3", "goals: must be a table of goals ([goals.<name>])"),
    ("[other]\n", "other: unknown setting (expected: goals, budgets)"),
    ('[goals."a b"]\nmetric = "dau"\ntarget = 1\ndirection = "at_least"', "goals.a b: a goal name is 1 to 64 letters"),
    ('[goals.x]\nmetric = "mau"\ntarget = 1\ndirection = "at_least"', "goals.x.metric: must be one of: dau, "),
    ('[goals.x]\nmetric = ["dau"]\ntarget = 1\ndirection = "at_least"', "goals.x.metric: must be one of: dau, "),
    ('[goals.x]\nmetric = "dau"\ntarget = 1' + "0" * 400 + '\ndirection = "at_least"', "goals.x.target: must be a number >= 0"),
    ('[goals.x]\nmetric = "dau"\ntarget = -1\ndirection = "at_least"', "goals.x.target: must be a number >= 0"),
    ('[goals.x]\nmetric = "dau"\ntarget = true\ndirection = "at_least"', "goals.x.target: must be a number >= 0"),
    ('[goals.x]\nmetric = "error_rate"\ntarget = 101\ndirection = "at_most"', "goals.x.target: an error rate is a percentage"),
    ('[goals.x]\nmetric = "dau"\ntarget = 1\ndirection = "up"', "goals.x.direction: must be at_least or at_most"),
    ('[goals.x]\nmetric = "response_time"\nstatistic = "p90"\ntarget = 1\ndirection = "at_most"',
     "goals.x.statistic: must be one of: avg, p50, p95, p99"),
    ('[goals.x]\nmetric = "dau"\nstatistic = "p95"\ntarget = 1\ndirection = "at_most"',
     "goals.x.statistic: only a response_time goal takes a statistic"),
    ('[goals.x]\nmetric = "dau"\ntarget = 1\ndirection = "at_most"\nagent = ""', "goals.x.agent: must be an agent id"),
    ('[goals.x]\nmetric = "dau"\ntarget = 1\ndirection = "at_most"\nowner = "me"', "goals.x.owner: unknown setting"),
    ("[goals.x\n", "not valid TOML"),
])
def test_each_mistake_in_the_goals_file_is_one_line_naming_the_field(tmp_path, text, problem):
    assert problem in one_line_problem(load_goals, tmp_path / "goals.toml", text)


def test_an_agent_id_is_kept_without_surrounding_spaces(tmp_path):
    path = tmp_path / "goals.toml"
    path.write_text('[goals.x]\nmetric = "dau"\ntarget = 1\ndirection = "at_least"\nagent = " support "\n')
    assert load_goals(path)[0].agent == "support"


def test_a_total_per_month_is_projected_over_the_month_or_to_its_end():
    as_of = datetime(2026, 11, 15, 12, tzinfo=timezone.utc)
    month_to_date = parse_period(None, None, None, "2026-11", as_of, "UTC")
    assert month_factor(month_to_date) == pytest.approx(30 / 14.5)  # 14.5 of November's 30 days have passed
    assert month_factor(parse_period(None, None, None, "2026-10", as_of, "UTC")) == 1  # a whole month is itself
    week = parse_period("week", None, None, None, as_of, "UTC")  # 11-09 .. 11-15 12:00: 6.5 days
    assert month_factor(week) == pytest.approx(30 / 6.5)


# ---------------------------------------------------------------- the alert rule kind goal_off_track

_rules = rules


@pytest.mark.parametrize(("rule", "problem"), [
    ({"metric": "goal_off_track", "channels": ["hook"]}, "rules.r.goal: is required"),
    ({"metric": "goal_off_track", "goal": "budget", "comparison": ">", "threshold": 0, "channels": ["hook"]},
     "rules.r: a goal_off_track rule takes no comparison or threshold"),
    ({"metric": "daily_cost", "goal": "budget", "comparison": ">", "threshold": 0, "channels": ["hook"]},
     "rules.r.goal: only a goal_off_track rule names a goal"),
])
def test_a_goal_rule_names_its_goal_and_nothing_else(rule, problem):
    from agent_analytics.alerts.rules import AlertsConfigError

    with pytest.raises(AlertsConfigError, match=f"^alerts.toml: {problem}"):
        _rules({"r": rule})


def test_a_goal_off_track_fires_and_one_on_track_does_not(built_fixture_home, tmp_path):
    """The last complete day before the data's watermark (11-05) is 11-04. November to date
    then has a cost from $0.155125 (11-02 alone) to $0.180125 (all four days) over 4 of 30 days:
    projected x 7.5, from $1.16 to $1.35 a month, above $0.01 and below $1,000."""
    from agent_analytics.alerts.evaluate import evaluate
    from agent_analytics.settings import load_settings
    from agent_analytics.warehouse import open_warehouse

    home = copy_built_home(built_fixture_home, tmp_path / "home")
    goals = tmp_path / "goals.toml"
    goals.write_text('[goals.tight]\nmetric = "cost_per_month"\ntarget = 0.01\ndirection = "at_most"\n'
                     '[goals.loose]\nmetric = "cost_per_month"\ntarget = 1000\ndirection = "at_most"\n')
    settings = load_settings({"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_GOALS": str(goals)})
    config = _rules({"tight-budget": {"metric": "goal_off_track", "goal": "tight", "channels": ["hook"]},
                     "loose-budget": {"metric": "goal_off_track", "goal": "loose", "channels": ["hook"]},
                     "gone": {"metric": "goal_off_track", "goal": "no-such-goal", "channels": ["hook"]}})
    assert config.rules["tight-budget"].condition_text() == "goal tight off track for 1d"
    now = datetime(2026, 11, 6, 12, tzinfo=timezone.utc)
    with open_warehouse(settings.warehouse_path) as con:
        result = evaluate(con, config, settings, now)
        episodes = con.execute("select rule_name, started_at, trigger_value from alerts.episodes").fetchall()
        states = dict(con.execute("select rule_name, evaluated_through from alerts.rule_state").fetchall())
        assert evaluate(con, config, settings, now).events == []  # evaluated days are not evaluated again
    assert [e[0] for e in result.events] == ["alert.triggered"]
    assert episodes == [("tight-budget", datetime(2026, 11, 4), 1.0)]
    assert set(states) == {"tight-budget", "loose-budget", "gone"}  # every rule evaluated its day


def test_a_day_without_a_goal_value_neither_resolves_nor_opens_an_episode():
    """Off track, then a day without a value (no data, or the goal removed), then off track
    again: one episode, triggered on the first day and never resolved; a day without a value
    opens none either."""
    from datetime import timedelta

    from agent_analytics.alerts.evaluate import State, advance

    rule = _rules({"r": {"metric": "goal_off_track", "goal": "budget", "channels": ["hook"]}}).rules["r"]
    first = datetime(2026, 11, 1)

    def steps(values):
        return day_steps(first, values)

    state, transitions = advance(rule, "all", State(), steps([1.0, None, 1.0]))
    assert [t.kind for t in transitions] == ["triggered"]
    assert state.episode_id is not None and state.evaluated_through == first + timedelta(days=2)
    state, transitions = advance(rule, "all", State(), steps([None, None]))
    assert transitions == [] and state.episode_id is None and state.evaluated_through == first + timedelta(days=1)
    state, transitions = advance(rule, "all", State(), steps([1.0, 0.0]))
    assert [t.kind for t in transitions] == ["triggered", "resolved"]


def test_a_goal_alert_names_its_goal_and_says_off_or_on_track():
    from agent_analytics.alerts import events as ev

    rule = _rules({"tight-budget": {"metric": "goal_off_track", "goal": "tight", "channels": ["hook"]}}).rules["tight-budget"]
    at = datetime(2026, 11, 4)
    fired = ev.alert_data(rule, "all", "e1", at, at, 1.0)
    resolved = ev.alert_data(rule, "all", "e1", at, at, 0.0, resolved=True)
    assert fired["goal"] == "tight"
    assert ev.headline({"event": ev.TRIGGERED, "data": fired}) == (
        "ALERT [warning] tight-budget (goal tight): goal tight off track for 1d: off track")
    assert ev.headline({"event": ev.RESOLVED, "data": resolved}) == "RESOLVED [warning] tight-budget (goal tight): now on track"
