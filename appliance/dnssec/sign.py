"""Signing a checked KSR: per bundle, the DNSKEY RRset (ZSKs + KSKs) signed by the KSK(s).

dnspython builds every RRSIG (`dns.rdtypes.ANY.RRSIG.RRSIG`) and every signature comes from
the KSK through `DnssecPrivateKey` (the dnspython seam over the signer port). Speed: the
canonical wire form of an RRset is built once and reused for every slot that signs the same
RRset (Knot refreshes the same key set many times), and each RRSIG is constructed once with
its signature (no template + `Rdata.replace`). Safety: every RRSIG is verified with the
KSK's public key over the signing data rebuilt from the finished RRSIG, and the first RRSIG
of every distinct RRset is also validated end to end by `dns.dnssec.validate_rrsig`, which
builds its own signing data: so our cached form is checked against dnspython's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import dns.dnssec
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
from dns.rdtypes.ANY.CDNSKEY import CDNSKEY
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from appliance.dnssec import times
from appliance.dnssec.errors import SigningError
from appliance.dnssec.model import (
    AlgorithmPolicy,
    Bundle,
    Document,
    Key,
    KeyPolicy,
    Record,
    Signature,
)
from appliance.dnssec.policy import KskInfo, ZonePolicy, rsa_parameters
from appliance.dnssec.publish import ksk_dnskey
from appliance.dnssec.signer import DnssecKeySigner, DnssecPrivateKey


@dataclass(frozen=True)
class Ksk:
    """A KSK that signs (or, revoked, is published and self-signs during a rollover)."""

    signer: DnssecKeySigner
    identifier: str  # the HSM label; IANA keyIdentifier
    revoked: bool = False

    def info(self) -> KskInfo:
        return KskInfo(self.signer.algorithm, dns.dnssec.key_id(self.dnskey()), self.identifier)

    def dnskey(self) -> DNSKEY:
        return ksk_dnskey(self.signer, revoked=self.revoked)


@dataclass
class SignStats:
    rrsigs: int = 0
    rrsets: int = 0
    full_validations: int = 0


class _RRset:
    """One RRset's canonical wire form (RFC 4034 6.2-6.3), built once, signed many times."""

    def __init__(self, owner: dns.name.Name, ttl: int, rdatas: Sequence[dns.rdata.Rdata]):
        self.owner = owner
        self.ttl = ttl
        self.rdtype = rdatas[0].rdtype
        self.rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, self.rdtype)
        for rd in rdatas:
            self.rdataset.add(rd, ttl)
        head = owner.to_digestable() + struct.pack("!HHI", self.rdtype, dns.rdataclass.IN, ttl)
        wire = b"".join(
            head + struct.pack("!H", len(d)) + d
            for d in sorted(rd.to_digestable() for rd in self.rdataset)
        )
        self.wire = wire
        self.labels = len(owner) - 1 - (1 if owner.is_wild() else 0)
        self.validated: set[int] = set()


class _KeySigner:
    def __init__(self, ksk: Ksk, zone: dns.name.Name):
        self.ksk = ksk
        self.private = DnssecPrivateKey(ksk.signer)
        self.dnskey = ksk.dnskey()
        self.tag = dns.dnssec.key_id(self.dnskey)
        self.public = self.private.public_key()
        self.zone = zone
        self.signer_wire = zone.to_digestable()

    def sign(self, rrset: _RRset, inception: int, expiration: int, stats: SignStats) -> RRSIG:
        alg = self.dnskey.algorithm
        header = struct.pack(
            "!HBBIIIH", rrset.rdtype, alg, rrset.labels, rrset.ttl, expiration, inception,
            self.tag,
        )
        # Unverified here because _verify() checks every RRSIG right below.
        signature = self.private.sign_fast(header + self.signer_wire + rrset.wire)
        rrsig = RRSIG(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN, dns.rdatatype.RRSIG, rrset.rdtype, alg, rrset.labels,
            rrset.ttl, expiration, inception, self.tag, self.zone, signature,
        )
        self._verify(rrsig, rrset, stats)
        stats.rrsigs += 1
        return rrsig

    def _verify(self, rrsig: RRSIG, rrset: _RRset, stats: SignStats) -> None:
        # The signed data rebuilt from the finished RRSIG's own fields (RFC 4034 3.1.8.1).
        header = struct.pack(
            "!HBBIIIH", rrsig.type_covered, rrsig.algorithm, rrsig.labels, rrsig.original_ttl,
            rrsig.expiration, rrsig.inception, rrsig.key_tag,
        )
        data = header + rrsig.signer.to_digestable() + rrset.wire
        try:
            self.public.verify(rrsig.signature, data)
            if self.tag not in rrset.validated:
                keys = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
                keys.add(self.dnskey, 0)
                dns.dnssec.validate_rrsig(
                    (rrset.owner, rrset.rdataset), rrsig, {self.zone: keys},
                    now=rrsig.inception,
                )
                rrset.validated.add(self.tag)
                stats.full_validations += 1
        except Exception as exc:
            raise SigningError(
                f"An RRSIG by KSK {self.tag} did not verify ({type(exc).__name__}: {exc}).",
                hint="Stop: nothing was written. Check that the HSM key is the zone's KSK.",
            ) from None


def _ksk_key(ksk: _KeySigner, owner: str, ttl: int) -> Key:
    d = ksk.dnskey
    return Key(owner, ttl, int(d.flags), d.protocol, int(d.algorithm), d.key, ksk.tag,
               key_identifier=ksk.ksk.identifier)


def sign_request(
    doc: Document,
    policy: ZonePolicy,
    ksks: Sequence[Ksk],
    *,
    now: datetime,
    stats: SignStats | None = None,
) -> Document:
    """The SKR for a checked KSR (check first: this function does not judge the request)."""
    if doc.kind != "request":
        raise SigningError(f"{doc.source} is not a KSR.")
    if not ksks or all(k.revoked for k in ksks):
        raise SigningError(f"No active KSK to sign {doc.domain}.",
                           hint="Configure the zone's KSK (its HSM label).")
    stats = stats if stats is not None else SignStats()
    zone = doc.zone
    signers = [_KeySigner(k, zone) for k in ksks]
    if doc.format == "knot":
        bundles = _sign_knot(doc, policy, signers, stats)
        return Document(format="knot", kind="response", domain=doc.domain,
                        bundles=tuple(bundles), timestamp=now, source=doc.source)
    bundles = _sign_iana(doc, signers, stats)
    return Document(
        format="iana", kind="response", domain=doc.domain, bundles=tuple(bundles), id=doc.id,
        serial=doc.serial, timestamp=now, zsk_policy=doc.zsk_policy,
        ksk_policy=_ksk_policy(policy, doc.zsk_policy, ksks), source=doc.source,
    )


def _sign_all(
    signers: Sequence[_KeySigner], rrset: _RRset, inception: int, expiration: int,
    stats: SignStats,
) -> list[RRSIG]:
    # A revoked KSK signs the DNSKEY RRset too (RFC 5011 2.1), so resolvers see the REVOKE.
    return [s.sign(rrset, inception, expiration, stats) for s in signers]


def _sign_iana(doc: Document, signers: Sequence[_KeySigner], stats: SignStats) -> list[Bundle]:
    zone = doc.zone
    cache: dict[tuple[int, frozenset[bytes]], _RRset] = {}
    out: list[Bundle] = []
    for b in doc.bundles:
        ttl = b.keys[0].ttl
        keys = list(b.keys) + [_ksk_key(s, doc.domain, ttl) for s in signers]
        ident = (ttl, frozenset(k.dnskey().to_digestable() for k in keys))
        rrset = cache.get(ident)
        if rrset is None:
            rrset = cache[ident] = _RRset(zone, ttl, [k.dnskey() for k in keys])
            stats.rrsets += 1
        rrsigs = _sign_all(signers, rrset, times.epoch(b.inception), times.epoch(b.expiration),
                           stats)
        sigs = tuple(Signature(doc.domain, ttl, r, s.ksk.identifier)
                     for r, s in zip(rrsigs, signers, strict=True))
        out.append(Bundle(b.id, b.inception, b.expiration, tuple(keys), sigs))
    return out


def knot_slots(doc: Document, policy: ZonePolicy) -> list[tuple[datetime, Bundle]]:
    """Knot's SKR slots: each KSR slot, re-signed every rrsig_lifetime - rrsig_refresh until
    the next slot; the last KSR slot once (what `keymgr sign-ksr` does)."""
    step = policy.rrsig_lifetime - policy.rrsig_refresh
    if step <= timedelta(0):
        raise SigningError("rrsig_refresh must be shorter than rrsig_lifetime.")
    slots: list[tuple[datetime, Bundle]] = []
    for index, b in enumerate(doc.bundles):
        end = doc.bundles[index + 1].inception if index + 1 < len(doc.bundles) else b.inception
        t = b.inception
        slots.append((t, b))
        t += step
        while t < end:
            slots.append((t, b))
            t += step
    return slots


def _sign_knot(
    doc: Document, policy: ZonePolicy, signers: Sequence[_KeySigner], stats: SignStats
) -> list[Bundle]:
    zone = doc.zone
    cache: dict[tuple[int, tuple[Key, ...]], tuple[_RRset, ...]] = {}
    ksk_keys: dict[int, list[Key]] = {}
    out: list[Bundle] = []
    for when, b in knot_slots(doc, policy):
        ttl = b.keys[0].ttl
        if ttl not in ksk_keys:
            ksk_keys[ttl] = [_ksk_key(s, doc.domain, ttl) for s in signers]
        keys = list(b.keys) + ksk_keys[ttl]
        ident = (ttl, tuple(keys))
        rrsets = cache.get(ident)
        if rrsets is None:
            built = [_RRset(zone, ttl, [k.dnskey() for k in keys])]
            if policy.cds_cdnskey:
                active = [s for s in signers if not s.ksk.revoked]
                built.append(_RRset(zone, 0, [_cdnskey(s.dnskey) for s in active]))
                built.append(_RRset(zone, 0, [
                    dns.dnssec.make_cds(zone, s.dnskey, "SHA256") for s in active
                ]))
            rrsets = cache[ident] = tuple(built)
            stats.rrsets += len(built)
        inception = times.epoch(when - policy.inception_offset)
        expiration = times.epoch(when + policy.rrsig_lifetime)
        sigs: list[Signature] = []
        records: list[Record] = []
        for rrset in rrsets:
            for rrsig in _sign_all(signers, rrset, inception, expiration, stats):
                sigs.append(Signature(doc.domain, rrset.ttl, rrsig))
            if rrset.rdtype != dns.rdatatype.DNSKEY:
                for rd in rrset.rdataset:
                    records.append(Record(doc.domain, 0, dns.rdatatype.to_text(rd.rdtype),
                                          rd.to_text()))
        out.append(Bundle(str(times.epoch(when)), when, when + policy.rrsig_lifetime,
                          tuple(keys), tuple(sigs), tuple(records)))
    return out


def _cdnskey(key: DNSKEY) -> CDNSKEY:
    return CDNSKEY(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN, dns.rdatatype.CDNSKEY, key.flags, key.protocol,
                   key.algorithm, key.key)


def _ksk_policy(
    policy: ZonePolicy, zsk: KeyPolicy | None, ksks: Sequence[Ksk]
) -> KeyPolicy:
    algs: list[AlgorithmPolicy] = []
    for k in ksks:
        key = k.signer.dnskey_public_key
        if k.signer.algorithm == 8:
            params = rsa_parameters(key)
            bits, exponent = params if params else (0, 0)
            entry = AlgorithmPolicy(8, bits, exponent)
        else:
            entry = AlgorithmPolicy(k.signer.algorithm, len(key) * 4)
        if entry not in algs:
            algs.append(entry)
    return KeyPolicy(
        publish_safety=policy.ksk_publish_safety,
        retire_safety=policy.ksk_retire_safety,
        max_signature_validity=policy.max_signature_validity,
        min_signature_validity=policy.min_signature_validity,
        max_validity_overlap=policy.max_validity_overlap
        or (zsk.max_validity_overlap if zsk else timedelta(0)),
        min_validity_overlap=policy.min_validity_overlap
        or (zsk.min_validity_overlap if zsk else timedelta(0)),
        algorithms=tuple(algs),
    )
