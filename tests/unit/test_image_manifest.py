"""The release manifest (image/lib/release_manifest.py): hashes, PGP words, inputs, signature."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from appliance import pgpwords
from tests.support.services import need_tool

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "release_manifest", REPO / "image/lib/release_manifest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rm = _load()


def _release(out: Path) -> Path:
    out.mkdir()
    iso = out / "ceremony-appliance.iso"
    iso.write_bytes(b"\x00" * 4096 + b"ISO")
    (out / "packages.manifest").write_text("bash\t5.2.15-2+b7\tamd64\npcscd\t1.9.9-2\tamd64\n")
    (out / "wheels.manifest").write_text("ab" * 32 + "  textual-8.2.8-py3-none-any.whl\n")
    (out / "build-tools.manifest").write_text("# tools\nxorriso\t1.5.4-4\n")
    (out / "airgap-removed.txt").write_text("usr/sbin/dhclient\nmasked systemd-networkd.service\n")
    return iso


def _args(out: Path, iso: Path, *extra: str) -> list[str]:
    return [
        "--repo",
        str(REPO),
        "--out",
        str(out),
        "--iso",
        str(iso),
        "--squashfs-sha256",
        "cd" * 32,
        "--version",
        "0.1.0",
        "--commit",
        "f" * 40,
        "--dirty",
        "false",
        "--mirror",
        "http://deb.debian.org/debian",
        "--suite",
        "bookworm",
        "--source-date-epoch",
        "1796402127",
        "--kernel",
        "6.1.0-99-amd64",
        *extra,
    ]


def test_manifest_names_the_iso_hash_in_hex_and_words(tmp_path: Path) -> None:
    out = tmp_path / "out"
    iso = _release(out)
    assert rm.main(_args(out, iso)) == 0
    m = json.loads((out / "release-manifest.json").read_text())
    digest = hashlib.sha256(iso.read_bytes()).hexdigest()
    assert m["iso"]["sha256"] == digest
    assert pgpwords.decode(m["iso"]["sha256_pgp_words"]).hex() == digest
    assert m["git_commit"] == "f" * 40 and m["version"] == "0.1.0"
    assert m["build_inputs"]["source_date_epoch"] == 1796402127
    assert (
        m["build_inputs"]["packages_txt_sha256"]
        == hashlib.sha256((REPO / "image/packages.txt").read_bytes()).hexdigest()
    )
    assert m["build_inputs"]["build_tools"] == ["xorriso\t1.5.4-4"]
    assert m["packages"][1] == {"name": "pcscd", "version": "1.9.9-2", "arch": "amd64"}
    assert m["wheels"] == [{"file": "textual-8.2.8-py3-none-any.whl", "sha256": "ab" * 32}]
    assert m["airgap_removed"] == 2
    sums = (out / "SHA256SUMS").read_text().splitlines()
    assert f"{digest}  ceremony-appliance.iso" in sums
    assert len(sums) == 6


def test_overlay_hash_changes_with_a_file_mode(tmp_path: Path) -> None:
    top = tmp_path / "overlay"
    (top / "etc").mkdir(parents=True)
    f = top / "etc/a.conf"
    f.write_text("x")
    f.chmod(0o644)
    before = rm.tree_sha256(top)
    f.chmod(0o444)
    assert rm.tree_sha256(top) != before


def test_signed_with_a_configured_release_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("gpg", "gnupg")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "Release Test <release@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    out = tmp_path / "out"
    iso = _release(out)
    monkeypatch.setenv("GNUPGHOME", str(home))
    assert rm.main(_args(out, iso, "--sign-key", "release@example.invalid")) == 0
    sig = out / "release-manifest.json.asc"
    ok = subprocess.run(
        ["gpg", "--batch", "--verify", str(sig), str(out / "release-manifest.json")],
        env=env,
        capture_output=True,
    )
    assert ok.returncode == 0
    assert "release-manifest.json.asc" in (out / "SHA256SUMS").read_text()
    (out / "release-manifest.json").write_text("{}")
    bad = subprocess.run(
        ["gpg", "--batch", "--verify", str(sig), str(out / "release-manifest.json")],
        env=env,
        capture_output=True,
    )
    assert bad.returncode != 0
    subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)
    shutil.rmtree(home, ignore_errors=True)


def test_missing_input_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    iso = _release(out)
    (out / "packages.manifest").unlink()
    with pytest.raises(FileNotFoundError):
        rm.main(_args(out, iso))
