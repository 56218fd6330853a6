"""The landing folder: where agent platforms drop contract files for the pipeline to load.

Only regular `*.jsonl` / `*.jsonl.gz` files at the top level are loaded. A file moves once its
batch is committed: to `landing/loaded/` (kept, never deleted), or to `landing/rejected/` when
it cannot be read or loaded (a corrupt or truncated gzip, a symbolic link, a FIFO, a device, a
directory with such a name), with the reason in the warehouse table `ingest.rejected_files`.
One bad file never stops the files after it. Symbolic links are refused, never followed: a
link could point anywhere on the machine, and its target's lines would be stored in the
quarantine. Other entries are left alone and named in the log.

A file changed within the last `quiet_s` seconds that looks unfinished (a plain file not
ending with a line end, a gzip file ending before its end-of-stream marker) is being written
or copied: it waits for a later run instead of being loaded in part or rejected. Producers
should still write under another name and rename into `landing/` (a rename is atomic), as
`write_landing_file` does for the HTTP service: entries whose name starts with a dot are such
writes in progress and are skipped without a word.
"""

from __future__ import annotations

import logging
import os
import stat
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from agent_analytics.files import sync_folder
from agent_analytics.sql import stored_text
from ingestion.validate import AcceptedTimes

SUFFIXES = (".jsonl", ".jsonl.gz")
LOADED_DIR = "loaded"
REJECTED_DIR = "rejected"
QUIET_S = 300.0  # default of AGENT_ANALYTICS_LANDING_QUIET_S
INCOMING_PREFIX = ".incoming-"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    file_name: str
    moved_to: Path | None  # None: the file could not be moved (it is tried again next run)
    reason: str


@dataclass
class LandingRun:
    """What one pass over the landing folder did."""

    results: list = field(default_factory=list)  # FileResult of each loaded (or already loaded) file
    rejected: list[Rejection] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # "name: why" of entries left alone
    waiting: list[str] = field(default_factory=list)  # "name: why" of files still being written


def _is_candidate(entry: os.DirEntry) -> bool:
    return entry.name.endswith(SUFFIXES) and entry.name not in (LOADED_DIR, REJECTED_DIR)


def scan(landing_dir: Path) -> tuple[list[Path], list[str]]:
    """Entries to load (every `*.jsonl(.gz)` entry, whatever its kind: the load refuses what is
    not a regular file) sorted by name, and the other entries with why they are left alone."""
    if not landing_dir.exists():
        return [], []
    candidates, ignored = [], []
    with os.scandir(landing_dir) as entries:
        for entry in entries:
            if entry.name.startswith("."):  # a write in progress (or a writer's leftover): not ours yet
                continue
            if _is_candidate(entry):
                candidates.append(Path(entry.path))
            elif entry.name in (LOADED_DIR, REJECTED_DIR) and entry.is_dir(follow_symlinks=False):
                continue
            elif entry.is_dir(follow_symlinks=False):
                ignored.append(f"{stored_text(entry.name)}: a directory (only files at the top of landing/ are read)")
            else:
                ignored.append(f"{stored_text(entry.name)}: not a .jsonl or .jsonl.gz file")
    return sorted(candidates), sorted(ignored)


def write_landing_file(landing_dir: Path, prefix: str, data: bytes) -> Path:
    """Write `data` as the new landing file `<prefix>-<UTC yyyymmddThhmmss.ffffff>-<uuid>.jsonl`
    (names sort in the order of the writes, so the landing loads files in that order), durably:
    under a dot-name that `scan` skips, fsynced, renamed, and the folder fsynced. Once it
    returns, the file survives a crash of the process or the machine, and no reader ever saw
    a part of it."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    name = f"{prefix}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S.%f}-{uuid.uuid4().hex}.jsonl"
    tmp = landing_dir / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, landing_dir / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(landing_dir)
    return landing_dir / name


def remove_stale_incoming(landing_dir: Path, older_than_s: float) -> list[str]:
    """Remove the temporaries of `write_landing_file` untouched for `older_than_s` seconds (a
    writer killed mid-write never acknowledged them); the names removed."""
    removed = []
    if not landing_dir.is_dir():
        return removed
    for path in landing_dir.glob(INCOMING_PREFIX + "*"):
        try:
            if time.time() - path.lstat().st_mtime >= older_than_s:
                path.unlink()
                removed.append(path.name)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def landing_files(landing_dir: Path) -> list[Path]:
    """Entries waiting in the landing folder to be loaded or rejected, oldest name first."""
    return scan(landing_dir)[0]


def _move(path: Path, folder: Path) -> Path:
    """Move a landing entry into `folder` under its name (or a unique one); links are moved,
    never followed."""
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / path.name
    suffix = ".jsonl.gz" if path.name.endswith(".jsonl.gz") else ".jsonl" if path.name.endswith(".jsonl") else ""
    stem = path.name[: len(path.name) - len(suffix)]
    if os.path.lexists(destination):  # never replace an earlier file of the same name
        destination = folder / f"{stem}.{os.lstat(path).st_mtime_ns}{suffix}"
    number = 0
    while os.path.lexists(destination):  # the same name and time too (cp -p)
        number += 1
        destination = folder / f"{stem}.{number}{suffix}"
    os.replace(path, destination)
    return destination


def archive_loaded(files: list[Path], landing_dir: Path) -> None:
    """Move files whose load committed into landing/loaded/ (kept, never deleted)."""
    for f in files:
        _move(f, landing_dir / LOADED_DIR)


def _reject(con, path: Path, landing_dir: Path, reason: str) -> Rejection:
    """Move an unloadable entry to landing/rejected/ and record why in ingest.rejected_files."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    name = stored_text(path.name)
    try:
        moved_to = _move(path, landing_dir / REJECTED_DIR)
    except OSError as exc:
        logger.error("%s: could not move it to %s/: %s", name, REJECTED_DIR, exc.strerror or exc)
        moved_to = None
    con.execute(
        "insert into ingest.rejected_files values (?, ?, ?, ?)",
        [name, stored_text(str(moved_to)) if moved_to else None, stored_text(reason), now],
    )
    return Rejection(name, moved_to, reason)


_GZIP_MIN_BYTES = 18  # a 10-byte header and an 8-byte trailer


def _changed_within(info: os.stat_result, quiet_s: float) -> bool:
    """Changed less than `quiet_s` seconds ago; a time in the future (a clock or an archive
    elsewhere) counts as long ago, or the file would wait forever."""
    return 0 <= time.time() - info.st_mtime < quiet_s


def _unfinished(path: Path, quiet_s: float) -> str | None:
    """Why a file changed within `quiet_s` seconds looks unfinished, else None: empty; plain
    and not ending with a line end; gzip and shorter than a gzip file or without its magic
    bytes yet (a gzip cut short further on shows only when decompressed: see the load)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None  # the load says what is wrong with it
    if not _changed_within(info, quiet_s) or not stat.S_ISREG(info.st_mode):
        return None
    if info.st_size == 0:
        return "empty and changed moments ago (still being written?)"
    gz = path.name.endswith(".gz")
    try:  # as the load opens it: never through a link, never blocking on a FIFO swapped in
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        edge = os.pread(fd, 2, 0) if gz else os.pread(fd, 1, info.st_size - 1)
    finally:
        os.close(fd)
    if gz:
        complete = info.st_size >= _GZIP_MIN_BYTES and edge == b"\x1f\x8b"
        return None if complete else "too short for a gzip file yet (still being copied?)"
    return None if edge == b"\n" else "its last line has no line end yet (still being written?)"


def _recent(path: Path, quiet_s: float) -> bool:
    try:
        return _changed_within(os.lstat(path), quiet_s)
    except OSError:
        return False


def _reason(path: Path, exc: Exception) -> str:
    """The exception's text without the path it starts with (the file is named beside it)."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def ingest_landing(
    landing_dir: Path, warehouse_path: Path, raw_dir: Path, *, accepted: AcceptedTimes = AcceptedTimes(),
    quiet_s: float = QUIET_S,
) -> LandingRun:
    """Load every waiting landing file and move it to loaded/ or rejected/, all under the
    warehouse lock, so two runs started together never load or move the same file twice."""
    from agent_analytics.warehouse import open_warehouse
    from ingestion.load import TruncatedFile, load_each, recover

    run = LandingRun()
    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        candidates, run.ignored = scan(landing_dir)
        files = []
        for file in candidates:
            why = _unfinished(file, quiet_s)
            if why:
                run.waiting.append(f"{stored_text(file.name)}: {why}")
            else:
                files.append(file)
        for file, outcome in load_each(con, files, raw_dir, accepted=accepted, follow_links=False):
            if isinstance(outcome, TruncatedFile) and _recent(file, quiet_s):
                run.waiting.append(f"{stored_text(file.name)}: {_reason(file, outcome)} (still being copied?)")
                continue
            if isinstance(outcome, Exception):
                reason = _reason(file, outcome)
                try:
                    run.rejected.append(_reject(con, file, landing_dir, reason))
                except Exception:  # noqa: BLE001 - recording it must not stop the other files
                    logger.exception("%s: rejected, but the rejection could not be recorded", stored_text(file.name))
                    run.rejected.append(Rejection(stored_text(file.name), None, reason))
                continue
            run.results.append(outcome)
            try:
                archive_loaded([file], landing_dir)
            except OSError as exc:  # loaded and committed: the next run finds it "already loaded"
                logger.error("%s: loaded, but could not move it to %s/: %s", stored_text(file.name), LOADED_DIR,
                             exc.strerror or exc)
    return run
