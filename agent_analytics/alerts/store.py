"""The alert state in the warehouse: schema `alerts`.

- rule_state: per rule and scope, how far evaluation has got and the open streak/episode;
- episodes: one row per alert episode, id derived from rule, scope and the streak's start;
- outbox: one row per event and channel (pending, delivered or failed), keyed by event id;
- deliveries: the delivery log, one row per attempt (status code, outcome, error, time);
- daily_summaries: the company days whose analytics.daily_summary has been queued.
Inserts into episodes, outbox and daily_summaries are `on conflict do nothing`, so an
event can be queued only once whatever runs again.
"""

from __future__ import annotations

import duckdb

ALERTS_DDL = """
create schema if not exists alerts;
create table if not exists alerts.rule_state (
    rule_name varchar not null,
    scope varchar not null,
    evaluated_through timestamp,
    run_start timestamp,
    episode_id varchar,
    last_notified_at timestamp,
    reminders integer not null,
    updated_at timestamp not null,
    primary key (rule_name, scope)
);
create table if not exists alerts.episodes (
    episode_id varchar primary key,
    rule_name varchar not null,
    scope varchar not null,
    metric varchar not null,
    condition varchar not null,
    severity varchar not null,
    started_at timestamp not null,
    fired_at timestamp not null,
    trigger_value double,
    resolved_at timestamp,
    resolve_value double,
    status varchar not null
);
create table if not exists alerts.outbox (
    event_id varchar not null,
    channel varchar not null,
    event_type varchar not null,
    episode_id varchar,
    payload varchar not null,
    created_at timestamp not null,
    status varchar not null,
    attempts integer not null,
    last_attempt_at timestamp,
    delivered_at timestamp,
    last_error varchar,
    primary key (event_id, channel)
);
create table if not exists alerts.deliveries (
    event_id varchar not null,
    channel varchar not null,
    event_type varchar not null,
    attempt integer not null,
    status_code integer,
    outcome varchar not null,
    error varchar,
    attempted_at timestamp not null,
    duration_ms double
);
create table if not exists alerts.daily_summaries (
    summary_date date primary key,
    event_id varchar not null,
    created_at timestamp not null
);
"""


def ensure_alert_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(ALERTS_DDL)
