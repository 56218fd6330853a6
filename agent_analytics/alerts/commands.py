"""`agent-analytics alerts list | test RULE | history`: see the rules, send a test
notification to a rule's channels, read past episodes and their deliveries."""

from __future__ import annotations

import argparse
import os
import uuid
from datetime import datetime, timezone

from agent_analytics.alerts import events as ev
from agent_analytics.alerts.rules import AlertConfig, AlertsConfigError, channel_problems, load_config


class AlertsCommandError(Exception):
    """A user mistake; printed as one line."""


def add_alerts_parser(sub, parser_class) -> None:
    alerts = sub.add_parser("alerts", help="alert rules: list them, send a test, read the history")
    commands = alerts.add_subparsers(dest="alerts_command", required=True, parser_class=parser_class)
    commands.add_parser("list", help="the rules and channels of the rules file, and which channels are configured")
    test = commands.add_parser("test", help="send a test notification to every channel of a rule")
    test.add_argument("rule", help="rule name (see 'alerts list')")
    history = commands.add_parser("history", help="past alert episodes, newest first, with their deliveries")
    history.add_argument("--rule", help="only this rule")
    history.add_argument("--limit", type=_positive, default=20, help="episodes to show (default 20)")


def _positive(text: str) -> int:
    try:  # not str.isdigit(): it accepts digits such as '²' that int() refuses
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    if value > MAX_LIMIT:  # DuckDB's LIMIT takes a 64-bit number; nobody reads more episodes
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_LIMIT:,}")
    return value


MAX_LIMIT = 1_000_000


def _config(settings) -> AlertConfig:
    try:
        return load_config(settings.alert_rules_path)
    except AlertsConfigError as exc:
        raise AlertsCommandError(str(exc)) from None


def _check_channels(config: AlertConfig, environ) -> None:
    """A channel whose variable holds an unusable value (never shown) is a settings error."""
    from agent_analytics.alerts.secrets import redactor_for

    problems = channel_problems(config, environ)
    if problems:
        raise AlertsCommandError(redactor_for(config, environ)("; ".join(problems.values())))


def _channel_status(channel, environ) -> str:
    if channel.type == "email":
        from agent_analytics import mail

        ready = bool((environ.get(mail.HOST_VAR) or "").strip())
        return "ok" if ready else f"missing {mail.HOST_VAR}"
    missing = [name for name in channel.env_names if not (environ.get(name) or "").strip()]
    return "ok" if not missing else "missing " + ", ".join(missing)


def cmd_list(config: AlertConfig, environ) -> int:
    print(f"rules file: {config.path}")
    print(f"{'rule':<28} {'condition':<44} {'scope':<10} {'severity':<9} channels")
    for rule in config.rules.values():
        unit = "m" if rule.grain == "minute" else "d"
        remind = f" (remind every {rule.remind_every_steps}{unit})" if rule.remind_every_steps else ""
        print(f"{rule.name:<28} {rule.condition_text():<44} {rule.scope:<10} {rule.severity:<9} "
              f"{', '.join(rule.channels)}{remind}")
    print()
    print(f"{'channel':<28} {'type':<10} status")
    for channel in config.channels.values():
        extra = f" -> {', '.join(channel.to)}" if channel.to else ""
        print(f"{channel.name:<28} {channel.type:<10} {_channel_status(channel, environ)}{extra}")
    if config.summary_channels:
        print(f"\nanalytics.daily_summary -> {', '.join(config.summary_channels)}")
    return 0


def test_event(rule, now: datetime) -> dict:
    data = ev.alert_data(rule, rule.scope, "test", now, now, None)
    data["test"] = True
    return ev.envelope(ev.TEST, "evt_test_" + uuid.uuid4().hex[:20], now, data)


def cmd_test(config: AlertConfig, rule_name: str, settings, environ) -> int:
    from agent_analytics.alerts.deliver import attempt_with_retries
    from agent_analytics.alerts.secrets import redactor_for
    from agent_analytics.alerts.store import ensure_alert_tables
    from agent_analytics.warehouse import open_warehouse

    rule = config.rules.get(rule_name)
    if rule is None:
        raise AlertsCommandError(f"unknown rule {rule_name!r} (rules: {', '.join(config.rules) or 'none'})")
    redact = redactor_for(config, environ)
    event = test_event(rule, datetime.now(timezone.utc))
    body = ev.encode(event)
    rows, ok = [], True
    for name in rule.channels:
        tries = attempt_with_retries(config.channels[name], event, body, config, environ, 1)
        number, _, last = tries[-1]
        ok = ok and last.ok
        code = "" if last.status_code is None else f"HTTP {last.status_code}, "
        outcome = f"delivered ({code}attempt {number})" if last.ok else f"FAILED after {number} attempts: {redact(last.error)}"
        print(f"{name:<28} {outcome}")
        rows += [(event["id"], name, ev.TEST, n, a.status_code, "delivered" if a.ok else "failed",
                  None if a.error is None else redact(a.error), at, round(a.duration_ms, 3)) for n, at, a in tries]
    if settings.warehouse_path.exists():
        with open_warehouse(settings.warehouse_path, memory_limit=settings.duckdb_memory) as con:
            ensure_alert_tables(con)
            con.executemany("insert into alerts.deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return 0 if ok else 1


def cmd_history(settings, rule: str | None, limit: int) -> int:
    from agent_analytics.warehouse import open_warehouse

    if not settings.warehouse_path.exists():
        raise AlertsCommandError(f"no warehouse at {settings.warehouse_path}: run 'agent-analytics build' first")
    with open_warehouse(settings.warehouse_path, read_only=True, memory_limit=settings.duckdb_memory) as con:
        has_table = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'alerts' and table_name = 'episodes'"
        ).fetchall()[0][0]
        if not has_table:
            print("no alert episodes yet")
            return 0
        rows = con.execute(
            """
            select e.rule_name, e.scope, e.status, e.started_at, e.fired_at, e.resolved_at, e.trigger_value,
                   count(*) filter (where o.status = 'delivered') as delivered,
                   count(*) filter (where o.status = 'pending') as pending,
                   count(*) filter (where o.status = 'failed') as failed
            from alerts.episodes as e left join alerts.outbox as o on o.episode_id = e.episode_id
            where $rule is null or e.rule_name = $rule
            group by all order by e.fired_at desc, e.rule_name, e.scope limit $limit
            """,
            {"rule": rule, "limit": limit},
        ).fetchall()
    if not rows:
        print("no alert episodes" + (f" for rule {rule}" if rule else ""))
        return 0
    print(f"{'rule':<24} {'scope':<10} {'status':<9} {'started (UTC)':<17} {'fired':<17} {'resolved':<17} "
          f"{'value':>10}  deliveries")
    stamp = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else "-"  # noqa: E731
    for name, scope, status, started, fired, resolved, value, delivered, pending, failed in rows:
        shown = "-" if value is None else f"{value:g}"
        print(f"{name:<24} {scope:<10} {status:<9} {stamp(started):<17} {stamp(fired):<17} {stamp(resolved):<17} {shown:>10}  "
              f"{delivered} delivered, {pending} pending, {failed} failed")
    return 0


def run_alerts(args, settings) -> int:
    env = os.environ
    if args.alerts_command == "history":
        if args.rule:
            known = _config(settings).rules if settings.alert_rules_path.exists() else {}
            if known and args.rule not in known:
                raise AlertsCommandError(f"unknown rule {args.rule!r} (rules: {', '.join(known)})")
        return cmd_history(settings, args.rule, args.limit)
    config = _config(settings)
    _check_channels(config, env)
    if args.alerts_command == "list":
        return cmd_list(config, env)
    return cmd_test(config, args.rule, settings, env)
