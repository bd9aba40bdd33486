"""KSK publication: what the parent zone and resolvers need, derived from the KSK's public key.

DNSKEY (flags 257), key tag, DS with SHA-256 and SHA-384, and the RFC 7958 trust-anchor XML
(the format IANA publishes for the root at data.iana.org/root-anchors).
"""

from __future__ import annotations

import xml.sax.saxutils
from dataclasses import dataclass
from datetime import UTC, datetime

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.dnskeybase import Flag

from appliance.dnssec.errors import SigningError
from appliance.dnssec.signer import SIGNING_ALGORITHMS, DnssecKeySigner

DS_DIGESTS = {2: "SHA256", 4: "SHA384"}


@dataclass(frozen=True)
class KskPublication:
    zone: str
    dnskey: DNSKEY
    key_tag: int
    ds: tuple[str, ...]  # presentation rdata of each DS, SHA-256 first

    def dnskey_text(self, ttl: int = 172800) -> str:
        return f"{self.zone} {ttl} IN DNSKEY {self.dnskey.to_text()}"

    def ds_text(self, ttl: int = 86400) -> list[str]:
        return [f"{self.zone} {ttl} IN DS {ds}" for ds in self.ds]


def ksk_dnskey(signer: DnssecKeySigner, revoked: bool = False) -> DNSKEY:
    if signer.algorithm not in SIGNING_ALGORITHMS:
        raise SigningError(f"DNSSEC algorithm {signer.algorithm} is not allowed for a KSK.")
    flags = int(Flag.ZONE | Flag.SEP) | (int(Flag.REVOKE) if revoked else 0)
    return DNSKEY(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN,
        dns.rdatatype.DNSKEY,
        flags,
        3,
        signer.algorithm,
        signer.dnskey_public_key,
    )


def publish(zone: str, signer: DnssecKeySigner) -> KskPublication:
    name = dns.name.from_text(zone)
    key = ksk_dnskey(signer)
    ds = tuple(dns.dnssec.make_ds(name, key, digest).to_text() for digest in DS_DIGESTS.values())
    return KskPublication(zone=name.to_text(), dnskey=key, key_tag=dns.dnssec.key_id(key), ds=ds)


def trust_anchor_xml(
    publication: KskPublication,
    *,
    anchor_id: str,
    valid_from: datetime,
    valid_until: datetime | None = None,
) -> str:
    """RFC 7958 TrustAnchor document (one KeyDigest per DS digest)."""

    def ts(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    esc = xml.sax.saxutils.escape
    until = f' validUntil="{ts(valid_until)}"' if valid_until else ""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<TrustAnchor id="{esc(anchor_id)}" source="appliance">',
        f"<Zone>{esc(publication.zone)}</Zone>",
    ]
    for ds in publication.ds:
        tag, alg, digest_type, digest = ds.split(" ", 3)
        lines += [
            f'<KeyDigest id="{esc(anchor_id)}-{tag}-{digest_type}" '
            f'validFrom="{ts(valid_from)}"{until}>',
            f"<KeyTag>{tag}</KeyTag>",
            f"<Algorithm>{alg}</Algorithm>",
            f"<DigestType>{digest_type}</DigestType>",
            f"<Digest>{digest.replace(' ', '').upper()}</Digest>",
            "</KeyDigest>",
        ]
    lines.append("</TrustAnchor>")
    return "\n".join(lines) + "\n"
