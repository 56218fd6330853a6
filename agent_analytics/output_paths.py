"""Checks of the files and folders a command is told to write (`export -o`, `generate -o`).

They run before the work, so a path that cannot be written costs one line, not a computed
export thrown away; the writes themselves still turn an OSError into an OutputPathError
(a disk that fills up, a permission that changes in between).
"""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """A path we cannot write; the message is one line for the user."""


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or ".")


def _check_creatable(target: Path, label: str) -> None:
    """The nearest existing ancestor of `target` must be a writable folder (to create or replace it)."""
    ancestor = _nearest_existing(target.parent)
    if not ancestor.is_dir():
        raise OutputPathError(f"{label} {target}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label} {target}: cannot write in {ancestor} (permission denied)")


def check_output_file(path: Path, label: str = "-o") -> Path:
    """A file path that can be (re)written: not a folder, not under a file, in a writable folder;
    or an existing device or FIFO we may write to (`/dev/stdout`). A link is judged by what it
    points to (files.write_atomically writes through it)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{label} {path}: is a folder; give a file name")
    from agent_analytics.files import written_in_place

    if written_in_place(path):  # a FIFO, a device, /dev/stdout: written to, not replaced
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{label} {path}: cannot write to it (permission denied)")
        return path
    target = Path(os.path.realpath(path))
    _check_creatable(target, label)  # an existing file is replaced by a rename in its folder
    return path


def prepare_output_folder(path: Path, label: str = "-o") -> Path:
    """A folder to write files into, created when missing; an existing file is refused."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{label} {path}: is a file, not a folder")
    if not path.exists():
        _check_creatable(path, label)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{label} {path}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label} {path}: cannot write in the folder (permission denied)")
    return path
