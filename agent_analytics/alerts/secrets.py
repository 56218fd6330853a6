"""Secrets stay out of logs, exceptions, Dagster metadata and tables.

Every URL, routing key, signing secret and the SMTP password come from the environment. A
`Redactor` (agent_analytics/redaction.py) knows their values, and the forms they take in
exception texts, and replaces each occurrence with `***`; every log line, error text and
metadata value the alerts code produces passes through one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from agent_analytics import mail
from agent_analytics.alerts.rules import AlertConfig
from agent_analytics.redaction import MASK, Redactor

__all__ = ["MASK", "Redactor", "redactor_for", "secret_values"]


def secret_values(config: AlertConfig | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of every variable the channels name, and the SMTP password."""
    env = os.environ if environ is None else environ
    names = list(config.env_names()) if config else []
    names.append(mail.PASSWORD_VAR)
    return [env[name] for name in names if env.get(name)]


def redactor_for(config: AlertConfig | None, environ: Mapping[str, str] | None = None) -> Redactor:
    return Redactor(secret_values(config, environ))
