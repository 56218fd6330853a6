"""Email over SMTP, configured only from the environment.

| variable                     | meaning                                              |
|------------------------------|------------------------------------------------------|
| AGENT_ANALYTICS_SMTP_HOST    | mail server host; when unset, nothing is emailed     |
| AGENT_ANALYTICS_SMTP_PORT    | port (default 587 with starttls, 465 with ssl, else 25) |
| AGENT_ANALYTICS_SMTP_USER    | login user (optional)                                |
| AGENT_ANALYTICS_SMTP_PASSWORD| login password (optional; never logged)              |
| AGENT_ANALYTICS_SMTP_TLS     | starttls (default), ssl or none                      |
| AGENT_ANALYTICS_SMTP_FROM    | sender address (default agent-analytics@<host>)      |

Errors raised here never contain the password: `MailError` carries the host, port and the
server's reply only.
"""

from __future__ import annotations

import mimetypes
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from agent_analytics.redaction import Redactor

HOST_VAR = "AGENT_ANALYTICS_SMTP_HOST"
PORT_VAR = "AGENT_ANALYTICS_SMTP_PORT"
USER_VAR = "AGENT_ANALYTICS_SMTP_USER"
PASSWORD_VAR = "AGENT_ANALYTICS_SMTP_PASSWORD"
TLS_VAR = "AGENT_ANALYTICS_SMTP_TLS"
FROM_VAR = "AGENT_ANALYTICS_SMTP_FROM"
TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class MailError(RuntimeError):
    """Sending failed; the message names the server and its answer, never a secret."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str
    sender: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_settings(environ: dict[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP settings of the environment, or None when no host is configured."""
    env = os.environ if environ is None else environ
    host = (env.get(HOST_VAR) or "").strip()
    if not host:
        return None
    tls = (env.get(TLS_VAR) or "starttls").strip().lower()
    if tls not in TLS_MODES:
        raise MailError(f"{TLS_VAR}={tls!r} must be one of {', '.join(TLS_MODES)}")
    raw_port = (env.get(PORT_VAR) or str(DEFAULT_PORTS[tls])).strip()
    if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        raise MailError(f"{PORT_VAR}={raw_port!r} must be a port number")
    if not host.isprintable() or " " in host:
        raise MailError(f"{HOST_VAR} contains whitespace or a control character")
    for name in (USER_VAR, PASSWORD_VAR):
        # smtplib sends the login as ASCII; anything else fails inside login() (value never shown)
        value = env.get(name) or ""
        if not value.isascii() or not value.isprintable():
            raise MailError(f"{name} must hold printable ASCII characters only")
    return SmtpSettings(
        host=host,
        port=int(raw_port),
        tls=tls,
        sender=(env.get(FROM_VAR) or f"agent-analytics@{host}").strip(),
        user=(env.get(USER_VAR) or None),
        password=(env.get(PASSWORD_VAR) or None),
    )


def build_message(
    sender: str, recipients: Sequence[str], subject: str, body: str, attachments: Sequence[Path] = (), html: str | None = None
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for path in attachments:
        kind, _ = mimetypes.guess_type(path.name)
        maintype, subtype = (kind or "application/octet-stream").split("/", 1)
        message.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return message


def send(settings: SmtpSettings, message: EmailMessage, timeout_s: float = 20.0) -> None:
    """Send one message; MailError with the server's answer on any failure."""
    try:
        if settings.tls == "ssl":
            client = smtplib.SMTP_SSL(settings.host, settings.port, timeout=timeout_s, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=timeout_s)
        with client:
            if settings.tls == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPResponseException as error:
        reason = _safe(_text(error.smtp_error), settings)
        raise MailError(f"mail server {settings.where} refused: {error.smtp_code} {reason}") from None
    except smtplib.SMTPRecipientsRefused as error:
        raise MailError(f"mail server {settings.where} refused every recipient: {', '.join(error.recipients)}") from None
    except (smtplib.SMTPException, OSError, ValueError) as error:
        reason = f"{type(error).__name__}: {_safe(str(error), settings)}"
        raise MailError(f"mail server {settings.where} unreachable or failed: {reason}") from None
    if refused:
        raise MailError(f"mail server {settings.where} refused recipients: {', '.join(sorted(refused))}")


def send_with_retries(
    settings: SmtpSettings,
    message: EmailMessage,
    attempts: int = 3,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """Send, retrying with exponential backoff; returns the attempt that succeeded.

    Raises the last MailError when every attempt failed.
    """
    for attempt in range(1, attempts + 1):
        try:
            send(settings, message)
            return attempt
        except MailError:
            if attempt == attempts:
                raise
            (sleep or time.sleep)(backoff_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _safe(text: str, settings: SmtpSettings) -> str:
    """`text` with the password masked (in every form it may be quoted), should a server or
    library ever echo it."""
    return Redactor([settings.password])(text)
