"""Delivery of the outbox: every pending event to its channel, retried with backoff,
each attempt in the delivery log (alerts.deliveries).

- One run tries each pending (event, channel) up to `attempts_per_run` times, sleeping
  backoff_seconds x 1, 2, 4, ... between tries, each try with `timeout_seconds`.
- A channel that failed every try of one event is not tried again in the same run (its other
  events wait), so a dead channel costs one event's tries per run, not one per event.
- An event stays `pending` for the next run until `max_attempts` tries in all, then it is
  `failed`. A 2xx answer (SMTP: accepted) makes it `delivered`; it is never sent again.
- A channel whose settings are malformed (rules.channel_problems: a URL with a space, no
  scheme, a bad port, ...) is not tried: its events stay `pending` with the problem as
  their last error, without using up attempts, until the setting is fixed; every other
  channel delivers as usual.
- The warehouse is opened only to read the outbox and to write the results, never while
  waiting on a channel. Each event's result is written as soon as its channel answered, so a
  run killed midway sends again at most the event it was sending (same `webhook-id`, which
  receivers drop as a duplicate). Error texts are redacted before they are stored or returned.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from agent_analytics.alerts.channels import Attempt, send
from agent_analytics.alerts.rules import AlertConfig, channel_problems
from agent_analytics.alerts.secrets import Redactor
from agent_analytics.alerts.store import ensure_alert_tables
from agent_analytics.warehouse import open_warehouse


@dataclass
class DeliveryResult:
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    still_pending: int = 0
    failing_channels: dict[str, str] = field(default_factory=dict)  # channel -> last error (redacted)
    misconfigured_channels: dict[str, str] = field(default_factory=dict)  # channel -> its problem (redacted)

    @property
    def healthy(self) -> bool:
        return not self.failing_channels and not self.misconfigured_channels and not self.given_up


def _utc_now() -> datetime:
    return datetime.fromtimestamp(time.time(), timezone.utc).replace(tzinfo=None)


def attempt_with_retries(
    channel, event: dict, body: str, config: AlertConfig, environ: Mapping[str, str], first_attempt: int,
) -> list[tuple[int, datetime, Attempt]]:
    """Up to attempts_per_run tries; stops at the first success."""
    d = config.delivery
    tries: list[tuple[int, datetime, Attempt]] = []
    for i in range(d.attempts_per_run):
        if i:
            time.sleep(d.backoff_seconds * 2 ** (i - 1))
        at = _utc_now()
        result = send(channel, event, body, environ, d.timeout_seconds)
        tries.append((first_attempt + i, at, result))
        if result.ok:
            break
    return tries


def deliver_pending(warehouse_path: Path, config: AlertConfig, redact: Redactor) -> DeliveryResult:
    """Send every pending outbox event; URLs, keys and secrets come from the environment."""
    env = os.environ
    with open_warehouse(warehouse_path) as con:
        ensure_alert_tables(con)
        pending = con.execute(
            "select event_id, channel, event_type, payload, attempts from alerts.outbox "
            "where status = 'pending' order by created_at, rowid"
        ).fetchall()
    result = DeliveryResult()
    problems = channel_problems(config, env)
    log_rows, updates = [], []
    for event_id, channel_name, event_type, payload, attempts in pending:
        channel = config.channels.get(channel_name)
        if channel_name in result.failing_channels:
            result.still_pending += 1
            continue
        if channel is None:
            error = f"channel {channel_name} is no longer in the rules file"
            updates.append((event_id, channel_name, "failed", attempts, None, None, error))
            result.given_up += 1
            continue
        if channel_name in problems:
            error = redact(problems[channel_name])
            result.misconfigured_channels[channel_name] = error
            result.still_pending += 1
            updates.append((event_id, channel_name, "pending", attempts, None, None, error))
            continue
        tries = attempt_with_retries(channel, json.loads(payload), payload, config, env, attempts + 1)
        for number, at, attempt in tries:
            error = None if attempt.error is None else redact(attempt.error)
            log_rows.append((event_id, channel_name, event_type, number, attempt.status_code,
                             "delivered" if attempt.ok else "failed", error, at, round(attempt.duration_ms, 3)))
        last_number, last_at, last = tries[-1]
        if last.ok:
            result.delivered += 1
            result.failed_attempts += len(tries) - 1
            updates.append((event_id, channel_name, "delivered", last_number, last_at, last_at, None))
            _write(warehouse_path, log_rows, updates)
            continue
        result.failed_attempts += len(tries)
        error = redact(last.error)
        result.failing_channels[channel_name] = error
        status = "failed" if last_number >= config.delivery.max_attempts else "pending"
        if status == "failed":
            result.given_up += 1
        else:
            result.still_pending += 1
        updates.append((event_id, channel_name, status, last_number, last_at, None, error))
        _write(warehouse_path, log_rows, updates)
    _write(warehouse_path, log_rows, updates)
    return result


def _write(warehouse_path: Path, log_rows: list, updates: list) -> None:
    """Store the attempts and outbox updates gathered so far in one transaction, and clear them."""
    if not (log_rows or updates):
        return
    with open_warehouse(warehouse_path) as con:
        con.execute("begin transaction")
        if log_rows:
            con.executemany("insert into alerts.deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?)", log_rows)
        for event_id, channel_name, status, attempts, last_at, delivered_at, error in updates:
            con.execute(
                "update alerts.outbox set status = ?, attempts = ?, last_attempt_at = coalesce(?, last_attempt_at), "
                "delivered_at = ?, last_error = ? where event_id = ? and channel = ?",
                [status, attempts, last_at, delivered_at, error, event_id, channel_name],
            )
        con.execute("commit")
    log_rows.clear()
    updates.clear()
