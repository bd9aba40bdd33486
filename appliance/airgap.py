"""Is this machine cut off from every network? Interfaces, radios and routes.

The live image ships no network drivers; this check is the second line, run at start and
before each ceremony, its result written to the journal. It reads /sys and /proc only, so it
works without network tools installed (there are none on the image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AirgapReport:
    interfaces: tuple[str, ...]
    radios_unblocked: tuple[str, ...]
    routes: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "interfaces": list(self.interfaces),
            "radios_unblocked": list(self.radios_unblocked),
            "routes": list(self.routes),
            "problems": list(self.problems),
        }


def check(root: Path = Path("/")) -> AirgapReport:
    """Inspect `root` (a test passes a fake tree) for any path off this machine."""
    interfaces = tuple(sorted(_interfaces(root)))
    radios = tuple(sorted(_unblocked_radios(root)))
    routes = tuple(_routes(root))
    problems: list[str] = []
    foreign = [i for i in interfaces if i != "lo"]
    if foreign:
        problems.append(
            "network interface(s) present: "
            + ", ".join(foreign)
            + " (the appliance must have only 'lo'; boot the appliance image, "
            "or unplug and disable the network hardware)"
        )
    if radios:
        problems.append(
            "radio(s) not blocked: " + ", ".join(radios) + " (block them: rfkill block all)"
        )
    if routes:
        problems.append("route(s) off this machine: " + ", ".join(routes))
    return AirgapReport(interfaces, radios, routes, tuple(problems))


def _interfaces(root: Path) -> list[str]:
    net = root / "sys/class/net"
    try:
        return [p.name for p in net.iterdir()]
    except OSError:
        return []


def _unblocked_radios(root: Path) -> list[str]:
    found: list[str] = []
    rfkill = root / "sys/class/rfkill"
    try:
        entries = list(rfkill.iterdir())
    except OSError:
        return found
    for entry in entries:
        soft = _read(entry / "soft")
        hard = _read(entry / "hard")
        if soft == "0" and hard == "0":
            found.append(f"{_read(entry / 'name') or entry.name} ({_read(entry / 'type')})")
    return found


def _routes(root: Path) -> list[str]:
    routes: list[str] = []
    v4 = _read(root / "proc/net/route")
    for line in v4.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 2 and cols[0] != "lo":
            routes.append(f"{cols[0]} {_hex_ipv4(cols[1])}")
    v6 = _read(root / "proc/net/ipv6_route")
    for line in v6.splitlines():
        cols = line.split()
        if len(cols) >= 10 and cols[9] != "lo":
            routes.append(f"{cols[9]} ipv6")
    return routes


def _hex_ipv4(value: str) -> str:
    try:
        raw = int(value, 16).to_bytes(4, "little")
    except ValueError:
        return value
    return ".".join(str(b) for b in raw)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""
