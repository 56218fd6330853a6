"""Periods as whole local days (a partial last day, the previous period cut at the same point)
and how changes and missing values are labelled; values worked out by hand."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from agent_analytics.alerts.events import DAILY_SUMMARY, headline
from agent_analytics.metrics.formatting import NO_DATA, change, per_minute, percent
from agent_analytics.metrics.labels import agent_label, change_pp, compared, compared_pp
from agent_analytics.periods import PeriodError, dashboard_pages, parse_period, report_period
from agent_analytics.reports.summary import change_text

UTC = timezone.utc


def _iso(period) -> tuple[str, str, str, bool]:
    d = period.describe()
    return d["start"], d["end"], d["full_end"], d["partial"]


def test_month_to_date_is_partial_and_compares_with_the_same_span_of_the_month_before():
    as_of = datetime(2026, 11, 29, 14, 0, tzinfo=UTC)
    month = parse_period(None, None, None, "2026-11", as_of, "UTC")
    assert _iso(month) == ("2026-11-01T00:00:00Z", "2026-11-29T14:00:00Z", "2026-12-01T00:00:00Z", True)
    assert (month.start_date, month.end_date, month.last_date) == (date(2026, 11, 1), date(2026, 11, 29), date(2026, 11, 30))
    assert _iso(month.previous()) == ("2026-10-01T00:00:00Z", "2026-10-29T14:00:00Z", "2026-11-01T00:00:00Z", True)
    # March 31 has no February twin: the whole of February
    march = parse_period(None, None, None, "2026-03", datetime(2026, 3, 31, 6, tzinfo=UTC), "UTC")
    assert _iso(march.previous()) == ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", False)


def test_rolling_periods_are_whole_local_days_ending_with_the_day_of_as_of():
    as_of = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
    week = parse_period("week", None, None, None, as_of, "UTC")
    assert _iso(week) == ("2026-11-14T00:00:00Z", "2026-11-20T15:30:00Z", "2026-11-21T00:00:00Z", True)
    assert _iso(week.previous()) == ("2026-11-07T00:00:00Z", "2026-11-13T15:30:00Z", "2026-11-14T00:00:00Z", True)
    # an as_of at local midnight ends with the whole day before: nothing partial
    whole = parse_period("week", None, None, None, datetime(2026, 11, 21, tzinfo=UTC), "UTC")
    assert _iso(whole) == ("2026-11-14T00:00:00Z", "2026-11-21T00:00:00Z", "2026-11-21T00:00:00Z", False)
    assert _iso(whole.previous())[:2] == ("2026-11-07T00:00:00Z", "2026-11-14T00:00:00Z")
    # Kathmandu is UTC+5:45: today at 06:00 UTC started at 18:15 UTC the day before
    today = parse_period("today", None, None, None, datetime(2026, 11, 3, 6, tzinfo=UTC), "Asia/Kathmandu")
    assert _iso(today) == ("2026-11-02T18:15:00Z", "2026-11-03T06:00:00Z", "2026-11-03T18:15:00Z", True)
    assert _iso(today.previous())[:2] == ("2026-11-01T18:15:00Z", "2026-11-02T06:00:00Z")


def test_the_previous_period_is_cut_the_same_time_into_its_day_across_daylight_saving():
    # New York leaves DST on 2026-11-01 (a 25-hour day); 2026-11-03 15:00 UTC is 10:00 EST,
    # 10 hours after that day's midnight (05:00 UTC)
    as_of = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
    two_days = parse_period("2d", None, None, None, as_of, "America/New_York")
    assert _iso(two_days) == ("2026-11-02T05:00:00Z", "2026-11-03T15:00:00Z", "2026-11-04T05:00:00Z", True)
    # previous: 10-31 and 11-01 (the 25-hour day), cut 10 hours into 11-01: 11-01 04:00 UTC + 10 h
    assert _iso(two_days.previous()) == ("2026-10-31T04:00:00Z", "2026-11-01T14:00:00Z", "2026-11-02T05:00:00Z", True)


def test_a_period_that_starts_after_as_of_is_refused_and_reports_can_be_to_date():
    with pytest.raises(PeriodError, match="starts after"):
        parse_period(None, "2026-12-01", "2026-12-02", None, datetime(2026, 11, 29, tzinfo=UTC), "UTC")
    label, whole = report_period("monthly", date(2026, 11, 10), "UTC")
    assert (label, whole.partial, whole.previous().label, _iso(whole.previous())[:2]) == (
        "2026-11", False, "previous 2026-11", ("2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z"))
    _, to_date = report_period("weekly", date(2026, 11, 25), "UTC", as_of=datetime(2026, 11, 25, 12, tzinfo=UTC))
    assert _iso(to_date) == ("2026-11-23T00:00:00Z", "2026-11-25T12:00:00Z", "2026-11-30T00:00:00Z", True)
    pages = {p.slug: p.period for p in dashboard_pages(datetime(2026, 11, 29, 14, tzinfo=UTC), "UTC")}
    assert pages["current-month"].partial and not pages["previous-month"].partial
    assert _iso(pages["day"])[:2] == ("2026-11-29T00:00:00Z", "2026-11-29T14:00:00Z")
    # at local midnight of the 1st, this month so far is the month that just ended, whole
    midnight = {p.slug: p.period for p in dashboard_pages(datetime(2026, 12, 1, tzinfo=UTC), "UTC")}
    assert (midnight["current-month"].label, midnight["current-month"].partial, midnight["previous-month"].label) == (
        "2026-11", False, "2026-10")
    assert _iso(midnight["day"])[:2] == ("2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z")


def test_rates_change_in_percentage_points_and_missing_values_say_no_data():
    assert change_pp(1.25, 0.9) == 0.35 and change_pp(None, 0.9) is None
    rate = compared_pp(1.25, 0.9)
    assert rate == {"value": 1.25, "previous": 0.9, "change_pp": 0.35, "trend": "up"}
    assert change(rate, "previous period") == "(↑ 0.35 pp vs previous period)"
    assert change_text(rate) == "up 0.35 pp"
    assert compared(None, 3) == {"value": None, "previous": 3, "change_pct": None, "trend": "no data"}
    assert change_text(compared(5, None)) == "no data"
    assert compared(12, 10)["change_pct"] == 20.0 and change_text(compared(12, 10)) == "up 20.0%"
    assert (percent(None), per_minute(None), NO_DATA) == ("no data", "no data", "no data")
    assert percent(0.0) == "0.00%" and per_minute(0) == "0 req/min"


def test_agents_are_shown_by_name_with_the_id_where_they_differ():
    assert agent_label("Support Bot", "support-bot") == "Support Bot (support-bot)"
    assert agent_label("support", "support") == "support"
    assert agent_label(None, "x1") == "x1"


def test_a_daily_summary_without_messages_has_no_error_rate():
    event = {"event": DAILY_SUMMARY, "data": {"date": "2026-11-28", "dau": 0, "sessions": 0, "messages": 0,
                                               "costs": 0.0, "error_rate": None}}
    assert headline(event).endswith("error rate no data")


def test_a_report_of_a_period_not_started_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from agent_analytics_cli.main import main

    home = tmp_path / "home"
    home.mkdir()
    (home / "warehouse.duckdb").write_bytes(b"")  # the period is refused before the warehouse is read
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    assert main(["report", "--frequency", "weekly", "--period-end", "2999-12-30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # 2999-12-30 lies in ISO week 1 of 3000
    assert len(err) == 1 and err[0].startswith("agent-analytics: error: report 'weekly': the period 3000-W01 starts after")
