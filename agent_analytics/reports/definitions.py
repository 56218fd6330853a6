"""Report definitions, read from a TOML settings file at run time.

The file is `AGENT_ANALYTICS_REPORTS` when set, else `<AGENT_ANALYTICS_HOME>/reports.toml`;
when neither exists, the defaults shipped in `default_reports.toml` (one daily, weekly and
monthly report of all agents, no recipients). See config/reports.example.toml.

    [[report]]
    name = "weekly-summary"            # folder under reports/: letters, digits, '-', '_'
    frequency = "weekly"               # daily | weekly | monthly
    recipients = ["ops@example.com"]   # may be empty: files are written, nothing is emailed
    format = "both"                    # pdf | csv | both
    agents = ["support"]               # optional: only these agents
    title = "Weekly analytics report"  # optional
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from agent_analytics.periods import FREQUENCIES
from agent_analytics.settings import Settings

REPORTS_VAR = "AGENT_ANALYTICS_REPORTS"
DEFAULTS = Path(__file__).with_name("default_reports.toml")
FORMATS = {"pdf": ("pdf",), "csv": ("csv",), "both": ("pdf", "csv")}
KEYS = {"name", "frequency", "recipients", "format", "agents", "title"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+")


class ReportConfigError(ValueError):
    """The report settings file is unusable; the message names the file, report and field."""


@dataclass(frozen=True)
class ReportDefinition:
    name: str
    frequency: str
    recipients: tuple[str, ...]
    formats: tuple[str, ...]
    agents: tuple[str, ...] | None
    title: str


def definitions_path(settings: Settings) -> Path:
    if os.environ.get(REPORTS_VAR):
        path = Path(os.environ[REPORTS_VAR]).expanduser()
        if not path.is_file():
            raise ReportConfigError(f"{REPORTS_VAR}={os.environ[REPORTS_VAR]!r}: no such file")
        return path
    own = settings.home / "reports.toml"
    return own if own.is_file() else DEFAULTS


def load_definitions(path: Path) -> list[ReportDefinition]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ReportConfigError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ReportConfigError(f"{path}: not valid TOML: {error}") from None
    entries = data.get("report", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ReportConfigError(f"{path}: reports are [[report]] tables")
    definitions = [_definition(path, i, entry) for i, entry in enumerate(entries, 1)]
    names = [d.name for d in definitions]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ReportConfigError(f"{path}: report name {duplicated[0]!r} is used twice")
    return definitions


def _definition(path: Path, index: int, entry: dict) -> ReportDefinition:
    where = f"{path}: report {index}"

    def fail(message: str) -> ReportConfigError:
        return ReportConfigError(f"{where}: {message}")

    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(KEYS))})")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise fail(f"name {name!r} must be 1-64 letters, digits, '-' or '_'")
    where = f"{path}: report {name!r}"
    frequency = entry.get("frequency")
    if frequency not in FREQUENCIES:
        raise fail(f"frequency {frequency!r} must be one of {', '.join(FREQUENCIES)}")
    recipients = entry.get("recipients", [])
    if not isinstance(recipients, list) or not all(isinstance(r, str) and EMAIL.fullmatch(r) for r in recipients):
        raise fail("recipients must be a list of email addresses")
    fmt = entry.get("format", "both")
    if fmt not in FORMATS:
        raise fail(f"format {fmt!r} must be one of {', '.join(FORMATS)}")
    agents = entry.get("agents")
    if agents is not None and (not isinstance(agents, list) or not agents or not all(isinstance(a, str) and a for a in agents)):
        raise fail("agents must be a non-empty list of agent ids (leave it out for all agents)")
    title = entry.get("title", f"{frequency.capitalize()} analytics report")
    if not isinstance(title, str) or not title.strip():
        raise fail("title must be text")
    return ReportDefinition(
        name=name,
        frequency=frequency,
        recipients=tuple(recipients),
        formats=FORMATS[fmt],
        agents=tuple(sorted(set(agents))) if agents else None,
        title=title.strip(),
    )
