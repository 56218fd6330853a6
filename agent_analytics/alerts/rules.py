"""The alert rules file (TOML): rules, channels, evaluation and delivery settings.

The file names environment variables for every URL, key and secret, never their values.
`load_config` validates it and raises `AlertsConfigError` with one line naming the file,
the field and what is wrong. `channel_problems` then checks the values those variables hold
(a URL urllib can send to, a usable key and secret), one line per channel that never shows
the value. Format: docs/alerts.md and config/alerts.example.toml.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agent_analytics import mail
from agent_analytics.settings import ALERT_RULES_VAR as RULES_VAR

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
COMPARISONS = (">", ">=", "<", "<=")
SEVERITIES = ("info", "warning", "error", "critical")
CHANNEL_TYPES = ("webhook", "slack", "pagerduty", "email")
EVENT_TYPES = ("alert.triggered", "alert.resolved", "analytics.daily_summary")
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DURATION = re.compile(r"(\d+)\s*([mhd])")
STEP_MINUTES = {"m": 1, "h": 60, "d": 1440}


@dataclass(frozen=True)
class Metric:
    name: str
    grain: str  # minute | day
    unit: str
    per_agent: bool  # can be scoped to one agent / each agent
    grows_within_day: bool = False  # daily value only increases as the day goes on
    description: str = ""


METRICS = {
    m.name: m
    for m in (
        Metric("daily_cost", "day", "USD", True, True, "cost of the company day (so far), all agents or one"),
        Metric("agent_daily_cost", "day", "USD", True, True, "cost of the company day per agent (every agent separately)"),
        Metric("dau", "day", "users", True, True, "distinct users of the company day"),
        Metric("p95_response_time", "minute", "ms", True, False, "95th percentile response time of the minute"),
        Metric("p50_response_time", "minute", "ms", True, False, "median response time of the minute"),
        Metric("avg_response_time", "minute", "ms", True, False, "average response time of the minute"),
        Metric("error_rate", "minute", "%", True, False, "errors / messages of the minute, in percent"),
        Metric("request_volume", "minute", "messages/min", True, False, "messages in the minute (0 when none)"),
        Metric("uptime", "minute", "%", False, False, "up probes / all probes of the minute, in percent"),
        Metric("queue_depth", "minute", "requests", False, False, "highest queue depth sampled in the minute"),
        Metric("rejected_files", "day", "files", False, True,
               "landing files moved to landing/rejected/ in the company day (unreadable or unloadable)"),
        Metric("quarantined_lines", "day", "lines", False, True, "input lines quarantined in the company day"),
        Metric("goal_off_track", "day", "", False, False,
               "1 on a company day whose month to date is off the target of the goal named by `goal` "
               "(the goals file), 0 on track"),
        Metric("budget_forecast_over", "day", "", False, False,
               "1 on a company day whose month-end forecast (as of the day's end) is over the budget named by "
               "`budget` (the goals file), 0 within it"),
        Metric("budget_spend_pct", "day", "%", False, True,
               "month-to-date spend of the budget named by `budget` (the goals file) in percent of it, "
               "as of the company day's end (so far for the day in progress)"),
        Metric("bill_mismatch", "day", "%", False, False,
               "a provider's bill of a month flagged against the estimate (AGENT_ANALYTICS_BILL_MISMATCH_PCT; "
               "once per provider and month, value: the difference in % of the estimate)"),
    )
}
BUDGET_METRICS = ("budget_forecast_over", "budget_spend_pct")


class AlertsConfigError(ValueError):
    """The rules file cannot be used; the message is one line."""


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    url_env: str | None = None
    secret_env: str | None = None
    routing_key_env: str | None = None
    to: tuple[str, ...] = ()

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every environment variable this channel reads."""
        return tuple(n for n in (self.url_env, self.secret_env, self.routing_key_env) if n)


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    comparison: str
    threshold: float
    window_steps: int  # consecutive minutes (minute metrics) or days (daily metrics)
    scope: str  # "all", "each" (every agent separately) or an agent id
    severity: str
    channels: tuple[str, ...]
    remind_every_steps: int | None = None
    description: str = ""
    goal: str | None = None  # goal_off_track: the goal's name in the goals file
    budget: str | None = None  # budget_forecast_over, budget_spend_pct: the budget's name in the goals file

    @property
    def names_target(self) -> bool:
        """Whether the rule follows a goal or a budget of the goals file (a day without its value
        neither opens nor resolves an episode)."""
        return self.goal is not None or self.budget is not None

    @property
    def grain(self) -> str:
        return METRICS[self.metric].grain

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return {
            ">": value > self.threshold,
            ">=": value >= self.threshold,
            "<": value < self.threshold,
            "<=": value <= self.threshold,
        }[self.comparison]

    @property
    def window_text(self) -> str:
        return f"{self.window_steps}{'m' if self.grain == 'minute' else 'd'}"

    def condition_text(self) -> str:
        if self.goal is not None:
            return f"goal {self.goal} off track for {self.window_text}"
        if self.metric == "budget_forecast_over":
            return f"budget {self.budget} forecast over budget for {self.window_text}"
        if self.budget is not None:
            return f"budget {self.budget} spend {self.comparison} {self.threshold:g}% of budget for {self.window_text}"
        if self.metric == "bill_mismatch":
            return "provider bill differs from the estimate by more than AGENT_ANALYTICS_BILL_MISMATCH_PCT"
        value = f"{self.threshold:g}"
        return f"{self.metric} {self.comparison} {value} {self.unit} for {self.window_text}"


@dataclass(frozen=True)
class Delivery:
    timeout_seconds: float = 5.0
    attempts_per_run: int = 3
    backoff_seconds: float = 1.0
    max_attempts: int = 12


@dataclass(frozen=True)
class Evaluation:
    lateness_minutes: int = 1
    lookback_minutes: int = 60


@dataclass(frozen=True)
class AlertConfig:
    path: Path
    rules: dict[str, Rule]
    channels: dict[str, Channel]
    summary_channels: tuple[str, ...] = ()
    delivery: Delivery = field(default_factory=Delivery)
    evaluation: Evaluation = field(default_factory=Evaluation)

    def env_names(self) -> tuple[str, ...]:
        return tuple(sorted({n for c in self.channels.values() for n in c.env_names}))


def load_config(path: Path) -> AlertConfig:
    """Read and validate the rules file; AlertsConfigError (one line) on any problem."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise AlertsConfigError(
            f"no alert rules file at {path} (set {RULES_VAR}; example: config/alerts.example.toml)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AlertsConfigError(f"{path}: cannot read: {type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AlertsConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(data: dict, path: Path) -> AlertConfig:
    where = _Where(path)
    where.only(data, "", {"evaluation", "delivery", "daily_summary", "channels", "rules"})
    channels = {name: _channel(name, body, where) for name, body in where.table(data, "channels").items()}
    rules = {name: _rule(name, body, channels, where) for name, body in where.table(data, "rules").items()}
    summary = where.table(data, "daily_summary")
    where.only(summary, "daily_summary", {"channels"})
    summary_channels = _channel_refs(summary.get("channels", []), channels, where, "daily_summary.channels")
    for name in summary_channels:
        if channels[name].type == "pagerduty":
            where.fail("daily_summary.channels", f"{name!r} is a PagerDuty channel, which takes alerts only")
    delivery = where.table(data, "delivery")
    where.only(delivery, "delivery", {"timeout_seconds", "attempts_per_run", "backoff_seconds", "max_attempts"})
    evaluation = where.table(data, "evaluation")
    where.only(evaluation, "evaluation", {"lateness_minutes", "lookback_minutes"})
    d = Delivery(
        timeout_seconds=where.number(delivery, "delivery", "timeout_seconds", 5.0, positive=True),
        attempts_per_run=int(where.number(delivery, "delivery", "attempts_per_run", 3, positive=True, whole=True)),
        backoff_seconds=where.number(delivery, "delivery", "backoff_seconds", 1.0),
        max_attempts=int(where.number(delivery, "delivery", "max_attempts", 12, positive=True, whole=True)),
    )
    e = Evaluation(
        lateness_minutes=int(where.number(evaluation, "evaluation", "lateness_minutes", 1, whole=True)),
        lookback_minutes=int(where.number(evaluation, "evaluation", "lookback_minutes", 60, positive=True, whole=True)),
    )
    return AlertConfig(path, rules, channels, summary_channels, d, e)


class _Where:
    """Validation helpers whose errors name the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, field_name: str, problem: str):
        raise AlertsConfigError(f"{self.path}: {field_name}: {problem}")

    def only(self, table: dict, prefix: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                name = f"{prefix}.{key}" if prefix else key
                self.fail(name, f"unknown setting (expected one of: {', '.join(sorted(allowed))})")

    def table(self, data: dict, key: str) -> dict:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return value

    def text(self, body: dict, prefix: str, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = body.get(key, default)
        if value is None:
            if required:
                self.fail(f"{prefix}.{key}", "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{prefix}.{key}", "must be a non-empty string")
        return value.strip()

    def number(self, body: dict, prefix: str, key: str, default: float, positive: bool = False, whole: bool = False) -> float:
        value = body.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{prefix}.{key}", f"must be a number, not {value!r}")
        if value < 0 or (positive and value == 0) or (whole and value != int(value)):
            need = ("positive" if positive else "non-negative") + (" whole number" if whole else " number")
            self.fail(f"{prefix}.{key}", f"must be a {need}, not {value!r}")
        return float(value)

    def env_name(self, body: dict, prefix: str, key: str, required: bool) -> str | None:
        value = self.text(body, prefix, key, required=required)
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            self.fail(f"{prefix}.{key}", "must name an environment variable (the value itself belongs in the environment)")
        return value


def _channel(name: str, body, where: _Where) -> Channel:
    prefix = f"channels.{name}"
    if not NAME.fullmatch(name):
        where.fail(prefix, "channel names use letters, digits, '_', '-', '.' (at most 64)")
    if not isinstance(body, dict):
        where.fail(prefix, "must be a table")
    kind = where.text(body, prefix, "type", required=True)
    if kind not in CHANNEL_TYPES:
        where.fail(f"{prefix}.type", f"{kind!r} is not one of {', '.join(CHANNEL_TYPES)}")
    allowed = {
        "webhook": {"type", "url_env", "secret_env"},
        "slack": {"type", "url_env"},
        "pagerduty": {"type", "routing_key_env", "url_env"},
        "email": {"type", "to"},
    }[kind]
    for key in body:
        if key in ("url", "secret", "routing_key", "password"):
            where.fail(f"{prefix}.{key}", f"secrets and URLs come from the environment: use {key}_env = \"VARIABLE_NAME\"")
    where.only(body, prefix, allowed)
    if kind == "email":
        to = body.get("to")
        if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
            where.fail(f"{prefix}.to", "must be a non-empty list of email addresses")
        return Channel(name, kind, to=tuple(a.strip() for a in to))
    return Channel(
        name,
        kind,
        url_env=where.env_name(body, prefix, "url_env", required=kind != "pagerduty"),
        secret_env=where.env_name(body, prefix, "secret_env", required=kind == "webhook"),
        routing_key_env=where.env_name(body, prefix, "routing_key_env", required=kind == "pagerduty"),
    )


def _channel_refs(value, channels: dict[str, Channel], where: _Where, field_name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        where.fail(field_name, "must be a list of channel names")
    for name in value:
        if name not in channels:
            where.fail(field_name, f"unknown channel {name!r} (defined: {', '.join(sorted(channels)) or 'none'})")
    return tuple(dict.fromkeys(value))


def _duration(text, where: _Where, field_name: str, grain: str) -> int:
    """A duration as a number of steps (minutes or days) of the metric's grain."""
    match = DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match or int(match.group(1)) <= 0:
        where.fail(field_name, f"{text!r} is not a duration like 10m, 2h or 1d")
    minutes = int(match.group(1)) * STEP_MINUTES[match.group(2)]
    if grain == "day":
        if minutes % 1440:
            where.fail(field_name, f"{text!r}: a daily metric is evaluated per company day, so use whole days (1d, 2d, ...)")
        return minutes // 1440
    return minutes


def _rule(name: str, body, channels: dict[str, Channel], where: _Where) -> Rule:
    prefix = f"rules.{name}"
    if not NAME.fullmatch(name):
        where.fail(prefix, "rule names use letters, digits, '_', '-', '.' (at most 64)")
    if not isinstance(body, dict):
        where.fail(prefix, "must be a table")
    where.only(body, prefix, {"metric", "comparison", "threshold", "window", "scope", "severity", "channels", "remind_every",
                              "description", "goal", "budget"})
    metric = where.text(body, prefix, "metric", required=True)
    if metric not in METRICS:
        where.fail(f"{prefix}.metric", f"{metric!r} is not one of {', '.join(METRICS)}")
    spec = METRICS[metric]
    goal = _named(body, where, prefix, "goal", metric, ("goal_off_track",))
    budget = _named(body, where, prefix, "budget", metric, BUDGET_METRICS)
    if metric in ("goal_off_track", "budget_forecast_over"):
        # 1 while the goal is off track / the forecast is over the budget, 0 when not
        if "comparison" in body or "threshold" in body:
            what = "the goal is off track" if goal else "the forecast is over the budget"
            where.fail(prefix, f"a {metric} rule takes no comparison or threshold (it fires while {what})")
        body = {**body, "comparison": ">=", "threshold": 1}
    elif metric == "budget_spend_pct":
        body = {"comparison": ">=", **body}  # "spend over N% of the budget": threshold = N
    if metric == "bill_mismatch":
        # the flag is the reconciliation's (its threshold is a setting): once per provider and month
        extra = sorted({"comparison", "threshold", "window", "remind_every", "scope"} & body.keys())
        if extra:
            where.fail(prefix, f"a bill_mismatch rule takes no {', '.join(extra)} (it fires once per flagged "
                       "provider and month; the threshold is AGENT_ANALYTICS_BILL_MISMATCH_PCT)")
        body = {**body, "comparison": ">", "threshold": 0}
    comparison = where.text(body, prefix, "comparison", required=True)
    if comparison not in COMPARISONS:
        where.fail(f"{prefix}.comparison", f"{comparison!r} is not one of {', '.join(COMPARISONS)}")
    if "threshold" not in body:
        where.fail(f"{prefix}.threshold", "is required")
    threshold = body["threshold"]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        where.fail(f"{prefix}.threshold", f"must be a number in {spec.unit}, not {threshold!r}")
    default_window = "1m" if spec.grain == "minute" else "1d"
    window = _duration(body.get("window", default_window), where, f"{prefix}.window", spec.grain)
    default_scope = "each" if metric == "agent_daily_cost" else "all"
    scope = where.text(body, prefix, "scope", default=default_scope)
    if not spec.per_agent and scope != "all":
        where.fail(f"{prefix}.scope", f"{metric} is platform-wide: the scope can only be 'all'")
    if metric == "agent_daily_cost" and scope == "all":
        where.fail(f"{prefix}.scope", "agent_daily_cost is per agent: use 'each' or one agent id (or metric daily_cost)")
    severity = where.text(body, prefix, "severity", default="warning")
    if severity not in SEVERITIES:
        where.fail(f"{prefix}.severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}")
    rule_channels = _channel_refs(body.get("channels", []), channels, where, f"{prefix}.channels")
    if not rule_channels:
        where.fail(f"{prefix}.channels", "name at least one channel")
    remind = body.get("remind_every")
    remind_steps = None if remind is None else _duration(remind, where, f"{prefix}.remind_every", spec.grain)
    description = body.get("description", "")
    if not isinstance(description, str):
        where.fail(f"{prefix}.description", "must be a string")
    return Rule(name, metric, comparison, float(threshold), window, scope, severity, rule_channels, remind_steps, description,
                goal, budget)


def _named(body: dict, where: _Where, prefix: str, key: str, metric: str, metrics: tuple[str, ...]) -> str | None:
    """The goal or budget a rule of `metrics` names (required there, refused elsewhere)."""
    if metric in metrics:
        return where.text(body, prefix, key, required=True)
    if key in body:
        where.fail(f"{prefix}.{key}", f"only a {' or '.join(metrics)} rule names a {key}")
    return None


# ---------------------------------------------------------------- the values of the variables


def _undecodable(text: str) -> bool:
    """os.environ keeps bytes that are not UTF-8 as lone surrogates, which cannot be sent."""
    return any(unicodedata.category(c) == "Cs" for c in text)


def _control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf") for c in text)


def _text_problem(value: str) -> str | None:
    """What makes a (stripped) setting value unusable as text at all; None when it is text."""
    if not value:
        return "is empty"
    if _undecodable(value):
        return "is not valid UTF-8"
    if _control(value):
        return "contains a control character"
    return None


def url_problem(value: str) -> str | None:
    """What makes `value` unusable as a webhook URL, without quoting it; None when usable."""
    value = value.strip()
    if problem := _text_problem(value):
        return problem
    if any(c.isspace() for c in value):
        return "contains whitespace"
    if not value.isascii():
        return "contains a non-ASCII character (percent-encode it)"
    if "://" not in value:
        return "has no scheme (it must start with https:// or http://)"
    # urllib's ValueErrors quote the value (the port, the host): ours name the part only
    bad_port = "has an invalid port (a number from 1 to 65535)"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "has an invalid host"
    try:
        port = parts.port
    except ValueError:
        return bad_port
    if parts.scheme.lower() not in ("http", "https"):
        return "has a scheme other than https:// or http://"
    if parts.username is not None or parts.password is not None:
        return "has a user name or password before the host (not supported)"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return bad_port
    return None


def signing_secret_problem(value: str) -> str | None:
    value = value.strip()
    if problem := _text_problem(value):
        return problem
    if value.startswith("whsec_"):
        try:
            if not base64.b64decode(value[len("whsec_"):], validate=True):
                return "starts with whsec_ but holds no key"
        except (binascii.Error, ValueError):
            return "starts with whsec_ but the rest is not valid base64"
    return None


def routing_key_problem(value: str) -> str | None:
    value = value.strip()
    if problem := _text_problem(value):
        return problem
    if any(c.isspace() for c in value):
        return "contains whitespace"
    return None


def channel_problem(channel: Channel, environ: Mapping[str, str]) -> str | None:
    """One line naming the channel, the variable and what is wrong with its value (never
    the value itself), or None. An unset variable is no problem here: the channel is not
    configured yet (`alerts list` says so, its events wait)."""
    if channel.type == "email":
        try:
            mail.smtp_settings(dict(environ))
        except mail.MailError as exc:
            return f"channel {channel.name!r}: {exc}"
        return None
    checks = (
        ("URL", channel.url_env, url_problem),
        ("signing secret", channel.secret_env, signing_secret_problem),
        ("routing key", channel.routing_key_env, routing_key_problem),
    )
    for what, name, check in checks:
        value = environ.get(name) if name else None
        if value is not None and (problem := check(value)):
            return f"channel {channel.name!r}: {what} in ${name} {problem}"
    return None


def channel_problems(config: AlertConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """channel -> its problem, for every channel whose settings cannot be used."""
    found = {name: channel_problem(channel, environ) for name, channel in config.channels.items()}
    return {name: problem for name, problem in found.items() if problem}
