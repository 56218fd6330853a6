"""The landing folder: where agent platforms drop contract files for the pipeline to load.

Only regular `*.jsonl` / `*.jsonl.gz` files at the top level are loaded. A file moves once its
batch is committed: to `landing/loaded/` (kept, never deleted), or to `landing/rejected/` when
it cannot be read or loaded (a corrupt or truncated gzip, a symbolic link, a FIFO, a device, a
directory with such a name), with the reason in the warehouse table `ingest.rejected_files`.
One bad file never stops the files after it. Symbolic links are refused, never followed: a
link could point anywhere on the machine, and its target's lines would be stored in the
quarantine. Other entries are left alone and named in the log.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ingestion.validate import AcceptedTimes

SUFFIXES = (".jsonl", ".jsonl.gz")
LOADED_DIR = "loaded"
REJECTED_DIR = "rejected"

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
            if _is_candidate(entry):
                candidates.append(Path(entry.path))
            elif entry.name in (LOADED_DIR, REJECTED_DIR) and entry.is_dir(follow_symlinks=False):
                continue
            elif entry.is_dir(follow_symlinks=False):
                ignored.append(f"{entry.name}: a directory (only files at the top of landing/ are read)")
            else:
                ignored.append(f"{entry.name}: not a .jsonl or .jsonl.gz file")
    return sorted(candidates), sorted(ignored)


def landing_files(landing_dir: Path) -> list[Path]:
    """Entries waiting in the landing folder to be loaded or rejected, oldest name first."""
    return scan(landing_dir)[0]


def _move(path: Path, folder: Path) -> Path:
    """Move a landing entry into `folder` under its name (or a unique one); links are moved,
    never followed."""
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / path.name
    if os.path.lexists(destination):
        stamp = os.lstat(path).st_mtime_ns
        suffix = ".jsonl.gz" if path.name.endswith(".jsonl.gz") else ".jsonl"
        destination = folder / f"{path.name[: -len(suffix)]}.{stamp}{suffix}"
    os.replace(path, destination)
    return destination


def archive_loaded(files: list[Path], landing_dir: Path) -> None:
    """Move files whose load committed into landing/loaded/ (kept, never deleted)."""
    for f in files:
        _move(f, landing_dir / LOADED_DIR)


def _reject(con, path: Path, landing_dir: Path, reason: str) -> Rejection:
    """Move an unloadable entry to landing/rejected/ and record why in ingest.rejected_files."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        moved_to = _move(path, landing_dir / REJECTED_DIR)
    except OSError as exc:
        logger.error("%s: could not move it to %s/: %s", path.name, REJECTED_DIR, exc.strerror or exc)
        moved_to = None
    con.execute(
        "insert into ingest.rejected_files values (?, ?, ?, ?)",
        [path.name, str(moved_to) if moved_to else None, reason, now],
    )
    logger.warning("%s: rejected (%s)%s", path.name, reason, f", moved to {moved_to}" if moved_to else "")
    return Rejection(path.name, moved_to, reason)


def _reason(path: Path, exc: Exception) -> str:
    """The exception's text without the path it starts with (the file is named beside it)."""
    text = str(exc)
    prefix = f"{path}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def ingest_landing(
    landing_dir: Path, warehouse_path: Path, raw_dir: Path, *, accepted: AcceptedTimes = AcceptedTimes()
) -> LandingRun:
    """Load every waiting landing file and move it to loaded/ or rejected/, all under the
    warehouse lock, so two runs started together never load or move the same file twice."""
    from ingestion.load import load_each, recover
    from ingestion.warehouse import open_warehouse

    run = LandingRun()
    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        files, run.ignored = scan(landing_dir)
        for entry in run.ignored:
            logger.info("landing/%s: left alone", entry)
        for file, outcome in load_each(con, files, raw_dir, accepted=accepted, follow_links=False):
            if isinstance(outcome, Exception):
                run.rejected.append(_reject(con, file, landing_dir, _reason(file, outcome)))
                continue
            run.results.append(outcome)
            try:
                archive_loaded([file], landing_dir)
            except OSError as exc:  # loaded and committed: the next run finds it "already loaded"
                logger.error("%s: loaded, but could not move it to %s/: %s", file.name, LOADED_DIR, exc.strerror or exc)
    return run
