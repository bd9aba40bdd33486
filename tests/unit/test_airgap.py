from __future__ import annotations

from pathlib import Path

from appliance import airgap


def fake_root(
    tmp_path: Path, interfaces: list[str], radio: bool = False, route: bool = False
) -> Path:
    net = tmp_path / "sys/class/net"
    net.mkdir(parents=True)
    for name in interfaces:
        (net / name).mkdir()
    if radio:
        r = tmp_path / "sys/class/rfkill/rfkill0"
        r.mkdir(parents=True)
        (r / "soft").write_text("0\n")
        (r / "hard").write_text("0\n")
        (r / "name").write_text("phy0\n")
        (r / "type").write_text("wlan\n")
    proc = tmp_path / "proc/net"
    proc.mkdir(parents=True)
    header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
    rows = "eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" if route else ""
    (proc / "route").write_text(header + rows)
    (proc / "ipv6_route").write_text("")
    return tmp_path


def test_only_loopback_passes(tmp_path: Path) -> None:
    report = airgap.check(fake_root(tmp_path, ["lo"]))
    assert report.ok
    assert report.interfaces == ("lo",)


def test_interface_radio_and_route_each_fail(tmp_path: Path) -> None:
    report = airgap.check(fake_root(tmp_path, ["lo", "ens3"], radio=True, route=True))
    assert not report.ok
    text = " ".join(report.problems)
    assert "ens3" in text and "phy0" in text and "eth0 0.0.0.0" in text
    assert report.as_dict()["ok"] is False
