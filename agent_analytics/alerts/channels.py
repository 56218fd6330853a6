"""Sending one event to one channel: signed webhook, Slack, PagerDuty Events API v2, email.

URLs, keys and secrets are read from the environment when sending and checked first
(rules.channel_problem), so urllib never sees a value it would quote back in an exception.
Error texts name the failure, not the value, and pass through a redactor of the channel's
own secrets; the caller redacts every text again. `send` never raises: whatever goes wrong
is in the returned Attempt. Each send is one attempt with a timeout; retries and the
delivery log are in deliver.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from agent_analytics import mail
from agent_analytics.alerts import events as ev
from agent_analytics.alerts.rules import PAGERDUTY_EVENTS_URL, Channel, channel_problem
from agent_analytics.json_text import dumps
from agent_analytics.redaction import Redactor

PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "error": "error", "critical": "critical"}
USER_AGENT = "agent-analytics-alerts/1"


@dataclass(frozen=True)
class Attempt:
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float


class ChannelError(Exception):
    """One attempt failed; `status_code` is the HTTP answer when there was one."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


def signing_key(secret: str) -> bytes:
    """Standard Webhooks secrets look like `whsec_<base64>`; any other string is used as is."""
    if secret.startswith("whsec_"):
        return base64.b64decode(secret[len("whsec_"):])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (Standard Webhooks)."""
    digest = hmac.new(signing_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _env(environ: Mapping[str, str], name: str | None, channel: Channel) -> str:
    value = (environ.get(name) or "").strip() if name else ""
    if not value:
        raise ChannelError(f"channel {channel.name}: environment variable {name} is not set")
    return value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib follows a 301/302/303 answer to a POST with a GET without the body, whose 200
    would count as delivered: a receiver that moved is a failed attempt (HTTP 3xx) instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as error:
        raise ChannelError(f"HTTP {error.code}", error.code) from None
    except urllib.error.URLError as error:
        raise ChannelError(f"unreachable: {type(error.reason).__name__}: {error.reason}") from None
    except (TimeoutError, OSError) as error:
        raise ChannelError(f"unreachable: {type(error).__name__}: {error}") from None
    except http.client.HTTPException as error:
        # a receiver that does not speak HTTP (BadStatusLine, IncompleteRead, ...); its text is
        # whatever the receiver sent, so only the kind of failure is kept
        raise ChannelError(f"not an HTTP answer: {type(error).__name__}") from None


def _webhook(channel: Channel, event: dict, body: str, environ, timeout: float, now: float) -> int:
    url, secret = _env(environ, channel.url_env, channel), _env(environ, channel.secret_env, channel)
    timestamp = int(now)
    data = body.encode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event["id"],
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event["id"], timestamp, data),
    }
    return _post(url, data, headers, timeout)


def slack_message(event: dict) -> dict:
    """Slack incoming-webhook message: `text` (notifications) plus one section block."""
    lines = [f"*{ev.headline(event)}*"]
    lines += [f"• {key}: {value}" for key, value in event["data"].items()]
    lines.append(f"event id: `{event['id']}`")
    return {"text": ev.headline(event), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]}


def _slack(channel: Channel, event: dict, body: str, environ, timeout: float, now: float) -> int:
    url = _env(environ, channel.url_env, channel)
    return _post(url, dumps(slack_message(event)).encode(), {"Content-Type": "application/json"}, timeout)


def pagerduty_event(event: dict, routing_key: str) -> dict:
    """Events API v2: trigger (alert.triggered, reminders, tests) or resolve (alert.resolved),
    deduplicated on the episode id so a trigger and its resolve meet in one incident."""
    data = event["data"]
    dedup_key = data.get("episode_id") or event["id"]
    if event["event"] == ev.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": ev.headline(event)[:1024],
            "source": "agent-analytics",
            "severity": PAGERDUTY_SEVERITY.get(data.get("severity", "warning"), "warning"),
            "timestamp": data.get("fired_at") or event["created_at"],
            "component": data.get("scope", "all"),
            "group": data.get("metric", ""),
            "class": data.get("rule", ""),
            "custom_details": data,
        },
    }


def _pagerduty(channel: Channel, event: dict, body: str, environ, timeout: float, now: float) -> int:
    if event["event"] == ev.DAILY_SUMMARY:
        raise ChannelError(f"channel {channel.name}: PagerDuty takes alerts only")
    key = _env(environ, channel.routing_key_env, channel)
    url = (environ.get(channel.url_env) or "").strip() if channel.url_env else ""
    payload = dumps(pagerduty_event(event, key)).encode()
    return _post(url or PAGERDUTY_EVENTS_URL, payload, {"Content-Type": "application/json"}, timeout)


def _email(channel: Channel, event: dict, body: str, environ, timeout: float, now: float) -> None:
    try:
        settings = mail.smtp_settings(dict(environ))
    except mail.MailError as exc:
        raise ChannelError(f"channel {channel.name}: {exc}") from None
    if settings is None:
        raise ChannelError(f"channel {channel.name}: no mail server ({mail.HOST_VAR} is not set)")
    message = mail.build_message(settings.sender, list(channel.to), ev.headline(event)[:200], ev.details(event))
    message["X-Event-Id"] = event["id"]
    try:
        mail.send(settings, message, timeout_s=timeout)
    except mail.MailError as exc:
        raise ChannelError(str(exc)) from None
    return None


SENDERS = {"webhook": _webhook, "slack": _slack, "pagerduty": _pagerduty, "email": _email}


def send(channel: Channel, event: dict, body: str, environ: Mapping[str, str], timeout: float, clock=time.time) -> Attempt:
    """One attempt; never raises (every problem is in the Attempt)."""
    started = time.monotonic()
    problem = channel_problem(channel, environ)
    if problem:
        return Attempt(False, None, problem, 0.0)
    try:
        status = SENDERS[channel.type](channel, event, body, environ, timeout, clock())
    except ChannelError as exc:
        return Attempt(False, exc.status_code, str(exc), (time.monotonic() - started) * 1000)
    except Exception as exc:  # noqa: BLE001 - one channel's surprise must not stop the others
        redact = Redactor(environ.get(name) for name in channel.env_names)
        error = f"channel {channel.name}: {type(exc).__name__}: {redact(exc)}"
        return Attempt(False, None, error, (time.monotonic() - started) * 1000)
    if status is not None and not 200 <= status < 300:
        return Attempt(False, status, f"HTTP {status}", (time.monotonic() - started) * 1000)
    return Attempt(True, status, None, (time.monotonic() - started) * 1000)
