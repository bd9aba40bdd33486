"""KSR and SKR contents, independent of the file format they came in.

A request (KSR) and a response (SKR) share one shape: a header and a list of bundles, each
bundle a time slot with its DNSKEYs, its signatures and (Knot) any other records found.
`where` fields name the line or element in the input; they take no part in equality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import dns.name
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

Format = Literal["knot", "iana"]
Kind = Literal["request", "response"]


@dataclass(frozen=True)
class Key:
    """One DNSKEY as the file states it (stated key tag and id included, to be checked)."""

    owner: str
    ttl: int
    flags: int
    protocol: int
    algorithm: int
    public_key: bytes
    key_tag: int  # as stated in the file (IANA keyTag, Knot "id = N" comment)
    key_identifier: str = ""
    where: str = field(default="", compare=False)

    def dnskey(self) -> DNSKEY:
        return DNSKEY(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN,
            dns.rdatatype.DNSKEY,
            self.flags,
            self.protocol,
            self.algorithm,
            self.public_key,
        )

    @property
    def is_ksk(self) -> bool:
        return bool(self.flags & 0x0001)

    @property
    def is_revoked(self) -> bool:
        return bool(self.flags & 0x0080)


@dataclass(frozen=True)
class Signature:
    """One RRSIG over a bundle's RRset (DNSKEY, or CDS/CDNSKEY in Knot SKRs)."""

    owner: str
    ttl: int
    rrsig: RRSIG
    key_identifier: str = ""
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class Record:
    """Any other record in a bundle: CDS/CDNSKEY in an SKR, or an intruder in a KSR."""

    owner: str
    ttl: int
    rdtype: str
    text: str
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class AlgorithmPolicy:
    algorithm: int
    size: int
    exponent: int | None = None  # RSA only


@dataclass(frozen=True)
class KeyPolicy:
    """IANA's per-key-type policy block (RequestPolicy/ZSK, ResponsePolicy/KSK and ZSK)."""

    publish_safety: timedelta
    retire_safety: timedelta
    max_signature_validity: timedelta
    min_signature_validity: timedelta
    max_validity_overlap: timedelta
    min_validity_overlap: timedelta
    algorithms: tuple[AlgorithmPolicy, ...]


@dataclass(frozen=True)
class Bundle:
    id: str
    inception: datetime
    expiration: datetime
    keys: tuple[Key, ...]
    signatures: tuple[Signature, ...] = ()
    records: tuple[Record, ...] = ()
    #: IANA <Signer keyIdentifier=...>: the KSKs the requester asks to sign (empty: any).
    signers: tuple[str, ...] = ()
    where: str = field(default="", compare=False)

    @property
    def zsks(self) -> tuple[Key, ...]:
        return tuple(k for k in self.keys if not k.is_ksk)


@dataclass(frozen=True)
class Document:
    """A parsed KSR (kind request) or SKR (kind response)."""

    format: Format
    kind: Kind
    domain: str  # absolute, lower case, with the trailing dot
    bundles: tuple[Bundle, ...]
    id: str = ""
    serial: int = 0
    timestamp: datetime | None = None
    zsk_policy: KeyPolicy | None = None
    ksk_policy: KeyPolicy | None = None
    source: str = field(default="<memory>", compare=False)

    @property
    def zone(self) -> dns.name.Name:
        return dns.name.from_text(self.domain)


def canonical_domain(text: str) -> str:
    """'Example.COM' -> 'example.com.'; '.' stays '.'; ValueError when not a name."""
    return dns.name.from_text(text.strip()).canonicalize().to_text()
