"""The image's air gap at build time: strip every network path, then prove none is left.

`strip ROOT REPORT` removes network kernel modules, network tools and masks network units in
an unpacked root file system and writes what it removed. `check ROOT` lists whatever is still
there (modules, tools, unmasked units, initramfs entries, boot lines without `nonetworking`)
and exits 1 if anything is, so the build stops. One list of rules serves both, so the check
cannot drift from the strip. Standard library only: it runs on the build host.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

#: Module directories (relative to lib/modules/VERSION/kernel/) that only serve networks:
#: NICs (wired, wireless, USB, WWAN, CAN), protocol stacks, radios, network block devices and
#: file systems, storage over networks, USB gadget Ethernet, VM sockets and vhost.
MODULE_DIRS: tuple[str, ...] = (
    "drivers/net",
    "net",
    # No signal in or out by other means either: radio and TV receivers, SDR tuners, IR,
    # cameras (drivers/media), microphones and speakers (sound).
    "drivers/media",
    "sound",
    "drivers/bluetooth",
    "drivers/nfc",
    "drivers/infiniband",
    "drivers/staging",
    "drivers/isdn",
    "drivers/atm",
    "drivers/vhost",
    "drivers/usb/gadget",
    "drivers/target",
    "drivers/nvme/target",
    "drivers/block/aoe",
    "drivers/block/drbd",
    "drivers/scsi/cxgbi",
    "drivers/scsi/bnx2i",
    "drivers/scsi/be2iscsi",
    "drivers/scsi/qedi",
    "drivers/scsi/fcoe",
    "drivers/scsi/libfc",
    "fs/nfs",
    "fs/nfs_common",
    "fs/nfsd",
    "fs/lockd",
    "fs/cifs",
    "fs/smb",
    "fs/ksmbd",
    "fs/ceph",
    "fs/9p",
    "fs/afs",
    "fs/coda",
    "fs/ocfs2",
    "fs/gfs2",
    "fs/dlm",
    "fs/orangefs",
    "fs/netfs",
    "fs/fscache",
    "fs/cachefiles",
)

#: Network modules that live in otherwise useful directories (by module name, any location).
MODULE_NAMES: frozenset[str] = frozenset(
    {
        "nbd",
        "rbd",
        "iscsi_tcp",
        "libiscsi",
        "libiscsi_tcp",
        "scsi_transport_iscsi",
        "nvme-tcp",
        "nvme-rdma",
        "nvme-fc",
        "nvme-fabrics",
        "firewire-net",
        "hv_sock",
        "vsock",
        "vsock_loopback",
        "vmw_vsock_virtio_transport",
        "vmw_vsock_virtio_transport_common",
        "vmw_vsock_vmci_transport",
        "vhost_vsock",
        "9pnet",
        "9pnet_virtio",
    }
)

_MODULE_SUFFIX = re.compile(r"\.ko(\.(xz|zst|gz))?$")

#: Programs that configure or use a network link. Looked up in every bin/sbin directory.
TOOLS: frozenset[str] = frozenset(
    {
        # DHCP clients and link configuration
        "dhclient", "dhclient-script", "dhcpcd", "udhcpc", "udhcpc6", "pump",
        "ip", "ifconfig", "route", "ifup", "ifdown", "ifquery", "ifenslave",
        "networkctl", "resolvectl", "NetworkManager", "nmcli", "nmtui", "connmand",
        "wpa_supplicant", "wpa_cli", "iw", "iwconfig", "iwlist", "rfkill-unblock",
        "hciconfig", "hcitool", "bluetoothctl", "bluetoothd", "pppd", "wvdial",
        # klibc network boot helpers
        "ipconfig", "nfsmount", "mount.nfs", "mount.nfs4", "mount.cifs", "mount.smb3",
        # network clients
        "wget", "curl", "nc", "netcat", "ncat", "socat", "ssh", "scp", "sftp", "telnet",
        "ftp", "tftp", "ftpget", "ftpput", "rsync", "ping", "ping6", "arping",
        "nslookup", "dig", "httpd", "inetd", "telnetd", "ntpd", "ntpdate",
    }
)  # fmt: skip

#: systemd's network daemons (in the systemd package itself: removed and masked).
DAEMONS: tuple[str, ...] = (
    "lib/systemd/systemd-networkd",
    "lib/systemd/systemd-networkd-wait-online",
    "lib/systemd/systemd-resolved",
    "lib/systemd/systemd-timesyncd",
    "usr/lib/systemd/systemd-networkd",
    "usr/lib/systemd/systemd-networkd-wait-online",
    "usr/lib/systemd/systemd-resolved",
    "usr/lib/systemd/systemd-timesyncd",
)

#: Units masked (linked to /dev/null) in etc/systemd/system.
MASKED_UNITS: tuple[str, ...] = (
    "systemd-networkd.service",
    "systemd-networkd.socket",
    "systemd-networkd-wait-online.service",
    "systemd-resolved.service",
    "systemd-timesyncd.service",
    "NetworkManager.service",
    "wpa_supplicant.service",
    "networking.service",
    "getty-static.service",
)

BIN_DIRS: tuple[str, ...] = (
    "bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin", "usr/lib/klibc/bin",
)  # fmt: skip

#: Kernel parameters every boot entry must carry (live-boot writes no network configuration,
#: and nothing persists between boots).
BOOT_PARAMS: tuple[str, ...] = ("nonetworking", "nopersistence")


def is_network_module(relpath: str) -> bool:
    """`relpath` is a module file path (in a root or an initramfs) that serves a network."""
    parts = relpath.split("/")
    name = parts[-1]
    if not _MODULE_SUFFIX.search(name):
        return False
    if _MODULE_SUFFIX.sub("", name).replace("_", "-") in {
        n.replace("_", "-") for n in MODULE_NAMES
    }:
        return True
    try:
        k = parts.index("kernel")
    except ValueError:
        return False
    inside = "/".join(parts[k + 1 :])
    return any(inside.startswith(d + "/") for d in MODULE_DIRS)


def is_network_tool(relpath: str) -> bool:
    """`relpath` is a program in a bin directory that configures or uses a network."""
    directory, _, name = relpath.rpartition("/")
    return name in TOOLS and directory.lstrip("./") in BIN_DIRS


def _walk(root: Path) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            yield name if rel == "." else f"{rel}/{name}"


def _module_trees(root: Path) -> list[tuple[str, Path]]:
    """lib/modules and usr/lib/modules, once each (merged /usr makes them the same)."""
    trees: list[tuple[str, Path]] = []
    seen: set[Path] = set()
    for base in ("lib/modules", "usr/lib/modules"):
        top = root / base
        if top.is_dir() and top.resolve() not in seen:
            seen.add(top.resolve())
            trees.append((base, top))
    return trees


def _modules_root(root: Path) -> list[str]:
    found: list[str] = []
    for base, top in _module_trees(root):
        found += [f"{base}/{p}" for p in _walk(top) if is_network_module(f"{base}/{p}")]
    return sorted(found)


def _tools_root(root: Path) -> list[str]:
    found: list[str] = []
    for d in BIN_DIRS:
        top = root / d
        if top.is_symlink() or not top.is_dir():
            continue  # merged /usr: bin -> usr/bin is the same directory
        for name in sorted(os.listdir(top)):
            if name in TOOLS and (os.path.lexists(top / name)):
                found.append(f"{d}/{name}")
    return found


def strip(root: Path) -> list[str]:
    """Remove every network path from the root file system at `root`; return what went."""
    removed = _modules_root(root) + _tools_root(root)
    removed += [d for d in DAEMONS if os.path.lexists(root / d) and not _via_symlink(root, d)]
    for rel in removed:
        (root / rel).unlink()
    for _base, top in _module_trees(root):
        _prune_empty(top)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True, exist_ok=True)
    for unit in MASKED_UNITS:
        target = units / unit
        if target.is_symlink() and os.readlink(target) == "/dev/null":
            continue
        if os.path.lexists(target):
            target.unlink()
        target.symlink_to("/dev/null")
        removed.append(f"masked {unit}")
    return removed


def _via_symlink(root: Path, rel: str) -> bool:
    """True when `rel` is only reachable through a merged-/usr symlink (counted once)."""
    first = rel.split("/")[0]
    return (root / first).is_symlink()


def _prune_empty(top: Path) -> None:
    for dirpath, _dirnames, _filenames in sorted(os.walk(top), key=lambda e: -len(e[0])):
        p = Path(dirpath)
        if p != top and not any(p.iterdir()):
            p.rmdir()


def check(
    root: Path, initramfs_listing: Iterable[str] = (), grub_cfgs: Iterable[str] = ()
) -> list[str]:
    """Everything network-related still in the image; empty means the build may go on."""
    problems = [f"network module: {m}" for m in _modules_root(root)]
    problems += [f"network tool: {t}" for t in _tools_root(root)]
    problems += [
        f"network daemon: {d}"
        for d in DAEMONS
        if os.path.lexists(root / d) and not _via_symlink(root, d)
    ]
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        if not (link.is_symlink() and os.readlink(link) == "/dev/null"):
            problems.append(f"unit not masked: {unit}")
    problems += _modules_dep(root)
    for entry in initramfs_listing:
        rel = entry.strip().lstrip("./")
        if not rel:
            continue
        if is_network_module(rel):
            problems.append(f"initramfs network module: {rel}")
        elif is_network_tool(rel):
            problems.append(f"initramfs network tool: {rel}")
    for text in grub_cfgs:
        problems += _boot_lines(text)
    return problems


def _modules_dep(root: Path) -> list[str]:
    """depmod must have run: modules.dep may not name a module that is gone or forbidden."""
    problems: list[str] = []
    for dep in sorted(root.glob("lib/modules/*/modules.dep")):
        for line in dep.read_text(encoding="utf-8", errors="replace").splitlines():
            module = line.split(":", 1)[0]
            if is_network_module(f"{dep.parent.relative_to(root)}/{module}"):
                problems.append(f"modules.dep lists network module {module}")
    return problems


def _boot_lines(text: str) -> list[str]:
    problems: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "linux":
            missing = [p for p in BOOT_PARAMS if p not in words]
            if missing:
                problems.append(f"boot entry without {' '.join(missing)}: {line.strip()}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("strip", help="remove network modules, tools and units")
    s.add_argument("root", type=Path)
    s.add_argument("report", type=Path, help="where to write the list of what was removed")
    c = sub.add_parser("check", help="fail if any network path is left")
    c.add_argument("root", type=Path)
    c.add_argument("--initramfs-list", type=Path, action="append", default=[])
    c.add_argument("--grub-cfg", type=Path, action="append", default=[])
    args = parser.parse_args(argv)
    if not args.root.is_dir():
        print(f"airgap: {args.root} is not a directory (give the unpacked root)", file=sys.stderr)
        return 2
    if args.command == "strip":
        removed = strip(args.root)
        args.report.write_text("".join(f"{r}\n" for r in removed), encoding="utf-8")
        modules = sum(1 for r in removed if "/modules/" in r)
        print(
            f"airgap: removed {modules} network module files, "
            f"{len(removed) - modules} tools/daemons/unit masks; list in {args.report}"
        )
        return 0
    listing: list[str] = []
    for f in args.initramfs_list:
        listing += f.read_text(encoding="utf-8").splitlines()
    cfgs = [f.read_text(encoding="utf-8") for f in args.grub_cfg]
    problems = check(args.root, listing, cfgs)
    if problems:
        print(
            f"AIR GAP CHECK FAILED: {len(problems)} network path(s) left in the image:",
            file=sys.stderr,
        )
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print(
            "Fix image/lib/airgap_image.py rules or the package list; never ship this.",
            file=sys.stderr,
        )
        return 1
    print(f"airgap: check passed ({len(listing)} initramfs entries, {len(cfgs)} boot configs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
