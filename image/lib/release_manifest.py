"""The release manifest: what an auditor needs to check and to rebuild an ISO.

Written beside the ISO by image/build: the ISO's SHA-256 as hex and as PGP words (read
aloud in the ceremony room), the squashfs hash, the appliance version and git commit, the
build inputs (suite, mirror, SOURCE_DATE_EPOCH, hashes of the package list, requirements,
overlay and GRUB menu, the build tools' versions), every Debian package and wheel, and the
air-gap strip report's size. Also SHA256SUMS for the files of the release.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

MANIFEST = "release-manifest.json"
#: Files of a release, hashed into SHA256SUMS when present.
RELEASE_FILES = (
    "ceremony-appliance.iso",
    MANIFEST,
    MANIFEST + ".asc",
    "packages.manifest",
    "wheels.manifest",
    "build-tools.manifest",
    "airgap-removed.txt",
)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_sha256(top: Path) -> str:
    """One hash over a folder: relative paths, modes and contents, in sorted order."""
    h = hashlib.sha256()
    for p in sorted(top.rglob("*")):
        rel = p.relative_to(top).as_posix()
        if p.is_symlink():
            h.update(f"L {rel} {p.readlink()}\n".encode())
        elif p.is_file():
            h.update(f"F {rel} {p.stat().st_mode & 0o777:o} {sha256_file(p)}\n".encode())
        elif p.is_dir():
            h.update(f"D {rel}\n".encode())
    return h.hexdigest()


def parse_packages(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        cols = line.split("\t")
        if len(cols) >= 3:
            rows.append({"name": cols[0], "version": cols[1], "arch": cols[2]})
    return rows


def parse_wheels(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            rows.append({"file": name.strip(), "sha256": digest})
    return rows


def build_manifest(
    *,
    repo: Path,
    out: Path,
    iso: Path,
    squashfs_sha256: str,
    version: str,
    commit: str,
    dirty: bool,
    mirror: str,
    suite: str,
    source_date_epoch: int,
    kernel: str,
) -> dict[str, object]:
    from appliance import pgpwords  # the checkout's own word list

    iso_sha = sha256_file(iso)
    image = repo / "image"
    tools = (out / "build-tools.manifest").read_text(encoding="utf-8").splitlines()
    removed = (out / "airgap-removed.txt").read_text(encoding="utf-8").splitlines()
    return {
        "name": "ceremony-appliance",
        "version": version,
        "git_commit": commit,
        "git_dirty": dirty,
        "iso": {
            "file": iso.name,
            "size": iso.stat().st_size,
            "sha256": iso_sha,
            "sha256_pgp_words": pgpwords.phrase(bytes.fromhex(iso_sha)),
        },
        "squashfs_sha256": squashfs_sha256,
        "build_inputs": {
            "suite": suite,
            "mirror": mirror,
            "source_date_epoch": source_date_epoch,
            "kernel": kernel,
            "packages_txt_sha256": sha256_file(image / "packages.txt"),
            "requirements_txt_sha256": sha256_file(image / "requirements.txt"),
            "grub_cfg_sha256": sha256_file(image / "grub.cfg"),
            "overlay_sha256": tree_sha256(image / "overlay"),
            "build_tools": [t for t in tools if t and not t.startswith("#")],
        },
        "airgap_removed": len(removed),
        "packages": parse_packages((out / "packages.manifest").read_text(encoding="utf-8")),
        "wheels": parse_wheels((out / "wheels.manifest").read_text(encoding="utf-8")),
    }


def write_sums(out: Path) -> None:
    lines = [f"{sha256_file(out / n)}  {n}\n" for n in RELEASE_FILES if (out / n).is_file()]
    (out / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def sign(out: Path, key: str) -> Path:
    """Detached ASCII-armoured GnuPG signature of the manifest with the release key."""
    signature = out / (MANIFEST + ".asc")
    gpg = shutil.which("gpg")
    if gpg is None:
        raise SystemExit("release key configured but gpg is missing: apt-get install gnupg")
    subprocess.run(  # noqa: S603 - fixed program; the key id is one argument
        [gpg, "--batch", "--yes", "--local-user", key, "--armor", "--detach-sign",
         "--output", str(signature), str(out / MANIFEST)],
        check=True,
    )  # fmt: skip
    return signature


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write the release manifest beside the ISO")
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--iso", type=Path, required=True)
    p.add_argument("--squashfs-sha256", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--commit", required=True)
    p.add_argument("--dirty", choices=("true", "false"), required=True)
    p.add_argument("--mirror", required=True)
    p.add_argument("--suite", required=True)
    p.add_argument("--source-date-epoch", type=int, required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--sign-key", default="", help="GnuPG key id of the release key")
    a = p.parse_args(argv)
    sys.path.insert(0, str(a.repo))
    manifest = build_manifest(
        repo=a.repo,
        out=a.out,
        iso=a.iso,
        squashfs_sha256=a.squashfs_sha256,
        version=a.version,
        commit=a.commit,
        dirty=a.dirty == "true",
        mirror=a.mirror,
        suite=a.suite,
        source_date_epoch=a.source_date_epoch,
        kernel=a.kernel,
    )
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    (a.out / MANIFEST).write_text(text, encoding="utf-8")
    if a.sign_key:
        print(f"signed with {a.sign_key}: {sign(a.out, a.sign_key).name}")
    write_sums(a.out)
    iso = manifest["iso"]
    assert isinstance(iso, dict)  # noqa: S101 - built just above
    print(f"ISO sha256 {iso['sha256']}")
    print(f"    words  {iso['sha256_pgp_words']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
