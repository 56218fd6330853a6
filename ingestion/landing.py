"""The landing folder: where agent platforms drop contract files for the pipeline to load."""

from __future__ import annotations

import os
from pathlib import Path

SUFFIXES = (".jsonl", ".jsonl.gz")
LOADED_DIR = "loaded"


def landing_files(landing_dir: Path) -> list[Path]:
    """Files waiting in the landing folder (top level only), oldest name first."""
    if not landing_dir.exists():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))


def archive_loaded(files: list[Path], landing_dir: Path) -> None:
    """Move files whose load committed into landing/loaded/ (kept, never deleted)."""
    target = landing_dir / LOADED_DIR
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        destination = target / f.name
        if destination.exists():
            destination = target / f"{f.stem}.{f.stat().st_mtime_ns}{''.join(f.suffixes[-1:])}"
        os.replace(f, destination)


def ingest_landing(landing_dir: Path, warehouse_path: Path, raw_dir: Path) -> list:
    """Load every waiting landing file and archive it, all under the warehouse lock, so two
    runs started together never load or move the same file twice."""
    from ingestion.load import load_files, recover
    from ingestion.warehouse import open_warehouse

    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        files = landing_files(landing_dir)
        results = load_files(con, files, raw_dir)
        archive_loaded(files, landing_dir)
    return results
