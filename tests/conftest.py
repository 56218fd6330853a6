"""Shared pytest fixtures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Home:
    """A fresh warehouse location: the DuckDB file and the Parquet raw layer."""

    warehouse: Path
    raw: Path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(warehouse=tmp_path / "home" / "warehouse.duckdb", raw=tmp_path / "home" / "raw")
