"""The dashboard's part of `make bench` (issue 19): one `agent-analytics serve` process on the
bench home, after the first build, and Debian's chromium (Playwright) measuring in the page.

1. First load: `--tries` times, a fresh browser context (no cache, the read token already in
   its login cookie) opens `/?period=30d`; the time is the page's own `performance.now()` when
   every section is drawn (`main[data-ready="1"]`), i.e. from the start of the navigation:
   the HTML, the scripts, /app/session and the metrics document of 30 days, and the charts.
2. Period change: on one loaded page, `--tries` changes of the period select, alternating
   7 days and 30 days; the time is from the change event to every section drawn again.

Target: p95 (nearest rank) of each at most 2 s. A read token is created for the run, never
printed, and revoked at the end (bench/service_bench.py `running_server`).

Run alone against a bench workdir kept by `python -m bench.run --keep`:
    .venv/bin/python -m bench.webapp_bench --workdir /tmp/agent_analytics_bench
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.service_bench import nearest_rank, running_server

TARGET_P95_S = 2.0
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
READY = 'main[data-ready="1"]'


def measure(url: str, token: str, tries: int) -> dict:
    from playwright.sync_api import sync_playwright

    host = urlsplit(url).hostname
    first, change, problems = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(tries):
                context = browser.new_context(viewport={"width": 1300, "height": 900})
                context.add_cookies([{"name": "aa_read_token", "value": token, "domain": host, "path": "/",
                                      "httpOnly": True, "sameSite": "Strict"}])
                page = context.new_page()
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(f"{url}/?period=30d")
                page.wait_for_selector(READY, state="attached", timeout=120_000)
                first.append(page.evaluate("window.__renderedAt") / 1000)
                context.close()
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            context.add_cookies([{"name": "aa_read_token", "value": token, "domain": host, "path": "/",
                                  "httpOnly": True, "sameSite": "Strict"}])
            page = context.new_page()
            page.goto(f"{url}/?period=30d")
            page.wait_for_selector(READY, state="attached", timeout=120_000)
            for i in range(tries):
                page.select_option("#period", "7d" if i % 2 == 0 else "30d")
                page.wait_for_selector(READY, state="attached", timeout=120_000)
                change.append(page.evaluate("window.__renderedAt - window.__changeStartedAt") / 1000)
            context.close()
        finally:
            browser.close()
    return {"first_load": _summary(first), "period_change": _summary(change), "page_errors": problems}


def _summary(seconds: list[float]) -> dict:
    return {"tries": len(seconds), "p50_s": round(nearest_rank(seconds, 0.5), 3),
            "p95_s": round(nearest_rank(seconds, 0.95), 3), "max_s": round(max(seconds), 3),
            "all_s": [round(s, 3) for s in seconds]}


def run(workdir: Path, tries: int) -> dict:
    home = workdir / "home"
    env = {**os.environ, "AGENT_ANALYTICS_HOME": str(home)}
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with running_server(env, workdir / "logs" / "webapp.server.log") as server:
        result = measure(server.url, server.read_token, tries)
    result["seconds"] = round(time.monotonic() - started, 1)
    result["targets"] = {key: {"target_p95_s": TARGET_P95_S, "pass": result[key]["p95_s"] <= TARGET_P95_S}
                         for key in ("first_load", "period_change")}
    result["ok"] = not result["page_errors"] and all(t["pass"] for t in result["targets"].values())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webapp_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a bench workdir whose home/ holds a built warehouse")
    parser.add_argument("--tries", type=int, default=20, help="first loads and period changes each (default 20)")
    parser.add_argument("--result", type=Path, help="write the result JSON here (default <workdir>/logs/webapp.result.json)")
    args = parser.parse_args(argv)
    if args.tries < 1:
        parser.error("--tries must be at least 1")
    workdir = args.workdir.expanduser().resolve()
    result = run(workdir, args.tries)
    out = args.result or workdir / "logs" / "webapp.result.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("seconds", "ok", "targets")}, indent=2))
    print(f"result: {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
