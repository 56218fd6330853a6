"""Secrets stay out of logs, exceptions, Dagster metadata and tables.

Every URL, routing key, signing secret and the SMTP password come from the environment. A
`Redactor` knows their values and replaces each occurrence with `***`; every log line,
error text and metadata value the alerts code produces passes through one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from agent_analytics import mail
from agent_analytics.alerts.rules import AlertConfig

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str | None] = ()):
        self._secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: object) -> str:
        result = str(text)
        for secret in self._secrets:
            result = result.replace(secret, MASK)
        return result

    def metadata(self, values: Mapping[str, object]) -> dict[str, object]:
        """Metadata with every string value redacted (numbers pass unchanged)."""
        return {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else self(v) for k, v in values.items()}


def secret_values(config: AlertConfig | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of every variable the channels name, and the SMTP password."""
    env = os.environ if environ is None else environ
    names = list(config.env_names()) if config else []
    names.append(mail.PASSWORD_VAR)
    return [env[name] for name in names if env.get(name)]


def redactor_for(config: AlertConfig | None, environ: Mapping[str, str] | None = None) -> Redactor:
    return Redactor(secret_values(config, environ))
