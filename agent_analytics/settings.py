"""The one settings source, read at run time from the environment (never at import).

| variable                                    | default                     | meaning |
|---------------------------------------------|-----------------------------|----------|
| AGENT_ANALYTICS_HOME                        | ./analytics_home            | folder for landing/, raw/, warehouse, exports/, reports/ |
| AGENT_ANALYTICS_TZ                          | UTC                         | company time zone: days, weeks, months (a name both zoneinfo and DuckDB know) |
| AGENT_ANALYTICS_SESSION_TIMEOUT_MIN         | 30                          | session inactivity timeout, minutes |
| AGENT_ANALYTICS_CAPACITY_PER_MIN            | 500                         | request capacity (messages per minute) |
| AGENT_ANALYTICS_ERROR_RATE_THRESHOLDS       | 0.5,1,2                     | error rate % under which: Excellent, Good, Acceptable (else Poor) |
| AGENT_ANALYTICS_RESPONSE_TIME_THRESHOLDS_MS | 2000,4000,6000              | response time under which: Fast, Good, Acceptable (else Slow) |
| AGENT_ANALYTICS_UPTIME_HEALTHY_PCT          | 99.9                        | uptime % at or above which: Healthy (else Degraded) |
| AGENT_ANALYTICS_ALERT_RULES                 | <home>/alerts.toml          | alert rules file (docs/alerts.md) |
| AGENT_ANALYTICS_GOALS                       | <home>/goals.toml           | goals file (agent_analytics/goals.py; none when it does not exist) |
| AGENT_ANALYTICS_PRICES                      | <home>/prices.csv           | the company's prices file (agent_analytics/prices.py; none when it does not exist) |
| AGENT_ANALYTICS_EVENT_TIME_MIN              | 2000-01-01                  | earliest accepted occurred_at (UTC date); older events are quarantined |
| AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H      | 24                          | hours after the load an occurred_at may be; later ones are quarantined |
| AGENT_ANALYTICS_LANDING_QUIET_S             | 300                         | seconds a landing file that looks unfinished waits to be loaded or rejected |
| AGENT_ANALYTICS_BUILD_WAIT_S                | 1800                        | seconds a build waits for a running one before it gives up (exit 1) |
| AGENT_ANALYTICS_DUCKDB_MEMORY               | 40%                         | memory limit of the build and every DuckDB connection: a share of memory or a size (8GB); spills to <home>/duckdb_tmp |
| AGENT_ANALYTICS_DBT_THREADS                 | 1 per 4 GiB, <= cores, 1..4 | dbt threads of the build (they share the memory limit; fewer in a full build of many messages) |
| AGENT_ANALYTICS_MAX_BODY_MB                 | 16                          | largest request body `serve` accepts, in MB after decompression (413 above) |
| AGENT_ANALYTICS_OTEL_ORPHAN_AFTER_S         | 3600                        | seconds after which spans whose root span never arrived are quarantined (orphan span) |
| AGENT_ANALYTICS_BI_POSTGRES_URL             | (unset: off)                | postgresql://user:password@host:port/database the marts are published into for BI tools (never shown: it holds a password) |
| AGENT_ANALYTICS_BI_POSTGRES_SCHEMA          | analytics                   | the PostgreSQL schema a publication replaces whole (lowercase; not public, information_schema, pg_*) |
| AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS        | 5000000                     | tables with more rows are not published into PostgreSQL (BI tools read their Parquet file) |
| AGENT_ANALYTICS_RUN_RETENTION_DAYS          | 30                          | days Dagster keeps finished runs and their logs (job cleanup_old_runs) |
| AGENT_ANALYTICS_DOCUMENT_CACHE_S            | 300                         | seconds `serve` answers a metrics document again from the one it computed, while the data is unchanged (0: never) |
| AGENT_ANALYTICS_ENGINE                      | duckdb                      | where dbt builds the models: duckdb (the warehouse file) or spark (local Spark, the spark extra; docs/spark.md) |
| AGENT_ANALYTICS_BILL_MISMATCH_PCT           | 5                           | a provider bill differing from the estimate by more than this % of it is flagged (docs/bills.md) |
| AGENT_ANALYTICS_HASH_USER_IDS               | off                         | on: user ids in every output are replaced by a keyed hash (agent_analytics/user_ids.py) |
| AGENT_ANALYTICS_USER_ID_HASH_KEY            | (unset)                     | the secret key of that hash, at least 16 characters (never shown) |
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from agent_analytics import build_memory
from agent_analytics.timezones import is_known_zone

HOME_VAR = "AGENT_ANALYTICS_HOME"
TZ_VAR = "AGENT_ANALYTICS_TZ"
TIMEOUT_VAR = "AGENT_ANALYTICS_SESSION_TIMEOUT_MIN"
CAPACITY_VAR = "AGENT_ANALYTICS_CAPACITY_PER_MIN"
ERROR_THRESHOLDS_VAR = "AGENT_ANALYTICS_ERROR_RATE_THRESHOLDS"
RESPONSE_THRESHOLDS_VAR = "AGENT_ANALYTICS_RESPONSE_TIME_THRESHOLDS_MS"
UPTIME_VAR = "AGENT_ANALYTICS_UPTIME_HEALTHY_PCT"
ALERT_RULES_VAR = "AGENT_ANALYTICS_ALERT_RULES"
GOALS_VAR = "AGENT_ANALYTICS_GOALS"
PRICES_VAR = "AGENT_ANALYTICS_PRICES"
EVENT_TIME_MIN_VAR = "AGENT_ANALYTICS_EVENT_TIME_MIN"
EVENT_TIME_AHEAD_VAR = "AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H"
LANDING_QUIET_VAR = "AGENT_ANALYTICS_LANDING_QUIET_S"
# Bounds of the accepted-range settings themselves: every day the marts and the metrics layer
# derive from an accepted event (spines, previous periods, 30-day windows) stays inside the
# calendar Python and DuckDB share.
EARLIEST_ALLOWED = date(1970, 1, 1)
MAX_AHEAD_HOURS = 24 * 366
BUILD_WAIT_VAR = "AGENT_ANALYTICS_BUILD_WAIT_S"
MAX_BODY_VAR = "AGENT_ANALYTICS_MAX_BODY_MB"
ORPHAN_AFTER_VAR = "AGENT_ANALYTICS_OTEL_ORPHAN_AFTER_S"
RUN_RETENTION_VAR = "AGENT_ANALYTICS_RUN_RETENTION_DAYS"
DOCUMENT_CACHE_VAR = "AGENT_ANALYTICS_DOCUMENT_CACHE_S"
MAX_BODY_MB_LIMIT = 4096  # a body is held in memory whole: beyond this, a typo rather than a wish
BI_POSTGRES_URL_VAR = "AGENT_ANALYTICS_BI_POSTGRES_URL"
BI_POSTGRES_SCHEMA_VAR = "AGENT_ANALYTICS_BI_POSTGRES_SCHEMA"
BI_POSTGRES_MAX_ROWS_VAR = "AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS"
BI_POSTGRES_SCHEMA_DEFAULT = "analytics"
BI_POSTGRES_MAX_ROWS_DEFAULT = 5_000_000
ENGINE_VAR = "AGENT_ANALYTICS_ENGINE"
ENGINES = ("duckdb", "spark")  # the outputs of profiles.yml
BILL_MISMATCH_VAR = "AGENT_ANALYTICS_BILL_MISMATCH_PCT"
HASH_USER_IDS_VAR = "AGENT_ANALYTICS_HASH_USER_IDS"
USER_ID_HASH_KEY_VAR = "AGENT_ANALYTICS_USER_ID_HASH_KEY"
MIN_HASH_KEY_LENGTH = 16


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    home: Path
    company_tz: str
    session_timeout_minutes: int
    capacity_per_min: int = 500
    error_rate_thresholds_pct: tuple[float, float, float] = (0.5, 1.0, 2.0)
    response_time_thresholds_ms: tuple[float, float, float] = (2000.0, 4000.0, 6000.0)
    uptime_healthy_pct: float = 99.9
    alert_rules_file: Path | None = None  # None: <home>/alerts.toml
    goals_file: Path | None = None  # None: <home>/goals.toml
    prices_file: Path | None = None  # None: <home>/prices.csv
    event_time_min: date = date(2000, 1, 1)
    event_time_max_ahead_hours: float = 24.0
    landing_quiet_s: float = 300.0
    build_wait_s: float = 1800.0
    duckdb_memory: str = build_memory.DEFAULT_MEMORY
    dbt_threads: int = 1
    max_body_bytes: int = 16 * 1024 * 1024
    otel_orphan_after_s: float = 3600.0
    bi_postgres_url: str | None = field(default=None, repr=False)  # holds a password: kept out of every repr
    bi_postgres_schema: str = BI_POSTGRES_SCHEMA_DEFAULT
    bi_postgres_max_rows: int = BI_POSTGRES_MAX_ROWS_DEFAULT
    run_retention_days: float = 30.0
    document_cache_s: float = 300.0
    engine: str = "duckdb"
    bill_mismatch_pct: float = 5.0
    user_id_hash_key: str | None = field(default=None, repr=False)  # set: user ids are hashed in outputs (a secret)

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def alert_rules_path(self) -> Path:
        return self.alert_rules_file or self.home / "alerts.toml"

    @property
    def goals_path(self) -> Path:
        return self.goals_file or self.home / "goals.toml"

    @property
    def prices_path(self) -> Path:
        return self.prices_file or self.home / "prices.csv"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def spark_dir(self) -> Path:
        """Where a Spark build keeps its tables, metastore and logs."""
        return self.home / "spark"

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's working files of this home's builds: one folder per engine, so each records the
        model version its own tables were built under."""
        return self.home / "dbt_target" if self.engine == "duckdb" else self.spark_dir / "dbt_target"

    def ensure_dirs(self) -> None:
        from agent_analytics.prices import ensure_published

        for folder in (self.landing_dir, self.raw_dir, self.exports_dir, self.reports_dir, self.dagster_home):
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SettingsError(f"{HOME_VAR}={str(self.home)!r}: cannot create {folder}: {exc.strerror or exc}") from None
        ensure_published(self)  # the prices dbt reads (none until a build publishes the prices file)

    def env(self) -> dict[str, str]:
        """The variables that hand these settings to child processes (dbt, Dagster)."""
        return {
            HOME_VAR: str(self.home),
            TZ_VAR: self.company_tz,
            TIMEOUT_VAR: str(self.session_timeout_minutes),
            EVENT_TIME_MIN_VAR: self.event_time_min.isoformat(),
            EVENT_TIME_AHEAD_VAR: f"{self.event_time_max_ahead_hours:g}",
            build_memory.MEMORY_VAR: self.duckdb_memory,
            build_memory.THREADS_VAR: str(self.dbt_threads),
            ENGINE_VAR: self.engine,
            BILL_MISMATCH_VAR: f"{self.bill_mismatch_pct:g}",
            "DAGSTER_HOME": str(self.dagster_home),
        }


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    home = _home(env)
    tz = env.get(TZ_VAR) or "UTC"
    if not is_known_zone(tz):
        raise SettingsError(
            f"{TZ_VAR}={tz!r} is not a time zone both Python and DuckDB know (an IANA name, e.g. UTC, Europe/Berlin)"
        )
    raw_timeout = env.get(TIMEOUT_VAR) or "30"
    try:
        timeout = int(raw_timeout)
    except ValueError:
        timeout = 0
    if timeout <= 0:
        raise SettingsError(f"{TIMEOUT_VAR}={raw_timeout!r} must be a positive whole number of minutes")
    try:
        duckdb_memory, dbt_threads = build_memory.memory_limit(env), build_memory.dbt_threads(env)
    except build_memory.MemorySettingError as exc:
        raise SettingsError(str(exc)) from None
    return Settings(
        event_time_min=_event_time_min(env),
        event_time_max_ahead_hours=_event_time_ahead(env),
        landing_quiet_s=_numbers(env, LANDING_QUIET_VAR, "300", 1, allow_zero=True)[0],
        home=home,
        company_tz=tz,
        session_timeout_minutes=timeout,
        capacity_per_min=int(_numbers(env, CAPACITY_VAR, "500", 1)[0]),
        error_rate_thresholds_pct=_numbers(env, ERROR_THRESHOLDS_VAR, "0.5,1,2", 3),
        response_time_thresholds_ms=_numbers(env, RESPONSE_THRESHOLDS_VAR, "2000,4000,6000", 3),
        uptime_healthy_pct=_numbers(env, UPTIME_VAR, "99.9", 1)[0],
        alert_rules_file=_file(env, ALERT_RULES_VAR),
        goals_file=_file(env, GOALS_VAR),
        prices_file=_file(env, PRICES_VAR),
        build_wait_s=_numbers(env, BUILD_WAIT_VAR, "1800", 1)[0],
        duckdb_memory=duckdb_memory,
        dbt_threads=dbt_threads,
        max_body_bytes=_max_body_bytes(env),
        otel_orphan_after_s=_numbers(env, ORPHAN_AFTER_VAR, "3600", 1, allow_zero=True)[0],
        bi_postgres_url=_bi_postgres_url(env),
        bi_postgres_schema=_bi_postgres_schema(env),
        bi_postgres_max_rows=int(_numbers(env, BI_POSTGRES_MAX_ROWS_VAR, str(BI_POSTGRES_MAX_ROWS_DEFAULT), 1)[0]),
        run_retention_days=_numbers(env, RUN_RETENTION_VAR, "30", 1)[0],
        document_cache_s=_numbers(env, DOCUMENT_CACHE_VAR, "300", 1, allow_zero=True)[0],
        engine=_engine(env),
        bill_mismatch_pct=_numbers(env, BILL_MISMATCH_VAR, "5", 1, allow_zero=True)[0],
        user_id_hash_key=_user_id_hash_key(env),
    )


def _home(env) -> Path:
    raw = env.get(HOME_VAR) or "analytics_home"
    try:
        home = Path(raw).expanduser().resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: ~unknown-user, a symlink loop
        raise SettingsError(f"{HOME_VAR}={raw!r} is not a usable path: {exc}") from None
    if "\\" in str(home):  # DuckDB's file globs (the dbt sources) cannot match a backslash
        raise SettingsError(f"{HOME_VAR}={raw!r} holds a backslash; choose a path without one")
    # The nearest existing ancestor must be a folder, or every folder of the home fails to be made.
    for folder in (home, *home.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == home else f"is under {folder}, which is a file"
                raise SettingsError(f"{HOME_VAR}={raw!r} {where}, not a folder")
            break
    return home


def _file(env, name: str) -> Path | None:
    raw = (env.get(name) or "").strip()
    return Path(raw).expanduser().resolve() if raw else None


def _event_time_min(env) -> date:
    raw = (env.get(EVENT_TIME_MIN_VAR) or "2000-01-01").strip()
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        value = None
    if value is None or value < EARLIEST_ALLOWED or value > date.today():
        raise SettingsError(
            f"{EVENT_TIME_MIN_VAR}={raw!r} must be a date YYYY-MM-DD from {EARLIEST_ALLOWED} to today"
        )
    return value


def _event_time_ahead(env) -> float:
    hours = _numbers(env, EVENT_TIME_AHEAD_VAR, "24", 1, allow_zero=True)[0]
    if hours > MAX_AHEAD_HOURS:
        raise SettingsError(f"{EVENT_TIME_AHEAD_VAR}={hours:g} must be at most {MAX_AHEAD_HOURS} hours")
    return hours


def _max_body_bytes(env) -> int:
    megabytes = _numbers(env, MAX_BODY_VAR, "16", 1)[0]
    if megabytes > MAX_BODY_MB_LIMIT:
        raise SettingsError(f"{MAX_BODY_VAR}={megabytes:g} must be at most {MAX_BODY_MB_LIMIT} MB")
    return max(int(megabytes * 1024 * 1024), 1)


def _bi_postgres_url(env) -> str | None:
    raw = (env.get(BI_POSTGRES_URL_VAR) or "").strip()
    if not raw:
        return None
    if not raw.startswith(("postgresql://", "postgres://")):
        # the value itself is never quoted: it holds a password
        raise SettingsError(f"{BI_POSTGRES_URL_VAR} must be a postgresql://user:password@host:port/database URL "
                            "(its value is not shown: it may hold a password)")
    return raw


def _bi_postgres_schema(env) -> str:
    raw = (env.get(BI_POSTGRES_SCHEMA_VAR) or BI_POSTGRES_SCHEMA_DEFAULT).strip()
    # A publication replaces the schema whole: never one PostgreSQL or other software relies on.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,49}", raw) or raw.startswith("pg_") or raw in ("public", "information_schema"):
        raise SettingsError(f"{BI_POSTGRES_SCHEMA_VAR}={raw!r} must be a lowercase name of letters, digits and _ "
                            "(at most 50), not public, information_schema or pg_*: a publication replaces the schema whole")
    return raw


def _user_id_hash_key(env) -> str | None:
    """The key of the user-id hash when AGENT_ANALYTICS_HASH_USER_IDS is on, else None. The key
    itself never appears in an error."""
    raw = (env.get(HASH_USER_IDS_VAR) or "off").strip().lower()
    if raw in ("off", "0", "false", "no"):
        return None
    if raw not in ("on", "1", "true", "yes"):
        raise SettingsError(f"{HASH_USER_IDS_VAR}={env.get(HASH_USER_IDS_VAR)!r} must be on or off")
    key = env.get(USER_ID_HASH_KEY_VAR) or ""
    if len(key) < MIN_HASH_KEY_LENGTH:
        raise SettingsError(f"{HASH_USER_IDS_VAR} is on: {USER_ID_HASH_KEY_VAR} must be set to a secret of at least "
                            f"{MIN_HASH_KEY_LENGTH} characters ({'unset' if not key else 'too short'})")
    return key


def _engine(env) -> str:
    raw = (env.get(ENGINE_VAR) or "duckdb").strip()
    if raw not in ENGINES:
        raise SettingsError(f"{ENGINE_VAR}={raw!r} must be duckdb or spark")
    if raw == "spark":
        try:
            importlib.metadata.distribution("dbt-spark")
        except importlib.metadata.PackageNotFoundError:
            raise SettingsError(f"{ENGINE_VAR}=spark needs the spark extra: pip install -e '.[spark]' (docs/spark.md)") from None
    return raw


def _numbers(env, name: str, default: str, count: int, *, allow_zero: bool = False) -> tuple[float, ...]:
    """`count` positive (or zero), finite, increasing numbers from a comma-separated variable."""
    raw = env.get(name) or default
    try:
        values = tuple(float(part) for part in raw.split(","))
    except ValueError:
        values = ()
    low_ok = (lambda v: v >= 0) if allow_zero else (lambda v: v > 0)
    if (len(values) != count or not all(math.isfinite(v) and low_ok(v) for v in values)
            or list(values) != sorted(values)):
        kind = "non-negative" if allow_zero else "positive"
        what = f"a {kind} number" if count == 1 else f"{count} increasing {kind} numbers separated by commas"
        raise SettingsError(f"{name}={raw!r} must be {what}")
    return values
