"""Tests for agent_analytics.synthetic_events (the generator): determinism, contract validity, counts, shape."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agent_analytics.synthetic_events import GenerateResult, generate

EVENTS = 2000
DAYS = 7
SEED = 42
END = date(2026, 11, 8)  # a Sunday: the range is Mon 2026-11-02 .. Sun 2026-11-08

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
TYPES = {"message", "health_check", "queue_sample", "deployment"}


# --------------------------------------------------------------------------- independent contract check


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and len(v) > 0


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _optional(obj: dict, key: str, check) -> bool:
    """Absent is fine; present must pass ``check`` (explicit null is not produced by the generator)."""
    return key not in obj or check(obj[key])


def _valid_llm_call(c: Any) -> bool:
    return (
        isinstance(c, dict)
        and _is_str(c.get("provider"))
        and _is_str(c.get("model"))
        and _is_int(c.get("input_tokens"))
        and _is_int(c.get("output_tokens"))
        and _optional(c, "cache_read_tokens", lambda v: _is_int(v) and v <= c["input_tokens"])
        and _optional(c, "cost_usd", _is_num)
        and _optional(c, "latency_ms", _is_num)
    )


def _valid_tool_call(c: Any) -> bool:
    return isinstance(c, dict) and _is_str(c.get("name")) and _is_num(c.get("latency_ms")) and _is_str(c.get("status"))


def _valid_message(o: dict) -> bool:
    return (
        _is_str(o.get("user_id"))
        and _is_str(o.get("agent_id"))
        and o.get("status") in ("ok", "error")
        and (o["status"] == "error" or "response_time_ms" in o)
        and _optional(o, "response_time_ms", _is_num)
        and all(_optional(o, k, _is_str) for k in ("agent_name", "agent_version", "conversation_id", "error_type"))
        and isinstance(o.get("llm_calls", []), list)
        and all(_valid_llm_call(c) for c in o.get("llm_calls", []))
        and _optional(o, "tool_calls", lambda v: isinstance(v, list) and all(_valid_tool_call(c) for c in v))
    )


def _valid(o: Any) -> bool:
    if not isinstance(o, dict):
        return False
    event_id, at = o.get("event_id"), o.get("occurred_at")
    if not (_is_str(event_id) and len(event_id) <= 200 and o.get("type") in TYPES):
        return False
    if not (isinstance(at, str) and RFC3339.match(at)):
        return False
    datetime.fromisoformat(at)  # must parse
    kind = o["type"]
    if kind == "message":
        return _valid_message(o)
    if kind == "health_check":
        return _is_str(o.get("component")) and isinstance(o.get("is_up"), bool) and _optional(o, "latency_ms", _is_num)
    if kind == "queue_sample":
        return _is_str(o.get("queue")) and _is_int(o.get("depth"))
    return _is_str(o.get("agent_id")) and _is_str(o.get("agent_version"))


def _utc(at: str) -> datetime:
    return datetime.fromisoformat(at).astimezone(timezone.utc)


@dataclass
class Scan:
    """What an independent re-read of the files finds."""

    malformed: int = 0
    duplicates: int = 0
    late: int = 0
    events: dict[str, dict] = field(default_factory=dict)  # event_id -> first valid record


def _scan(files: list[Path]) -> Scan:
    scan = Scan()
    first_line: dict[str, str] = {}
    for path in sorted(files):
        file_day = date.fromisoformat(path.name.removeprefix("events-").removesuffix(".jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
                ok = _valid(obj)
            except ValueError:
                ok = False
            if not ok:
                scan.malformed += 1
                continue
            event_id = obj["event_id"]
            if event_id in first_line:
                assert line == first_line[event_id], "duplicates must be exact copies"
                scan.duplicates += 1
                continue
            first_line[event_id] = line
            scan.events[event_id] = obj
            occurred = _utc(obj["occurred_at"]).date()
            if obj["type"] == "message" and occurred <= file_day - timedelta(days=2):
                scan.late += 1
            else:
                assert occurred == file_day, f"{event_id} occurred {occurred} but is in {path.name}"
    return scan


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[GenerateResult, Scan]:
    result = generate(tmp_path_factory.mktemp("gen"), EVENTS, DAYS, SEED, end=END)
    return result, _scan(result.files)


def _messages(scan: Scan) -> list[dict]:
    return [o for o in scan.events.values() if o["type"] == "message"]


# --------------------------------------------------------------------------- tests


def test_files_one_per_day(generated: tuple[GenerateResult, Scan]) -> None:
    result, _ = generated
    names = [p.name for p in result.files]
    assert names == [f"events-{(END - timedelta(days=DAYS - 1 - i)).isoformat()}.jsonl" for i in range(DAYS)]
    assert all(p.exists() and p.stat().st_size > 0 for p in result.files)


def test_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 300, 3, 7, end=END)
    b = generate(tmp_path / "b", 300, 3, 7, end=END)
    c = generate(tmp_path / "c", 300, 3, 8, end=END)
    for fa, fb, fc in zip(a.files, b.files, c.files, strict=True):
        assert fa.read_bytes() == fb.read_bytes()
        assert fa.read_bytes() != fc.read_bytes()
    assert (a.message_events, a.malformed_lines, a.duplicate_lines, a.late_lines) == (
        b.message_events, b.malformed_lines, b.duplicate_lines, b.late_lines
    )


def test_counts_match_files(generated: tuple[GenerateResult, Scan]) -> None:
    result, scan = generated
    assert len(_messages(scan)) == EVENTS == result.message_events
    assert len(scan.events) - EVENTS == result.other_events
    assert scan.malformed == result.malformed_lines >= 6
    assert scan.duplicates == result.duplicate_lines >= 3
    assert scan.late == result.late_lines >= 3


def test_malformed_kinds_present(generated: tuple[GenerateResult, Scan]) -> None:
    result, _ = generated
    text = "\n".join(p.read_text() for p in result.files)
    assert '"type": "click"' in text
    assert '"occurred_at": "yesterday"' in text
    assert '"response_time_ms": -250' in text
    assert re.search(r"^\[", text, re.M)


def test_no_explicit_nulls(generated: tuple[GenerateResult, Scan]) -> None:
    result, _ = generated
    assert all(":null" not in p.read_text() for p in result.files)


def test_event_types_and_ids(generated: tuple[GenerateResult, Scan]) -> None:
    _, scan = generated
    kinds = Counter(o["type"] for o in scan.events.values())
    assert kinds["health_check"] == DAYS * 1440 * 2
    assert kinds["queue_sample"] == DAYS * 1440
    assert kinds["deployment"] >= 1
    assert all(o["event_id"].startswith(("m-", "h-", "q-", "d-")) for o in scan.events.values())
    msgs = _messages(scan)
    assert {o["agent_id"] for o in msgs} == {"support", "sales", "onboarding", "faq", "tech"}
    assert len({o["conversation_id"] for o in msgs}) < len(msgs) / 2  # sessions of several messages


def test_lunch_busier_than_night(generated: tuple[GenerateResult, Scan]) -> None:
    _, scan = generated
    hours = Counter(_utc(o["occurred_at"]).hour for o in _messages(scan))
    assert hours[12] + hours[13] > 3 * (hours[2] + hours[3])


def test_weekdays_busier_than_weekend(generated: tuple[GenerateResult, Scan]) -> None:
    _, scan = generated
    per_day = Counter(_utc(o["occurred_at"]).date() for o in _messages(scan))
    weekday = [n for d, n in per_day.items() if d.weekday() < 5]
    weekend = [n for d, n in per_day.items() if d.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 1.5 * sum(weekend) / len(weekend)


def test_error_share(generated: tuple[GenerateResult, Scan]) -> None:
    _, scan = generated
    msgs = _messages(scan)
    errors = [o for o in msgs if o["status"] == "error"]
    assert 0.005 <= len(errors) / len(msgs) <= 0.03
    assert all(o.get("error_type") in ("timeout", "rate_limit", "tool_error") for o in errors)
    assert all("response_time_ms" in o for o in msgs if o["status"] == "ok")


def test_one_api_downtime(generated: tuple[GenerateResult, Scan]) -> None:
    _, scan = generated
    api = sorted(
        (_utc(o["occurred_at"]), o["is_up"]) for o in scan.events.values()
        if o["type"] == "health_check" and o["component"] == "api"
    )
    runs, length = [], 0
    for _, up in api:
        if not up:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    assert runs == [5]


def test_queue_spikes_and_tools(generated: tuple[GenerateResult, Scan]) -> None:
    _, scan = generated
    depths = [o["depth"] for o in scan.events.values() if o["type"] == "queue_sample"]
    assert max(depths) >= 50 and sorted(depths)[len(depths) // 2] <= 3
    msgs = _messages(scan)
    with_tools = [o for o in msgs if "tool_calls" in o]
    assert 0.2 < len(with_tools) / len(msgs) < 0.4
    slow = [o for o in with_tools if any(t["name"] == "weather_api" for t in o["tool_calls"])]
    assert slow and all(o["response_time_ms"] >= 8000 for o in slow if "response_time_ms" in o)


def test_default_end_is_today_utc(tmp_path: Path) -> None:
    before = datetime.now(timezone.utc).date()
    result = generate(tmp_path, 20, 1, 1)
    after = datetime.now(timezone.utc).date()
    assert result.files[0].name in {f"events-{before}.jsonl", f"events-{after}.jsonl"}


def _lines(files: list[Path]) -> list[str]:
    return [line for path in files for line in path.read_text(encoding="utf-8").splitlines()]


def test_unsorted_files_hold_the_same_lines_shuffled_across_the_period(
    tmp_path: Path, generated: tuple[GenerateResult, Scan]
) -> None:
    """--unsorted: DAYS files, each with events of every day in random order, and the same
    lines (events, duplicate copies, malformed lines) as the sorted daily files."""
    sorted_result, scan = generated
    result = generate(tmp_path / "u", EVENTS, DAYS, SEED, end=END, unsorted=True)
    assert [p.name for p in result.files] == [f"events-part-{i:03d}-of-{DAYS:03d}.jsonl" for i in range(1, DAYS + 1)]
    assert sorted(p.name for p in (tmp_path / "u").iterdir()) == [p.name for p in result.files]  # no spill left
    assert sorted(_lines(result.files)) == sorted(_lines(sorted_result.files))
    assert (result.message_events, result.other_events, result.malformed_lines, result.duplicate_lines) == (
        EVENTS, sorted_result.other_events, scan.malformed, scan.duplicates
    )
    assert result.late_lines == 0
    all_days = {END - timedelta(days=d) for d in range(DAYS)}
    for path in result.files:
        times = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                times.append(_utc(json.loads(line)["occurred_at"]))
            except (ValueError, KeyError, TypeError):
                continue  # a malformed line
        assert {t.date() for t in times} == all_days, path.name
        # random order: about half of the neighbours are out of time order (sorted: none)
        backwards = sum(a > b for a, b in zip(times, times[1:], strict=False))
        assert 0.4 < backwards / (len(times) - 1) < 0.6, path.name


def test_unsorted_is_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", 300, 3, 7, end=END, unsorted=True)
    b = generate(tmp_path / "b", 300, 3, 7, end=END, unsorted=True)
    c = generate(tmp_path / "c", 300, 3, 8, end=END, unsorted=True)
    for fa, fb, fc in zip(a.files, b.files, c.files, strict=True):
        assert fa.read_bytes() == fb.read_bytes()
        assert fa.read_bytes() != fc.read_bytes()


def test_generate_into_a_folder_with_a_quote(tmp_path):
    """Paths reach DuckDB's COPY as escaped literals (the unsorted spill folder too)."""
    from agent_analytics.synthetic_events import generate

    for unsorted in (False, True):
        out = tmp_path / f"it's {unsorted}"
        result = generate(out, 200, 2, seed=3, end=date(2026, 11, 2), unsorted=unsorted)
        lines = sum(len(p.read_text().splitlines()) for p in result.files)
        assert lines == result.message_events + result.other_events + result.malformed_lines + result.duplicate_lines
