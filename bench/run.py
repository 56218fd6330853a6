"""The benchmark behind `make bench` (a benchmark, not a timed test).

Generates `--events` message events over `--days` days ending yesterday (UTC) plus the
health / queue / deployment events of those days, and one more day (today) to add later;
each of the `--days` files holds events of the whole period in random order (`--sorted`:
one time-sorted file per day), since nothing promises sorted input.
Then, on a fresh AGENT_ANALYTICS_HOME under `--workdir`, it times separately:

1. a bare DuckDB `read_ndjson` of the same files (declared columns): the reference; and,
   as a second reference, the same read followed by the Parquet writes of messages and LLM
   calls without any check (the least an ingest into a Parquet raw layer does);
2. ingest (`ingest_paths`) of the 30 files; target: at most 2x the bare read. With `--stream`
   (a period too large for the disk as JSONL: a year of a large company is
   `--events 100000000 --days 365 --stream`) each daily file is ingested as soon as it is
   generated and then deleted, and the bare-read references are skipped; runs of 50M events
   or more have their own targets (peak memory 12 GB, period query 3 s);
3. the first build: `dbt build` (models + dbt tests), the Great Expectations suites, the
   30-day exports; target: at most 90 s together;
4. one more day: ingest of its file, then the incremental dbt build + checks + exports;
   target: at most 15 s for the build;
5. `agent-analytics build` end to end through Dagster with no new data (informational);
6. after the first build, the HTTP service (`bench/service_bench.py`, one `agent-analytics
   serve` process on the bench home): `POST /v1/events` from 8 clients in 1,000-event batches
   (target: at least 50,000 events/s accepted, which is durable), `POST /v1/traces` in spans/s,
   `agent-analytics ingest` of files the service wrote, as written and joined in one file
   (informational), and the latency of `POST /v1/analytics/export` for 30d JSON on the whole
   warehouse (target: p95 at most 2 s); then the dashboard (`bench/webapp_bench.py`): 20 first
   loads and 20 period changes in chromium, timed in the page (target: p95 at most 2 s each).

Every step runs in its own process; its peak memory is the larger of the sampled RSS
of its whole process tree (/proc, every 0.2 s) and the kernel's maximum RSS of the
largest process (wait4); its CPU time (user + system, whole tree, from wait4) is reported
too, as on a shared 2-core machine it moves less with other load than wall time does.
Target: at most 6 GB for every pipeline step. The disk used under the home is reported after
the ingest, the first build and +1 day.

Results: a table on stdout and `<workdir>/results.json`; step logs in `<workdir>/logs/`.
Generated data and the warehouse are deleted at the end unless `--keep` is given
(then a rerun with the same arguments on the same day reuses the generated files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from agent_analytics.sql import literal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = Path("/tmp/agent_analytics_bench")
GB = 1024**3
PAGE = os.sysconf("SC_PAGE_SIZE")

TARGET_INGEST_RATIO = 2.0
TARGET_FIRST_BUILD_S = 90.0
TARGET_ONE_MORE_DAY_S = 15.0
TARGET_PUBLISH_SHARE = 0.10  # the serving copy's DuckDB + Parquet publication, of the +1 day build
TARGET_PEAK_GB = 6.0
TARGET_QUERY_S = 2.0
# A year of a large company (`--events 100000000 --days 365 --stream`) has targets of its own.
LARGE_EVENTS = 50_000_000
TARGET_PEAK_GB_LARGE = 12.0
TARGET_QUERY_S_LARGE = 3.0

# The contract fields with their types; nested arrays stay JSON (docs/events.md).
BARE_COLUMNS = {
    "event_id": "VARCHAR", "type": "VARCHAR", "occurred_at": "TIMESTAMPTZ",
    "user_id": "VARCHAR", "agent_id": "VARCHAR", "agent_name": "VARCHAR", "agent_version": "VARCHAR",
    "conversation_id": "VARCHAR", "status": "VARCHAR", "error_type": "VARCHAR", "response_time_ms": "DOUBLE",
    "llm_calls": "JSON", "tool_calls": "JSON",
    "component": "VARCHAR", "is_up": "BOOLEAN", "latency_ms": "DOUBLE",
    "queue": "VARCHAR", "depth": "BIGINT", "description": "VARCHAR",
}


# --------------------------------------------------------------------------- memory


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants (shared pages counted per process)."""
    children = _parent_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(children.get(pid, []))
    return total


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


# --------------------------------------------------------------------------- running a step


class Bench:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.steps: dict[str, dict] = {}
        self.disk: dict[str, float] = {}  # GB under the home at named points

    def run(self, key: str, label: str, cmd: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> dict:
        """Run one step as a child process: wall time, peak tree RSS, exit code, its result."""
        result_path = self.logs / f"{key}.result.json"
        result_path.unlink(missing_ok=True)
        log_path = self.logs / f"{key}.log"
        print(f"  {label} ...", end="", flush=True)
        with open(log_path, "w") as log:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=cwd, env=env or self.env, stdout=log, stderr=subprocess.STDOUT)
            sampler = RssSampler(proc.pid)
            sampler.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except BaseException:  # stopped (SIGTERM, Ctrl-C): stop the step before cleaning up
                proc.terminate()
                proc.wait()
                sampler.stop()
                raise
            wall = time.perf_counter() - start
            sampled = sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        step = {
            "label": label,
            "wall_s": round(wall, 2),
            "peak_rss_gb": round(max(sampled, usage.ru_maxrss * 1024) / GB, 2),
            "max_process_rss_gb": round(usage.ru_maxrss * 1024 / GB, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "load_avg_1m_after": round(os.getloadavg()[0], 2),
            "exit_code": proc.returncode,
            "log": str(log_path),
        }
        if result_path.exists():
            step["result"] = json.loads(result_path.read_text())
        # Python steps time their own work (without interpreter start-up); dbt is timed whole.
        step["seconds"] = step.get("result", {}).get("seconds", step["wall_s"])
        step["ok"] = proc.returncode == 0 and step.get("result", {}).get("ok", True)
        self.steps[key] = step
        print(f" {step['seconds']:.1f} s, peak {step['peak_rss_gb']:.2f} GB{'' if step['ok'] else '  FAILED'}", flush=True)
        if not step["ok"]:
            tail = log_path.read_text(errors="replace").splitlines()[-25:]
            print("    " + "\n    ".join(tail), file=sys.stderr)
        return step

    def py(self, key: str, label: str, step: str | None = None, **kwargs) -> dict:
        """Run STEPS[step] (default: the last part of `key`) in a child Python."""
        result_path = self.logs / f"{key}.result.json"
        cmd = [sys.executable, "-m", "bench.run", "--step", step or key.split(".")[-1],
               "--step-args", json.dumps(kwargs, default=str), "--step-result", str(result_path)]
        return self.run(key, label, cmd)

    def dbt(self, key: str, label: str, command: str, target: Path, extra: tuple[str, ...] = (),
            threads: int | None = None) -> dict:
        """dbt `command` as the build runs it; `threads` overrides the settings' dbt threads."""
        from agent_analytics.build_memory import THREADS_VAR
        from orchestration.defs.dbt.project import DBT_PROJECT_DIR, PROFILES_DIR, dbt_executable

        cmd = [dbt_executable(), command, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(PROFILES_DIR),
               "--target-path", str(target), "--log-path", str(self.workdir / "dbt" / "logs"), *extra]
        if command == "build":
            (target / "run_results.json").unlink(missing_ok=True)  # never report an earlier build's timings
        env = self.env if threads is None else {**self.env, THREADS_VAR: str(threads)}
        step = self.run(key, label, cmd, cwd=DBT_PROJECT_DIR, env=env)
        step["dbt_threads"] = int(env[THREADS_VAR])
        if command == "build":
            step["dbt"] = summarize_run_results(target / "run_results.json", self.logs / f"{key}.run_results.json")
        return step


def summarize_run_results(path: Path, keep_as: Path) -> dict:
    """Per-node timings of a dbt build: status counts, totals, the slowest models and tests."""
    if not path.exists():
        return {}
    shutil.copyfile(path, keep_as)
    data = json.loads(path.read_text())
    nodes = [
        {"node": r["unique_id"].split(".", 2)[-1], "type": r["unique_id"].split(".")[0], "status": r["status"],
         "seconds": round(r.get("execution_time") or 0.0, 2)}
        for r in data.get("results", [])
    ]
    statuses: dict[str, int] = {}
    for n in nodes:
        statuses[n["status"]] = statuses.get(n["status"], 0) + 1
    models = sorted((n for n in nodes if n["type"] == "model"), key=lambda n: -n["seconds"])
    tests = sorted((n for n in nodes if n["type"] in ("test", "unit_test")), key=lambda n: -n["seconds"])
    return {
        "elapsed_s": round(data.get("elapsed_time") or 0.0, 2),
        "statuses": statuses,
        "model_seconds_sum": round(sum(n["seconds"] for n in models), 2),
        "test_seconds_sum": round(sum(n["seconds"] for n in tests), 2),
        "models": models,
        "slowest_tests": tests[:8],
        "failures": [n for n in nodes if n["status"] not in ("success", "pass")],
    }


# --------------------------------------------------------------------------- child steps


def _settings():
    from agent_analytics.settings import load_settings

    return load_settings()


def _built_marts(settings):
    """The marts of the last build, as the product's readers open them: the warehouse's own
    tables, or views over the Spark tables with AGENT_ANALYTICS_ENGINE=spark."""
    from agent_analytics.spark_marts import open_built_marts

    return open_built_marts(settings)


def step_generate(a: dict) -> dict:
    from agent_analytics.synthetic_events import generate

    out = Path(a["out"])
    start = time.perf_counter()
    r = generate(out, a["events"], a["days"], a["seed"], end=date.fromisoformat(a["end"]), unsorted=a["unsorted"])
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in r.files)
    return {"seconds": round(seconds, 2), "files": len(r.files), "bytes": size, "gb": round(size / GB, 2),
            "message_events": r.message_events, "other_events": r.other_events, "malformed_lines": r.malformed_lines,
            "duplicate_lines": r.duplicate_lines, "late_lines": r.late_lines}


def _bare_read(con, glob: str) -> float:
    """`read_ndjson` of the files into the table `t` (declared columns); returns the seconds."""
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in BARE_COLUMNS.items()) + "}"
    con.execute("set TimeZone = 'UTC'")
    start = time.perf_counter()
    con.execute(f"create table t as select * from read_ndjson({literal(glob)}, columns = {columns}, ignore_errors = true)")
    return time.perf_counter() - start


def step_bare(a: dict) -> dict:
    import duckdb

    con = duckdb.connect()
    try:
        seconds = _bare_read(con, a["glob"])
        rows = con.execute("select count(*) from t").fetchone()[0]
    finally:
        con.close()
    return {"seconds": round(seconds, 2), "rows": rows}


def step_floor(a: dict) -> dict:
    """The least any ingest with a Parquet raw layer does: the bare read, then the Parquet
    writes of the two large tables (messages, and LLM calls unnested), with no validation,
    no line numbers, no duplicate check and no pricing. A reference for the ingest target."""
    import duckdb

    calls = '[{"provider": "VARCHAR", "model": "VARCHAR", "input_tokens": "BIGINT", "output_tokens": "BIGINT", ' \
            '"cache_read_tokens": "BIGINT", "cost_usd": "DOUBLE", "latency_ms": "DOUBLE"}]'
    out = Path(a["out"])
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        start = time.perf_counter()
        read = _bare_read(con, a["glob"])
        con.execute(f"""copy (select * exclude (llm_calls, tool_calls) from t where type = 'message')
                        to {literal(out / "messages.parquet")} (format parquet, compression zstd)""")
        con.execute(f"""copy (select event_id, occurred_at, unnest(from_json(llm_calls, '{calls}'), recursive := true)
                        from t where type = 'message')
                        to {literal(out / "llm_calls.parquet")} (format parquet, compression zstd)""")
        seconds = time.perf_counter() - start
    finally:
        con.close()
        shutil.rmtree(out, ignore_errors=True)
    return {"seconds": round(seconds, 2), "read_s": round(read, 2), "write_s": round(seconds - read, 2)}


def step_ingest(a: dict) -> dict:
    from ingestion.load import ingest_paths
    from ingestion.validate import AcceptedTimes

    settings = _settings()
    settings.ensure_dirs()
    start = time.perf_counter()
    # the accepted event times of the settings, as `agent-analytics ingest` passes them
    results = ingest_paths([Path(p) for p in a["paths"]], settings.warehouse_path, settings.raw_dir,
                           accepted=AcceptedTimes.of(settings))
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "files": len(results), "lines": sum(r.lines for r in results),
            "loaded": sum(r.loaded for r in results), "duplicates": sum(r.duplicates for r in results),
            "quarantined": sum(r.quarantined for r in results)}


def step_stream(a: dict) -> dict:
    """Generate the period one daily file at a time, ingest each file as it is written and
    delete it (`--stream`): a period too large to sit on disk as JSONL. `seconds` is the
    ingest time alone; the generation time is `generate_s`."""
    from agent_analytics.synthetic_events import generate
    from ingestion.load import ingest_paths
    from ingestion.validate import AcceptedTimes

    settings = _settings()
    settings.ensure_dirs()
    counts = {"files": 0, "bytes": 0, "lines": 0, "loaded": 0, "duplicates": 0, "quarantined": 0}
    ingest_s = 0.0

    def load(path: Path) -> None:
        nonlocal ingest_s
        counts["files"] += 1
        counts["bytes"] += path.stat().st_size
        start = time.perf_counter()
        results = ingest_paths([path], settings.warehouse_path, settings.raw_dir, accepted=AcceptedTimes.of(settings))
        ingest_s += time.perf_counter() - start
        path.unlink()
        for name in ("lines", "loaded", "duplicates", "quarantined"):
            counts[name] += sum(getattr(r, name) for r in results)

    start = time.perf_counter()
    r = generate(Path(a["out"]), a["events"], a["days"], a["seed"], end=date.fromisoformat(a["end"]), on_file=load)
    total = time.perf_counter() - start
    return {"seconds": round(ingest_s, 2), "generate_s": round(total - ingest_s, 2), **counts,
            "gb": round(counts["bytes"] / GB, 2), "message_events": r.message_events,
            "events_per_s": round(counts["lines"] / ingest_s) if ingest_s else None}


def step_checks(a: dict) -> dict:
    from orchestration.defs.quality.suites import SUITES, validate

    settings = _settings()
    start = time.perf_counter()
    suites = {}
    for table, (query, suite) in SUITES.items():
        with _built_marts(settings) as con:
            df = con.execute(query).df()
        r = validate(df, suite, table)
        suites[table] = {"rows": len(df), "success": r.success, "evaluated": r.evaluated, "failed": r.failed}
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "ok": all(s["success"] for s in suites.values()), "suites": suites}


def step_exports(a: dict) -> dict:
    """The daily CSV and the full JSON for the 30 days ending `end`, from one metrics document,
    as the Dagster export asset makes them."""
    from agent_analytics.exports import to_csv, to_json
    from agent_analytics.metrics import MetricsRequest, compute_metrics
    from agent_analytics.periods import parse_as_of, parse_period

    settings = _settings()
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    end = date.fromisoformat(a["end"])
    as_of = parse_as_of(end.isoformat(), settings.company_tz)
    period = parse_period("30d", None, None, None, as_of, settings.company_tz)
    start = time.perf_counter()
    with _built_marts(settings) as con:
        document = compute_metrics(con, MetricsRequest(period=period, agents=None, as_of=as_of), settings)
    (settings.exports_dir / "daily.csv").write_text(to_csv(document))
    (settings.exports_dir / "analytics.json").write_text(to_json(document))
    seconds = time.perf_counter() - start
    daily = document["daily"]
    return {"seconds": round(seconds, 2), "period": document["period"],
            "daily_rows": len(daily), "messages": document["performance"]["messages"],
            "dau_last_day": daily[-1]["dau"] if daily else None, "mau_last_day": daily[-1]["mau"] if daily else None}


def step_dashboard(a: dict) -> dict:
    """The five dashboard pages and the index, as the `dashboard` asset writes them, at the end of day `end`."""
    from agent_analytics.periods import parse_as_of
    from agent_analytics.reports.produce import write_dashboard

    settings = _settings()
    start = time.perf_counter()
    index = write_dashboard(settings, now=parse_as_of(a["end"], settings.company_tz))
    return {"seconds": round(time.perf_counter() - start, 2), "pages": len(list(index.parent.glob("*.html")))}


def step_queries(a: dict) -> dict:
    """Single period queries of the metrics layer (the full JSON document each), timed one by one."""
    from agent_analytics.metrics import MetricsRequest, compute_metrics
    from agent_analytics.periods import parse_as_of, parse_period

    settings = _settings()
    end = date.fromisoformat(a["end"])
    tz = settings.company_tz
    as_of = parse_as_of(end.isoformat(), tz)
    cases = {
        "week": parse_period("week", None, None, None, as_of, tz),
        "month (30d)": parse_period("month", None, None, None, as_of, tz),
        f"calendar month {end:%Y-%m}": parse_period(None, None, None, f"{end:%Y-%m}", as_of, tz),
        "today": parse_period("today", None, None, None, as_of, tz),
    }
    timings = {}
    with _built_marts(settings) as con:
        for label, period in cases.items():
            t0 = time.perf_counter()
            compute_metrics(con, MetricsRequest(period=period, agents=None, as_of=as_of), settings)
            timings[label] = round(time.perf_counter() - t0, 2)
    return {"seconds": max(timings.values()), "per_query_s": timings}


def step_dagster(a: dict) -> dict:
    from orchestration.build import run_build

    start = time.perf_counter()
    ok = run_build(_settings())
    return {"seconds": round(time.perf_counter() - start, 2), "ok": ok}


def step_publish(a: dict) -> dict:
    """One publication of the serving copy, as the serving asset makes it (`publish_all`),
    timed by part: the day fingerprints, then the DuckDB file and the Parquet set (written at
    once); and (`postgres`, when Debian's server binaries are here) the PostgreSQL schema from
    the DuckDB file, into a server started for the step on 127.0.0.1 (tests/postgres_server.py)."""
    from agent_analytics.serving import publish_all
    from agent_analytics.spark_marts import open_spark_marts
    from agent_analytics.warehouse import open_warehouse

    settings = _settings()
    times: dict[str, float] = {}
    start = time.perf_counter()
    # as the serving asset reads the marts (orchestration/defs/serving/definitions.py)
    built = open_spark_marts(settings) if settings.engine == "spark" else open_warehouse(
        settings.warehouse_path, read_only=True, memory_limit=settings.duckdb_memory)
    with built as con:
        publication = publish_all(con, settings, timings=times)
    result = {"seconds": round(time.perf_counter() - start, 2), **{k: round(v, 2) for k, v in times.items()},
              "rows": sum(publication.row_counts.values())}
    if a.get("postgres"):
        result["postgres"] = _publish_postgres(settings)
    return result


def _publish_postgres(settings) -> dict:
    sys.path.insert(0, str(REPO / "tests"))  # the tests' throwaway server: initdb on a temporary folder
    from postgres_server import postgres_bin, running_postgres

    from agent_analytics.serving import serving_database
    from agent_analytics.serving.postgres import publish_to_postgres

    if postgres_bin() is None:
        return {"skipped": "no initdb (Debian's postgresql package) on this machine"}
    with running_postgres() as server:
        start = time.perf_counter()
        publication = publish_to_postgres(serving_database(settings), server.url(), "analytics",
                                          max_rows=settings.bi_postgres_max_rows)
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "max_rows": settings.bi_postgres_max_rows,
            "rows": sum(t.rows for t in publication.tables if t.in_schema), "left_to_parquet": list(publication.skipped)}


STEPS = {"generate": step_generate, "bare": step_bare, "floor": step_floor, "ingest": step_ingest,
         "checks": step_checks, "exports": step_exports, "queries": step_queries, "dagster": step_dagster,
         "dashboard": step_dashboard, "publish": step_publish, "stream": step_stream}


# --------------------------------------------------------------------------- the benchmark


def _generate(bench: Bench, key: str, label: str, out: Path, events: int, days: int, seed: int, end: date,
              unsorted: bool) -> dict:
    """Generate into `out`, or reuse what an earlier --keep run generated with the same arguments."""
    params = {"events": events, "days": days, "seed": seed, "end": end.isoformat(), "unsorted": unsorted}
    stamp = out / ".bench-params.json"
    if stamp.exists() and json.loads(stamp.read_text()).get("params") == params:
        step = json.loads(stamp.read_text())["step"]
        step["reused"] = True
        bench.steps[key] = step
        print(f"  {label}: reusing {out} (generated earlier in {step['seconds']:.1f} s)")
        return step
    shutil.rmtree(out, ignore_errors=True)
    step = bench.py(key, label, step="generate", out=str(out), events=events, days=days, seed=seed, end=end.isoformat(),
                    unsorted=unsorted)
    if step["ok"]:
        stamp.write_text(json.dumps({"params": params, "step": step}))
    return step


def _disk_gb(folder: Path) -> float:
    """The bytes of the files under `folder` (hard links once), in GB."""
    seen, total = set(), 0
    for root, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return round(total / GB, 2)


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def report(bench: Bench, meta: dict) -> dict:
    s = bench.steps

    def sec(key: str) -> float | None:
        return s[key]["seconds"] if key in s else None

    def total(*keys: str) -> float | None:
        values = [sec(k) for k in keys]
        return None if any(v is None for v in values) else round(sum(values), 2)

    def peak(*keys: str) -> float | None:
        values = [s[k]["peak_rss_gb"] for k in keys if k in s]
        return max(values) if values else None

    large = meta["events"] >= LARGE_EVENTS
    peak_target = TARGET_PEAK_GB_LARGE if large else TARGET_PEAK_GB
    query_target = TARGET_QUERY_S_LARGE if large else TARGET_QUERY_S
    ratio = round(sec("ingest") / sec("bare"), 2) if sec("ingest") and sec("bare") else None
    streamed = s.get("ingest", {}).get("result", {}) if meta.get("stream") else {}
    first = total("first.dbt", "first.checks", "first.exports")
    more = total("more.dbt", "more.checks", "more.exports")
    more_all = total("more.ingest", "more.dbt", "more.checks", "more.exports")
    pipeline = ["ingest", "first.dbt", "first.checks", "first.exports", "more.ingest", "more.dbt", "more.checks",
                "more.exports", "dagster"]
    pipeline_peak = peak(*pipeline)
    gen = s.get("generate", {}).get("result", {})

    def row(what, seconds=None, peak_gb=None, value="", target="", ok=None, keys=(), cpu=None):
        status = "" if ok is None else ("PASS" if ok else "MISS")
        if any(k in s and not s[k]["ok"] for k in keys):
            status = "FAILED"  # a step that failed has no meaningful time
        if cpu is None and any(k in s for k in keys):
            cpu = round(sum(s[k]["cpu_s"] for k in keys if k in s), 1)
        return {"what": what, "seconds": seconds, "cpu_s": cpu, "peak_gb": peak_gb, "value": value, "target": target,
                "status": status}

    rows = [
        row(f"generate {meta['days']} days (setup)", sec("generate"), peak("generate"),
            f"{gen.get('gb', '?')} GB, {gen.get('message_events', 0):,} messages", keys=["generate"]),
        row("generate, streamed between the ingests (setup)", streamed.get("generate_s"), None,
            f"{streamed.get('gb', '?')} GB, {streamed.get('message_events', 0):,} messages", keys=[]),
        row("generate 1 more day (setup)", sec("extra"), peak("extra"),
            f"{s.get('extra', {}).get('result', {}).get('message_events', 0):,} messages", keys=["extra"]),
        row("bare DuckDB read_ndjson (reference)", sec("bare"), peak("bare"),
            f"{s.get('bare', {}).get('result', {}).get('rows', 0):,} rows", keys=["bare"]),
        row("bare read + 2 Parquet writes, no checks (reference)", sec("floor"), peak("floor"),
            f"{round(sec('floor') / sec('bare'), 2)}x bare" if sec("floor") and sec("bare") else "", keys=["floor"]),
        row("ingest", sec("ingest"), peak("ingest"),
            f"{ratio}x bare" if ratio else (f"{streamed['events_per_s']:,} lines/s" if streamed.get("events_per_s") else ""),
            "" if ratio is None else f"<= {TARGET_INGEST_RATIO:g}x bare", None if ratio is None else ratio <= TARGET_INGEST_RATIO,
            keys=["bare", "ingest"]),
        row("first build: dbt build (models + tests)", sec("first.dbt"), peak("first.dbt"), keys=["first.dbt"]),
        row("first build: GX checks", sec("first.checks"), peak("first.checks"), keys=["first.checks"]),
        row("first build: exports (CSV + JSON, 30d)", sec("first.exports"), peak("first.exports"),
            keys=["first.exports"]),
        row("first build: whole (dbt + checks + exports)", first, peak("first.dbt", "first.checks", "first.exports"),
            "", f"<= {TARGET_FIRST_BUILD_S:g} s", None if first is None else first <= TARGET_FIRST_BUILD_S,
            keys=["first.dbt", "first.checks", "first.exports"]),
        row("  (first build incl. ingest)", total("ingest", "first.dbt", "first.checks", "first.exports"),
            keys=["ingest", "first.dbt", "first.checks", "first.exports"]),
        row("slowest single period query (full JSON)", sec("queries"), peak("queries"),
            ", ".join(f"{k} {v}s" for k, v in s.get("queries", {}).get("result", {}).get("per_query_s", {}).items())[:28],
            f"<= {query_target:g} s", None if sec("queries") is None else sec("queries") <= query_target,
            keys=["queries"]),
        *service_rows(s.get("service"), row),
        *webapp_rows(s.get("webapp"), row),
        row("+1 day: ingest", sec("more.ingest"), peak("more.ingest"), keys=["more.ingest"]),
        row("+1 day: dbt build (incremental)", sec("more.dbt"), peak("more.dbt"), keys=["more.dbt"]),
        row("+1 day: GX checks", sec("more.checks"), peak("more.checks"), keys=["more.checks"]),
        row("+1 day: exports", sec("more.exports"), peak("more.exports"), keys=["more.exports"]),
        row("+1 day: build (dbt + checks + exports)", more, peak("more.dbt", "more.checks", "more.exports"),
            "", f"<= {TARGET_ONE_MORE_DAY_S:g} s", None if more is None else more <= TARGET_ONE_MORE_DAY_S,
            keys=["more.dbt", "more.checks", "more.exports"]),
        row("+1 day: incl. its ingest", more_all, None, "", f"<= {TARGET_ONE_MORE_DAY_S:g} s",
            None if more_all is None else more_all <= TARGET_ONE_MORE_DAY_S,
            keys=["more.ingest", "more.dbt", "more.checks", "more.exports"]),
        *publish_rows(s, more, row),
        row("dashboard: 5 pages (after the first build)", sec("first.dashboard"), peak("first.dashboard"),
            "informational", keys=["first.dashboard"]),
        row("dashboard: 5 pages (after +1 day)", sec("more.dashboard"), peak("more.dashboard"),
            "informational", keys=["more.dashboard"]),
        row("agent-analytics build via Dagster, no new data", sec("dagster"), peak("dagster"), keys=["dagster"]),
        row("peak memory, any pipeline step", None, pipeline_peak,
            "" if all(k in s and s[k]["ok"] for k in pipeline[:-1]) else "(incomplete run)", f"<= {peak_target:g} GB",
            None if pipeline_peak is None else pipeline_peak <= peak_target),
    ]
    rows = [r for r in rows if r["seconds"] is not None or r["peak_gb"] is not None]

    print()
    header = f"{'step':<48} {'time':>9} {'CPU':>8} {'peak RSS':>9}  {'':<28} {'target':<15} {'':<4}"
    print(header)
    print("-" * len(header))
    for r in rows:
        mem = "" if r["peak_gb"] is None else f"{r['peak_gb']:.2f} GB"
        cpu = "" if r["cpu_s"] is None else f"{r['cpu_s']:.0f} s"
        print(f"{r['what']:<48} {_fmt_s(r['seconds']) if r['seconds'] is not None else '':>9} {cpu:>8} {mem:>9}  "
              f"{r['value']:<28} {r['target']:<15} {r['status']}")
    for key, label in (("first.dbt", "first dbt build"), ("more.dbt", "+1 day dbt build")):
        dbt = s.get(key, {}).get("dbt")
        if dbt:
            threads = s[key].get("dbt_threads", meta.get("dbt_threads"))
            print(f"\n{label}: dbt elapsed {dbt['elapsed_s']} s, statuses {dbt['statuses']}, "
                  f"models {dbt['model_seconds_sum']} s + tests {dbt['test_seconds_sum']} s ({threads} dbt "
                  f"threads, memory_limit {meta.get('duckdb_memory')}); slowest models:")
            for m in dbt["models"][:6]:
                print(f"    {m['seconds']:>7.2f} s  {m['node']}")
            for t in dbt["slowest_tests"][:3]:
                print(f"    {t['seconds']:>7.2f} s  {t['node']} (test)")
            for f in dbt["failures"]:
                print(f"    {f['status'].upper()}: {f['node']}")
    if bench.disk:
        print("\ndisk under the home: " + ", ".join(f"{gb:.2f} GB {when}" for when, gb in bench.disk.items()))
    return {"meta": meta, "table": rows, "steps": s, "disk_gb": bench.disk}


def publish_rows(s: dict, more: float | None, row) -> list[dict]:
    """The serving copy's publications: whole after the first build (and PostgreSQL), the days
    changed after +1 day, against TARGET_PUBLISH_SHARE of the +1 day build."""
    def parts(key: str) -> str:
        r = s.get(key, {}).get("result", {})
        return f"DuckDB {r.get('duckdb_s', '?')} s, Parquet {r.get('parquet_s', '?')} s" if r else ""

    rows = [row("serving copy, whole (DuckDB file + Parquet)", s[key]["seconds"], s[key]["peak_rss_gb"], parts(key),
                "informational", keys=[key]) for key in ("first.publish", "first.publish2") if key in s]
    postgres = s.get("first.publish", {}).get("result", {}).get("postgres")
    if postgres:
        value = postgres.get("skipped") or (f"{postgres['rows']:,} rows; to Parquet: {', '.join(postgres['left_to_parquet'])}"
                                            if postgres["left_to_parquet"] else f"{postgres['rows']:,} rows, every table")
        rows.append(row("serving copy, PostgreSQL schema (whole)", postgres.get("seconds"), None, value[:28],
                        "informational", keys=["first.publish"], cpu=0.0))
    if "more.publish" in s:
        seconds = s["more.publish"]["seconds"]
        share = None if more is None else seconds / more
        rows.append(row("+1 day: serving copy (days changed)", seconds, s["more.publish"]["peak_rss_gb"],
                        f"{parts('more.publish')}; {share:.0%} of +1 day" if share is not None else parts("more.publish"),
                        f"<= {TARGET_PUBLISH_SHARE:.0%} of +1 day", None if share is None else share <= TARGET_PUBLISH_SHARE,
                        keys=["more.publish"]))
    return rows


def service_rows(step: dict | None, row) -> list[dict]:
    """The HTTP service's rows (bench/service_bench.py). CPU: the server's plus the clients' during
    each burst of requests, the command's for each CLI ingest, the server's per request for the export."""
    from bench.service_bench import TARGET_EVENTS_PER_S, TARGET_EXPORT_P95_S

    if step is None:
        return []
    r = step.get("result")
    if not r:
        return [row("HTTP service (bench/service_bench.py)", step["seconds"], step["peak_rss_gb"], keys=["service"])]
    ev, tr, ex = r["events"], r["traces"], r["export"]
    ev_ingest, tr_ingest = ev["ingest_sample"], tr["ingest"]
    return [
        row(f"HTTP POST /v1/events ({ev['clients']} clients, {ev['events_per_batch']:,}/batch)", ev["seconds"], None,
            f"{ev['events_per_s']:,} events/s", f">= {TARGET_EVENTS_PER_S:,}/s", ev["events_per_s"] >= TARGET_EVENTS_PER_S,
            keys=["service"], cpu=round(ev["server_cpu_s"] + ev["client_cpu_s"], 1)),
        *ingest_rows("events", ev_ingest, row),
        row(f"HTTP POST /v1/traces ({tr['clients']} clients, {tr['spans_per_request']} spans/req)", tr["seconds"], None,
            f"{tr['spans_per_s']:,} spans/s", "informational", keys=["service"],
            cpu=round(tr["server_cpu_s"] + tr["client_cpu_s"], 1)),
        *ingest_rows("spans", tr_ingest, row),
        row(f"HTTP export 30d JSON, p95 of {ex['requests']} sequential", ex["p95_s"], None,
            f"p50 {ex['p50_s']:.2f} s, p95 {ex['p95_s']:.2f} s", f"p95 <= {TARGET_EXPORT_P95_S:g} s",
            ex["p95_s"] <= TARGET_EXPORT_P95_S, keys=["service"], cpu=ex["server_cpu_s_per_request"]),
    ]


def webapp_rows(step: dict | None, row) -> list[dict]:
    """The dashboard's rows (bench/webapp_bench.py): p95 in the browser of first loads and period changes."""
    from bench.webapp_bench import TARGET_P95_S

    if step is None:
        return []
    r = step.get("result")
    if not r:
        return [row("dashboard (bench/webapp_bench.py)", step["seconds"], step["peak_rss_gb"], keys=["webapp"])]
    return [row(f"dashboard {what}, p95 of {r[key]['tries']} in chromium", r[key]["p95_s"], None,
                f"p50 {r[key]['p50_s']:.2f} s, p95 {r[key]['p95_s']:.2f} s", f"p95 <= {TARGET_P95_S:g} s",
                r[key]["p95_s"] <= TARGET_P95_S, keys=["webapp"])
            for key, what in (("first_load", "first load"), ("period_change", "period change"))]


def ingest_rows(unit: str, ingest: dict, row) -> list[dict]:
    """`agent-analytics ingest` of files the service wrote, as written and joined in one file."""
    written, one = ingest["as_written"], ingest["joined"]
    return [row(f"  CLI ingest of {written['files']} files it wrote", written["seconds"], None,
                f"{written[f'{unit}_per_s']:,} {unit}/s", "informational", keys=["service"], cpu=written["cpu_s"]),
            row("  the same lines in one file", one["seconds"], None, f"{one[f'{unit}_per_s']:,} {unit}/s",
                "informational", keys=["service"], cpu=one["cpu_s"])]


def _code_version() -> dict:
    """The commit benchmarked and the files that differed from it (read-only git calls)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"source": str(REPO), "commit": git("rev-parse", "HEAD").strip(),
            "modified": [line[3:] for line in git("status", "--porcelain").splitlines() if line[3:] != "bench/"]}


def _remove_data(workdir: Path) -> None:
    for name in ("in", "extra", "home", "dbt", "service"):
        shutil.rmtree(workdir / name, ignore_errors=True)


def bench_main(args: argparse.Namespace) -> int:
    workdir = args.workdir.expanduser().resolve()
    if any(folder == REPO or (folder / ".git").exists() for folder in (workdir, *workdir.parents)):
        print(f"bench: --workdir {workdir} is inside a repository; use a folder outside it", file=sys.stderr)
        return 2
    today = datetime.now(timezone.utc).date()
    last_day = today - timedelta(days=1)
    extra_events = max(1, round(args.events / args.days))
    in_dir, extra_dir, home = workdir / "in", workdir / "extra", workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(workdir / "dbt", ignore_errors=True)
    home.mkdir(parents=True)
    dbt_target = workdir / "dbt" / "target"

    env = {**os.environ, "AGENT_ANALYTICS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "PYTHONUNBUFFERED": "1"}
    from agent_analytics.settings import SettingsError, load_settings

    try:
        settings = load_settings(env)
    except SettingsError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    env.update(settings.env())  # the build's memory limit and dbt threads reach dbt's profile as they do in the product
    meta = {
        "command": " ".join(["python -m bench.run"] + sys.argv[1:]),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "ram_gb": round(os.sysconf("SC_PHYS_PAGES") * PAGE / GB, 1),
                    "python": platform.python_version(), "platform": platform.platform()},
        "events": args.events, "days": args.days, "seed": args.seed, "unsorted": args.unsorted and not args.stream,
        "stream": args.stream,
        "engine": settings.engine, "duckdb_memory": settings.duckdb_memory, "dbt_threads": settings.dbt_threads,
        "first_day": str(last_day - timedelta(days=args.days - 1)),
        "last_day": str(last_day), "extra_day": str(today), "extra_events": extra_events, "workdir": str(workdir),
        "load_avg_start": os.getloadavg(),
        "code": _code_version(),
    }
    bench = Bench(workdir, env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped run still reports and cleans up
    print(f"bench: {args.events:,} messages over {args.days} days ending {last_day}, +1 day ({today}), "
          f"engine {settings.engine}; workdir {workdir}")

    steps_ok = True

    def ok(step: dict) -> bool:
        nonlocal steps_ok
        steps_ok &= step["ok"]
        return step["ok"]

    def ingested() -> bool:
        """The period generated and ingested: as files on disk first, or streamed a day at a time."""
        if args.stream:
            print("generate and ingest, one daily file at a time")
            loaded = ok(bench.py("ingest", f"ingest {args.days} daily files as generated", step="stream", out=str(in_dir),
                                 events=args.events, days=args.days, seed=args.seed, end=str(last_day)))
            bench.disk["after ingest"] = _disk_gb(home)
            return loaded
        if not ok(_generate(bench, "generate", f"generate {args.days} days", in_dir, args.events, args.days, args.seed,
                            last_day, args.unsorted)):
            return False
        print("reference")
        ok(bench.py("bare", "bare read_ndjson", glob=str(in_dir / "*.jsonl")))
        ok(bench.py("floor", "bare read + Parquet writes (reference)", glob=str(in_dir / "*.jsonl"),
                    out=str(workdir / "floor")))
        print("ingest")
        loaded = ok(bench.py("ingest", f"ingest {args.days} files", paths=[str(in_dir)]))
        bench.disk["after ingest"] = _disk_gb(home)
        return loaded

    try:
        print("setup")
        if ok(_generate(bench, "extra", "generate 1 more day", extra_dir, extra_events, 1, args.seed + 1, today,
                        args.unsorted and not args.stream)):
            if ingested():
                print("first build")
                ok(bench.dbt("first.parse", "dbt parse (untimed)", "parse", dbt_target))
                from orchestration.defs.dbt.definitions import build_threads

                # as the build asset runs a first build: fewer threads when its largest models would not fit side by side
                ok(bench.dbt("first.dbt", "dbt build", "build", dbt_target, threads=build_threads(settings, True)))
                bench.disk["after the first build"] = _disk_gb(home)
                ok(bench.py("first.checks", "GX checks"))
                ok(bench.py("first.exports", "exports", end=str(last_day)))
                ok(bench.py("first.dashboard", "dashboard", end=str(last_day)))
                # Two publications, as a running deployment has made before a refresh: the DuckDB
                # copy alternates between two files, so the +1 day one updates the first one.
                ok(bench.py("first.publish", "serving copy (whole) + PostgreSQL", step="publish", postgres=True))
                ok(bench.py("first.publish2", "serving copy (whole, second file)", step="publish"))
                ok(bench.py("queries", "metrics queries", end=str(last_day)))
                if args.service:
                    print("HTTP service")
                    ok(bench.run("service", "serve: events, traces, export (one server process)",
                                 [sys.executable, "-m", "bench.service_bench", "--workdir", str(workdir),
                                  "--result", str(bench.logs / "service.result.json")]))
                    print("dashboard")
                    ok(bench.run("webapp", "dashboard in chromium: first load, period change",
                                 [sys.executable, "-m", "bench.webapp_bench", "--workdir", str(workdir),
                                  "--result", str(bench.logs / "webapp.result.json")]))
                print("one more day")
                if ok(bench.py("more.ingest", "ingest 1 file", paths=[str(extra_dir)])):
                    # as the 5-minute refresh runs it: the staging-view tests are left to the nightly rebuild,
                    # and the large models' data tests read only the rows loaded since the first build
                    from orchestration.defs.dbt.definitions import REFRESH_EXCLUDE, TESTS_LOADED_AFTER_VAR, tests_loaded_after
                    from orchestration.resources import AnalyticsSettings, Warehouse

                    loaded_after = tests_loaded_after(Warehouse(settings=AnalyticsSettings(home=str(home))))
                    if loaded_after is not None:
                        bench.env[TESTS_LOADED_AFTER_VAR] = loaded_after

                    ok(bench.dbt("more.dbt", "dbt build (incremental, as the refresh)", "build", dbt_target,
                                 ("--exclude", REFRESH_EXCLUDE)))
                    ok(bench.py("more.checks", "GX checks"))
                    ok(bench.py("more.exports", "exports", end=str(today)))
                    ok(bench.py("more.dashboard", "dashboard", end=str(today)))
                    ok(bench.py("more.publish", "serving copy (days changed)", step="publish"))
                    bench.disk["after +1 day and the publications"] = _disk_gb(home)
                if args.dagster:
                    print("end to end")
                    ok(bench.py("dagster", "agent-analytics build (Dagster, no new data)"))
    finally:
        meta["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        meta["load_avg_end"] = os.getloadavg()
        results = report(bench, meta)
        results["all_steps_ok"] = steps_ok
        (workdir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nresults: {workdir / 'results.json'}   logs: {bench.logs}")
        if args.keep:
            print(f"kept data in {workdir} (--keep)")
        else:
            _remove_data(workdir)
    if not steps_ok:
        print("bench: some steps failed (see above and the logs)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="message events over the period (default 10M)")
    parser.add_argument("--days", type=int, default=30, help="days of data ending yesterday UTC (default 30)")
    parser.add_argument("--seed", type=int, default=7, help="generator seed (the extra day uses seed + 1)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help=f"scratch folder (default {DEFAULT_WORKDIR})")
    parser.add_argument("--keep", action="store_true", help="keep generated data and the warehouse")
    parser.add_argument("--stream", action="store_true",
                        help="generate the period one daily file at a time and ingest each as it is written (a period "
                             "too large for the disk as JSONL; implies daily sorted files, skips the bare-read references)")
    parser.add_argument("--sorted", dest="unsorted", action="store_false",
                        help="one time-sorted file per day (default: DAYS files each holding the whole period in random "
                             "order, as concurrent writers produce)")
    parser.add_argument("--no-dagster", dest="dagster", action="store_false",
                        help="skip the final end-to-end run through Dagster")
    parser.add_argument("--no-service", dest="service", action="store_false",
                        help="skip the HTTP service's steps (bench/service_bench.py)")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--step-args", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--step-result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:
        result = STEPS[args.step](json.loads(args.step_args))
        args.step_result.write_text(json.dumps(result, default=str))
        return 0
    if args.events < 1 or args.days < 1:
        parser.error("--events and --days must be positive")
    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
