"""appliance.media: the one door for files and folders from the media."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance import atomic, media


def test_read_file_reads_a_regular_file_up_to_its_limit(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 10)
    assert media.read_file(tmp_path / "f", 10) == b"x" * 10
    with pytest.raises(media.Refused) as err:
        media.read_file(tmp_path / "f", 9)
    assert err.value.kind == "too-large" and "larger than 9 bytes" in str(err.value)


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: p.symlink_to(p.parent / "target"), "link"),
        (lambda p: os.mkfifo(p), "not-regular"),
        (lambda p: p.mkdir(), "not-regular"),
        (lambda p: None, "missing"),
    ],
)
def test_read_file_refuses_what_is_not_a_plain_file(tmp_path: Path, make, kind) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "target").write_bytes(b"of the appliance")
    make(tmp_path / "f")
    with pytest.raises(media.Refused) as err:
        media.read_file(tmp_path / "f", 100)
    assert err.value.kind == kind and err.value.hint


def test_check_folder_lists_strangers_and_links_by_name(tmp_path: Path) -> None:
    root = tmp_path / "b"
    (root / "blobs").mkdir(parents=True)
    (root / "manifest.json").write_bytes(b"{}")
    (root / "blobs" / "a.bin").write_bytes(b"a")
    expected = ["manifest.json", "blobs/a.bin"]
    media.check_folder(root, expected)
    media.check_folder(root, ["manifest.json", "blobs/", "blobs/a.bin", "blobs/later.bin"])
    for n in range(7):
        (root / "blobs" / f"x{n}").write_bytes(b"")
    with pytest.raises(media.Refused, match=r"'x0', 'x1', 'x2', 'x3', 'x4' and 2 more") as err:
        media.check_folder(root, expected)
    assert err.value.kind == "unexpected" and err.value.path == root / "blobs"
    for n in range(7):
        (root / "blobs" / f"x{n}").unlink()
    (root / "sheet.pdf").write_bytes(b"")
    with pytest.raises(media.Refused, match="'sheet.pdf'"):
        media.check_folder(root, expected)
    media.check_folder(root, expected, tolerate=lambda name: name == "sheet.pdf")
    (root / "sheet.pdf").unlink()
    (root / "blobs" / "a.bin").unlink()
    (root / "blobs" / "a.bin").symlink_to(root / "manifest.json")
    with pytest.raises(media.Refused, match="symbolic link") as err:
        media.check_folder(root, expected)
    assert err.value.kind == "link"
    (tmp_path / "link").symlink_to(root)
    with pytest.raises(media.Refused, match="link is a symbolic link"):
        media.check_folder(tmp_path / "link", expected)
    with pytest.raises(media.Refused, match="is not a folder"):
        media.check_folder(root / "manifest.json", [])


def test_atomic_leftovers_are_recognised_and_removed(tmp_path: Path) -> None:
    atomic.write_bytes(tmp_path / "kept.txt", b"kept")
    names = [".skr.txt.ab12cd_9.tmp", ".sheet.pdf.zz99aa00.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"torn")
    (tmp_path / ".hidden.tmp").write_bytes(b"not ours")  # no mkstemp part: left alone
    assert all(atomic.is_leftover(n) for n in names)
    assert not atomic.is_leftover("kept.txt") and not atomic.is_leftover(".hidden.tmp")
    assert atomic.remove_leftovers(tmp_path) == sorted(names)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.tmp", "kept.txt"]
    assert atomic.remove_leftovers(tmp_path / "absent") == []
