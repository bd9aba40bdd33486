"""Knot DNS helpers for the DNSSEC tests: a keymgr ZSK side in a temp dir, and synthetic KSRs.

`KnotZsk` runs Knot's offline-KSK ZSK side (keymgr pregenerate / generate-ksr / validate-skr /
import-skr, kzonesign under faketime, kzonecheck, ldns-verify-zone) in its own folder.
`synthetic_ksr` writes a Knot-format KSR from software ZSKs, for unit tests without Knot.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.dnssec import knot
from appliance.dnssec.signer import SoftwareKeySigner
from tests.support.services import need_tool

_ALG_NAMES = {8: "rsasha256", 13: "ecdsap256sha256", 14: "ecdsap384sha384", 15: "ed25519"}

ZONE_TEXT = """$ORIGIN {zone}
$TTL 3600
@ IN SOA ns1 hostmaster 1 3600 900 604800 3600
@ IN NS ns1
ns1 IN A 192.0.2.1
www IN A 192.0.2.2
"""


@dataclass
class KnotZsk:
    """The zone operator's side: Knot with offline-ksk, keys and zone in `root`."""

    root: Path
    zone: str
    algorithm: int
    zsk_lifetime: str
    rrsig_lifetime: str
    rrsig_refresh: str
    zsk_size: int = 2048

    def __post_init__(self) -> None:
        self.keymgr = need_tool("keymgr", "knot-dnssecutils")
        self.faketime = need_tool("faketime", "faketime")
        need_tool("kzonesign", "knot-dnssecutils")
        need_tool("kzonecheck", "knot-dnssecutils")
        need_tool("ldns-verify-zone", "ldnsutils")
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        (self.root / "out").mkdir(exist_ok=True)
        size = f"    zsk-size: {self.zsk_size}\n" if self.algorithm == 8 else ""
        self.conf = self.root / "knot.conf"
        self.conf.write_text(
            f"database:\n  storage: {self.root}/db\n"
            "policy:\n  - id: offline\n"
            f"    algorithm: {_ALG_NAMES[self.algorithm]}\n{size}"
            "    manual: on\n    offline-ksk: on\n    dnskey-ttl: 3600\n    zone-max-ttl: 3600\n"
            f"    zsk-lifetime: {self.zsk_lifetime}\n    rrsig-lifetime: {self.rrsig_lifetime}\n"
            f"    rrsig-refresh: {self.rrsig_refresh}\n    propagation-delay: 1h\n"
            f"zone:\n  - domain: {self.zone}\n    storage: {self.root}\n"
            f"    file: {self.zone}zone\n    dnssec-signing: on\n    dnssec-policy: offline\n"
        )
        (self.root / f"{self.zone}zone").write_text(ZONE_TEXT.format(zone=self.zone))

    def run(
        self, *args: str, at: int | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        cmd = [*args]
        env = None
        if at is not None:
            # A frozen clock (no '@'): under load a running fake clock let pregenerate stamp
            # its keys a second late, and generate-ksr at +0 then found no active key.
            frozen = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            cmd = [self.faketime, "-f", frozen, *cmd]
            env = {**os.environ, "TZ": "UTC"}
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, check=False, env=env
        )
        if check and proc.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def keymgr_cmd(
        self, *args: str, at: int | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(self.keymgr, "-c", str(self.conf), self.zone, *args, at=at, check=check)

    def make_ksr(self, start: int, days: int) -> bytes:
        self.keymgr_cmd("pregenerate", f"+{days}d", at=start)
        proc = self.keymgr_cmd("generate-ksr", "+0", f"+{days}d", at=start)
        return proc.stdout.encode()

    def validate_skr(self, skr: Path) -> subprocess.CompletedProcess[str]:
        return self.keymgr_cmd("validate-skr", str(skr), check=False)

    def import_skr(self, skr: Path) -> None:
        self.keymgr_cmd("import-skr", str(skr))

    def sign_at(self, when: int) -> Path:
        out = self.root / "out"
        self.run("kzonesign", "-c", str(self.conf), "-o", str(out), self.zone, at=when)
        return out / f"{self.zone}zone"

    def zone_checks(self, signed: Path, when: int, ksk_file: Path) -> list[str]:
        """Problems found by kzonecheck and ldns-verify-zone at `when` (empty: all pass)."""
        problems: list[str] = []
        kz = self.run(
            "kzonecheck", "-o", self.zone, "-d", "on", "-t", str(when), str(signed), check=False
        )
        if kz.returncode != 0:
            problems.append(f"kzonecheck at {when}: {kz.stdout}{kz.stderr}")
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y%m%d%H%M%S")
        ldns = self.run(
            "ldns-verify-zone", "-k", str(ksk_file), "-t", stamp, str(signed), check=False
        )
        if ldns.returncode != 0:
            problems.append(f"ldns-verify-zone at {stamp}: {ldns.stdout}{ldns.stderr}")
        return problems


def synthetic_ksr(
    zone: str,
    zsks: Sequence[SoftwareKeySigner],
    slots: Sequence[tuple[datetime, Sequence[int]]],
    ttl: int = 3600,
) -> bytes:
    """A Knot-format KSR: each slot lists indexes into `zsks`."""
    lines: list[str] = []
    for when, indexes in slots:
        lines.append(knot.slot_header("request", when))
        for i in indexes:
            z = zsks[i]
            dnskey = _zsk_dnskey(z)
            lines.append(knot.format_record(zone, ttl, dnskey))
    lines.append(knot.trailer("request", slots[0][0], "Knot DNS 3.2.6"))
    return ("\n".join(lines) + "\n").encode()


def _zsk_dnskey(signer: SoftwareKeySigner) -> object:
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.DNSKEY import DNSKEY

    return DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, 256, 3, signer.algorithm, signer.dnskey_public_key
    )


def rollover_slots(start: datetime, days: int, roll_every: int) -> list[tuple[datetime, list[int]]]:
    """Slots like keymgr's: one ZSK, a pre-published successor, the swap, the removal."""
    slots: list[tuple[datetime, list[int]]] = []
    t, current, end = start, 0, start + timedelta(days=days)
    while t < end:
        slots.append((t, [current]))
        nxt = t + timedelta(days=roll_every)
        if nxt >= end:
            break
        slots.append((nxt - timedelta(hours=2), [current, current + 1]))
        slots.append((nxt - timedelta(hours=1), [current + 1, current]))
        current += 1
        t = nxt
    slots.append((end, [current]))
    return slots
