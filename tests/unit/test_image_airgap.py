"""The image's air-gap strip and check (image/lib/airgap_image.py) on small fake root trees.

The real build runs the same code on the real root; here a planted NIC driver, DHCP client,
unmasked unit, stale modules.dep, initramfs applet or boot line must each fail the check.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
KVER = "6.1.0-99-amd64"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "airgap_image", REPO / "image/lib/airgap_image.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["airgap_image"] = module
    spec.loader.exec_module(module)
    return module


ai = _load()


def _file(root: Path, rel: str, text: str = "x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _fake_root(root: Path) -> Path:
    """A merged-/usr root with network and non-network modules, tools and daemons."""
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/lib").mkdir(parents=True)
    for top in ("bin", "sbin", "lib"):
        (root / top).symlink_to(f"usr/{top}")
    k = f"lib/modules/{KVER}/kernel"
    for rel in (
        "drivers/net/ethernet/intel/e1000/e1000.ko",
        "drivers/net/wireless/intel/iwlwifi/iwlwifi.ko.xz",
        "net/bluetooth/bluetooth.ko",
        "net/wireless/cfg80211.ko",
        "fs/nfs/nfs.ko",
        "drivers/block/nbd.ko",
        "drivers/nvme/host/nvme-tcp.ko",
        "drivers/usb/gadget/function/usb_f_ecm.ko",
        # kept: storage, USB, input, file systems for media
        "drivers/block/loop.ko",
        "drivers/usb/storage/usb-storage.ko",
        "drivers/nvme/host/nvme.ko",
        "fs/vfat/vfat.ko",
        "fs/squashfs/squashfs.ko",
    ):
        _file(root, f"{k}/{rel}")
    _file(root, f"lib/modules/{KVER}/modules.dep", "kernel/fs/vfat/vfat.ko:\n")
    for rel in (
        "usr/sbin/dhclient",
        "usr/bin/ip",
        "usr/bin/wget",
        "usr/bin/ls",
        "usr/lib/systemd/systemd-networkd",
        "usr/lib/systemd/systemd-udevd",
    ):
        _file(root, rel)
    return root


def test_strip_removes_network_paths_and_keeps_the_rest(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    removed = ai.strip(root)
    k = root / f"lib/modules/{KVER}/kernel"
    assert not (k / "drivers/net").exists()
    assert not (k / "net").exists()
    assert not (k / "fs/nfs").exists()
    assert not (k / "drivers/block/nbd.ko").exists()
    assert not (k / "drivers/nvme/host/nvme-tcp.ko").exists()
    assert not (k / "drivers/usb/gadget").exists()
    for kept in (
        "drivers/block/loop.ko",
        "drivers/usb/storage/usb-storage.ko",
        "drivers/nvme/host/nvme.ko",
        "fs/vfat/vfat.ko",
        "fs/squashfs/squashfs.ko",
    ):
        assert (k / kept).is_file(), kept
    assert not (root / "usr/sbin/dhclient").exists()
    assert not (root / "usr/bin/ip").exists()
    assert (root / "usr/bin/ls").exists()
    assert not (root / "usr/lib/systemd/systemd-networkd").exists()
    assert (root / "usr/lib/systemd/systemd-udevd").exists()
    unit = root / "etc/systemd/system/systemd-networkd.service"
    assert unit.is_symlink() and str(unit.readlink()) == "/dev/null"
    assert "usr/sbin/dhclient" in removed
    assert f"lib/modules/{KVER}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko" in removed
    assert ai.check(root) == []


def test_check_finds_a_planted_nic_driver(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    ai.strip(root)
    _file(root, f"lib/modules/{KVER}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko")
    problems = ai.check(root)
    assert problems == [
        f"network module: lib/modules/{KVER}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko"
    ]


def test_check_finds_a_planted_dhcp_client_and_an_unmasked_unit(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    ai.strip(root)
    _file(root, "usr/sbin/dhclient")
    (root / "etc/systemd/system/systemd-resolved.service").unlink()
    problems = ai.check(root)
    assert "network tool: usr/sbin/dhclient" in problems
    assert "unit not masked: systemd-resolved.service" in problems


def test_check_finds_a_stale_modules_dep(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    ai.strip(root)
    _file(
        root,
        f"lib/modules/{KVER}/modules.dep",
        "kernel/drivers/net/ethernet/intel/e1000/e1000.ko:\n",
    )
    assert any("modules.dep lists network module" in p for p in ai.check(root))


def test_check_reads_the_initramfs_listing_and_boot_menu(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    ai.strip(root)
    listing = [
        ".",
        "usr/bin/busybox",
        "usr/bin/sh",
        "usr/bin/udhcpc",
        "usr/lib/klibc/bin/ipconfig",
        f"usr/lib/modules/{KVER}/kernel/drivers/net/virtio_net.ko",
        f"usr/lib/modules/{KVER}/kernel/fs/squashfs/squashfs.ko",
    ]
    grub = (
        "menuentry a {\n  linux /live/vmlinuz boot=live nonetworking nopersistence\n}\n"
        "menuentry b {\n  linux /live/vmlinuz boot=live quiet\n}\n"
    )
    problems = ai.check(root, listing, [grub])
    assert problems == [
        "initramfs network tool: usr/bin/udhcpc",
        "initramfs network tool: usr/lib/klibc/bin/ipconfig",
        f"initramfs network module: usr/lib/modules/{KVER}/kernel/drivers/net/virtio_net.ko",
        "boot entry without nonetworking nopersistence: linux /live/vmlinuz boot=live quiet",
    ]


@pytest.mark.parametrize(
    ("path", "network"),
    [
        ("lib/modules/v/kernel/drivers/net/virtio_net.ko.zst", True),
        ("lib/modules/v/kernel/drivers/scsi/iscsi_tcp.ko", True),
        ("lib/modules/v/kernel/drivers/firewire/firewire-net.ko", True),
        ("lib/modules/v/kernel/drivers/firewire/firewire-ohci.ko", False),
        ("lib/modules/v/kernel/drivers/netdevsim-notes.txt", False),
        ("lib/modules/v/kernel/drivers/input/keyboard/atkbd.ko", False),
    ],
)
def test_module_rules(path: str, network: bool) -> None:
    assert ai.is_network_module(path) is network


def test_cli_fails_the_build_and_names_what_is_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _fake_root(tmp_path)
    report = tmp_path / "removed.txt"
    assert ai.main(["strip", str(root), str(report)]) == 0
    assert "usr/sbin/dhclient" in report.read_text().splitlines()
    assert ai.main(["check", str(root)]) == 0
    _file(root, "usr/bin/curl")
    assert ai.main(["check", str(root)]) == 1
    err = capsys.readouterr().err
    assert "AIR GAP CHECK FAILED" in err and "network tool: usr/bin/curl" in err


def test_initramfs_hook_removes_network_applets_and_keeps_the_shell(tmp_path: Path) -> None:
    import subprocess

    hook = REPO / "image/overlay/etc/initramfs-tools/hooks/zz-appliance-airgap"
    dest = tmp_path / "initramfs"
    kept = ["bin/sh", "usr/bin/busybox", "bin/mount", "usr/bin/modprobe"]
    gone = [
        "bin/udhcpc",
        "usr/bin/wget",
        "bin/ip",
        "bin/nc",
        "usr/lib/klibc/bin/ipconfig",
        "bin/nfsmount",
        "sbin/ifconfig",
    ]
    for rel in kept + gone:
        _file(dest, rel)
    prereqs = subprocess.run(["sh", str(hook), "prereqs"], capture_output=True, text=True)
    assert prereqs.stdout.split() == ["zz-busybox", "klibc-utils"]
    subprocess.run(
        ["sh", str(hook)], env={"DESTDIR": str(dest), "PATH": "/usr/bin:/bin"}, check=True
    )
    assert [r for r in kept if not (dest / r).exists()] == []
    assert [r for r in gone if (dest / r).exists()] == []
