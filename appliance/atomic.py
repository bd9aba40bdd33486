"""Atomic file writes: a power cut leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: The temporary name `write_bytes` gives a file until it is renamed (mkstemp's 8 characters).
_LEFTOVER = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def is_leftover(name: str) -> bool:
    """True for the temporary file a write cut short by a power cut leaves behind."""
    return _LEFTOVER.fullmatch(name) is not None


def remove_leftovers(folder: Path) -> list[str]:
    """Delete what writes cut short left in `folder` (before writing or reading it again)."""
    removed: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            if is_leftover(entry.name) and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
    if removed:
        fsync_dir(folder)
    return sorted(removed)


def write_bytes(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write to a temporary file beside `path`, fsync it, rename over `path`, fsync the dir."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def write_text(path: Path, text: str, mode: int = 0o644) -> None:
    write_bytes(path, text.encode("utf-8"), mode)
