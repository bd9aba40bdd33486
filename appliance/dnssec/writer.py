"""Writing an SKR in its KSR's format family, atomically (the old file or the new, never half)."""

from __future__ import annotations

from pathlib import Path

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from appliance import atomic
from appliance.dnssec import iana, knot
from appliance.dnssec.model import Document, Key


def render(doc: Document, generator: str = "appliance") -> bytes:
    if doc.kind != "response":
        raise ValueError("only SKRs are written")
    if doc.format == "iana":
        return iana.write_response(doc).encode("utf-8")
    lines: list[str] = []
    key_lines: dict[Key, str] = {}  # the same keys recur in thousands of slots
    for b in doc.bundles:
        lines.append(knot.slot_header("response", b.inception))
        for k in b.keys:
            line = key_lines.get(k)
            if line is None:
                line = key_lines[k] = knot.format_record(k.owner, k.ttl, k.dnskey())
            lines.append(line)
        for r in sorted(b.records, key=lambda r: r.rdtype):  # CDNSKEY, then CDS (as keymgr)
            rdata = dns.rdata.from_text(
                dns.rdataclass.IN, dns.rdatatype.from_text(r.rdtype), r.text
            )
            lines.append(knot.format_record(r.owner, r.ttl, rdata))
        for s in b.signatures:
            lines.append(knot.format_record(s.owner, s.ttl, s.rrsig))
    stamp = doc.timestamp or doc.bundles[0].inception
    lines.append(knot.trailer("response", stamp, generator))
    return ("\n".join(lines) + "\n").encode("ascii")


def write(doc: Document, path: Path, generator: str = "appliance") -> bytes:
    data = render(doc, generator)
    atomic.write_bytes(path, data)
    return data
