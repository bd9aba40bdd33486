"""Files and folders from removable media: untrusted, so refused before a byte is used.

Media come from outside the secure room. A symbolic link can make a reader take a file of
the appliance instead; a FIFO or a device never ends; a huge file fills memory; a file the
appliance did not write, in a folder it did write, means someone else wrote there. Every
reader of the media goes through this one door, so each refuses the same things in the same
words, and wraps the refusal in its own layer's error (the layer knows what the file is for).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Collection
from pathlib import Path

#: Most unexpected names listed in one message; the rest are counted.
_LISTED = 5


class Refused(Exception):
    """Why a path on the media was refused, and what the operator can do about it."""

    def __init__(self, path: Path, reason: str, hint: str, kind: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason
        self.hint = hint
        #: link | missing | unreadable | not-regular | not-folder | too-large | unexpected
        self.kind = kind


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, never through a link."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer that never comes
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _refusal(path, exc) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Refused(
                path,
                "is not a regular file (a folder, FIFO or device)",
                "Name the file itself.",
                "not-regular",
            )
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            try:
                chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            except OSError as exc:
                raise _refusal(path, exc) from None
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise Refused(
            path,
            f"is larger than {_size(limit)}",
            "Check that this is the right file.",
            "too-large",
        )
    return b"".join(chunks)


def check_folder(
    folder: Path, expected: Collection[str], *, tolerate: Callable[[str], bool] | None = None
) -> None:
    """Refuse a folder that is a link, or holds a link or a name outside `expected`.

    `expected` names may have one level of sub-folder ("blobs/a.bin", or "blobs/" for one
    that may be empty); each sub-folder is checked the same way. `tolerate` names files the
    appliance itself may leave (a printed sheet) that are not part of what is read."""
    folder = Path(folder)
    tree: dict[str, set[str]] = {"": set()}
    for name in expected:
        head, slash, tail = name.partition("/")
        tree[""].add(head)
        if slash:  # "blobs/" alone: a sub-folder that may be empty
            names = tree.setdefault(head, set())
            if tail:
                names.add(tail)
    for sub, names in tree.items():
        where = folder / sub if sub else folder
        _check_one(where, names, tolerate if not sub else None)


def require_folder(folder: Path) -> None:
    """Refuse a path that is a link or anything but a folder."""
    try:
        info = os.lstat(folder)
    except OSError as exc:
        raise _refusal(Path(folder), exc) from None
    if stat.S_ISLNK(info.st_mode):
        raise Refused(
            Path(folder),
            "is a symbolic link",
            "Copy the folder itself onto the media (no links).",
            "link",
        )
    if not stat.S_ISDIR(info.st_mode):
        raise Refused(Path(folder), "is not a folder", "Name the folder itself.", "not-folder")


def _check_one(folder: Path, expected: set[str], tolerate: Callable[[str], bool] | None) -> None:
    require_folder(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise _refusal(folder, exc) from None
    links = [n for n in names if n in expected and os.path.islink(folder / n)]
    if links:
        raise Refused(
            folder,
            f"holds symbolic link(s) in place of files: {_listing(links)}",
            "Copy the files themselves onto the media (no links).",
            "link",
        )
    extra = [n for n in names if n not in expected and not (tolerate and tolerate(n))]
    if extra:
        raise Refused(
            folder,
            f"holds file(s) the appliance did not write there: {_listing(extra)}",
            "Someone or something else wrote to this folder: do not use it. Copy the folder "
            "again from the original media, with nothing added.",
            "unexpected",
        )


def _listing(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_LISTED])
    more = len(names) - _LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _size(limit: int) -> str:
    if limit >= 1024 * 1024 and limit % (1024 * 1024) == 0:
        return f"{limit // (1024 * 1024)} MiB"
    return f"{limit} bytes"


def _refusal(path: Path, exc: OSError) -> Refused:
    if exc.errno == errno.ELOOP or (
        exc.errno in (errno.EMLINK, errno.ENOTDIR) and os.path.islink(path)
    ):
        return Refused(
            path, "is a symbolic link", "Copy the file itself onto the media (no links).", "link"
        )
    if exc.errno == errno.ENOENT:
        return Refused(path, "is missing", "Check the media and the name.", "missing")
    return Refused(
        path, f"cannot be read ({exc.strerror})", "Check the media and the name.", "unreadable"
    )
