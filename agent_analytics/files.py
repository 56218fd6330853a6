"""Files that readers never see half-written: write to a temporary name, then rename.

The temporary file is in the target's folder (a rename is atomic only within one file
system) and its name is unique to the writer (pid and a random part), so two processes
writing the same file at once (a build and `agent-analytics report`) each publish a whole
file instead of mixing their bytes in one shared temporary. The data is flushed to disk
before the rename, so even a power cut leaves the old file or the new one. A temporary left
by a writer that was killed is removed by the next write of the same file.

A symbolic link is written through (the file it points to is replaced, the link stays), and
a target that is not a regular file (a FIFO, a device) or lies under /dev or /proc
(`/dev/stdout`, whatever it is redirected to) is appended to directly: a rename would replace
the device, pipe or redirected file with a new file.
"""

from __future__ import annotations

import glob
import os
import secrets
import stat
from pathlib import Path


def write_atomically(path: Path, content: str | bytes) -> Path:
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    if written_in_place(path):
        with open(path, "ab") as handle:
            handle.write(data)
        return path
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)
    return path


def written_in_place(path: Path) -> bool:
    """An existing target that is not a regular file, or one under /dev or /proc."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    special = str(Path(os.path.abspath(path))).startswith(("/dev/", "/proc/"))
    return special or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))


def _remove_leftovers(path: Path) -> None:
    """Temporaries of `path` whose writer process no longer exists."""
    for leftover in path.parent.glob(glob.escape(f".{path.name}.") + "*.tmp"):
        pid = leftover.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_exists(int(pid)):
            leftover.unlink(missing_ok=True)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX: the folder's entry list is flushed separately)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the rename is still atomic
    finally:
        os.close(fd)
