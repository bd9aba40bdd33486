"""Signing a checked KSR: per bundle, the DNSKEY RRset (ZSKs + KSKs) signed by the KSK(s).

dnspython builds every RRSIG (`dns.rdtypes.ANY.RRSIG.RRSIG`) and every signature comes from
the KSK through `DnssecPrivateKey` (the dnspython seam over the signer port). Speed: the
canonical wire form of an RRset is built once and reused for every slot that signs the same
RRset (Knot refreshes the same key set many times), and each RRSIG is constructed once with
its signature. Large runs sign on this thread only while worker processes verify on the
other cores (`_Pipeline`). Safety: every signature is verified with the KSK's public key over
the data that was signed, each finished RRSIG must rebuild exactly that data from its own
fields, and the first RRSIG of every distinct RRset and key is also validated end to end by
`dns.dnssec.validate_rrsig`, which builds its own signing data: so our cached form is
checked against dnspython's.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from appliance.dnssec.verifier import VerifierProcess


@dataclass(frozen=True)
class Ksk:
    """A KSK and its part in a rollover.

    It is published in bundles whose inception lies in [publish_from, publish_until) and
    signs those in [sign_from, sign_until) (None: open-ended). `publish_only` KSKs (a
    successor before its turn) never sign; a `revoked` KSK is published with the REVOKE flag
    and signs the DNSKEY RRset (RFC 5011 2.1) while its sign window lasts.
    """

    signer: DnssecKeySigner
    identifier: str  # the HSM label; IANA keyIdentifier
    revoked: bool = False
    publish_only: bool = False
    publish_from: datetime | None = None
    publish_until: datetime | None = None
    sign_from: datetime | None = None
    sign_until: datetime | None = None

    def info(self) -> KskInfo:
        return self._info

    @functools.cached_property
    def _info(self) -> KskInfo:  # asked for at every slot: the key tag is computed once
        return KskInfo(
            self.signer.algorithm,
            dns.dnssec.key_id(self.dnskey()),
            self.identifier,
            sign_from=_later(self.sign_from, self.publish_from),
            sign_until=_earlier(self.sign_until, self.publish_until),
            publish_only=self.publish_only,
        )

    def published_at(self, when: datetime) -> bool:
        return (self.publish_from is None or when >= self.publish_from) and (
            self.publish_until is None or when < self.publish_until
        )

    def signs_at(self, when: datetime) -> bool:
        return self.published_at(when) and self.info().signs_at(when)

    def dnskey(self) -> DNSKEY:
        return self._dnskey

    @functools.cached_property
    def _dnskey(self) -> DNSKEY:
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
        self.zone = zone
        self.signer_wire = zone.to_digestable()

    def data(self, rrset: _RRset, inception: int, expiration: int) -> bytes:
        header = struct.pack(
            "!HBBIIIH",
            rrset.rdtype,
            self.dnskey.algorithm,
            rrset.labels,
            rrset.ttl,
            expiration,
            inception,
            self.tag,
        )
        return header + self.signer_wire + rrset.wire

    @functools.cached_property
    def check(self) -> Callable[[bytes, bytes], bool]:
        """(data, signature) -> verifies? with the published DNSKEY (as the workers check)."""
        from appliance.dnssec.verifier import public_verifier

        return public_verifier(int(self.dnskey.algorithm), self.dnskey.key)

    def require_valid(self, data: bytes, signature: bytes, index: int) -> None:
        if not self.check(data, signature):
            raise _bad(self.tag, f"a bad signature for RRSIG #{index}")

    def rrsig(self, rrset: _RRset, inception: int, expiration: int, signature: bytes) -> RRSIG:
        return RRSIG(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN,
            dns.rdatatype.RRSIG,
            rrset.rdtype,
            self.dnskey.algorithm,
            rrset.labels,
            rrset.ttl,
            expiration,
            inception,
            self.tag,
            self.zone,
            signature,
        )

    def full_validation(self, rrsig: RRSIG, rrset: _RRset, stats: SignStats) -> None:
        """dnspython's own validation (its own signing data), once per RRset and key."""
        if self.tag in rrset.validated:
            return
        keys = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        keys.add(self.dnskey, 0)
        try:
            dns.dnssec.validate_rrsig(
                (rrset.owner, rrset.rdataset), rrsig, {self.zone: keys}, now=rrsig.inception
            )
        except Exception as exc:
            raise _bad(self.tag, exc) from None
        rrset.validated.add(self.tag)
        stats.full_validations += 1


def signed_data(rrsig: RRSIG, rrset_wire: bytes) -> bytes:
    """The data an RRSIG signs, rebuilt from the finished RRSIG's own fields (RFC 4034 3.1.8.1)."""
    header = struct.pack(
        "!HBBIIIH",
        rrsig.type_covered,
        rrsig.algorithm,
        rrsig.labels,
        rrsig.original_ttl,
        rrsig.expiration,
        rrsig.inception,
        rrsig.key_tag,
    )
    return header + rrsig.signer.to_digestable() + rrset_wire


def _bad(tag: int, exc: BaseException | str) -> SigningError:
    detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return SigningError(
        f"An RRSIG by KSK {tag} did not verify ({detail}).",
        hint="Stop: nothing was written. Check that the HSM key is the zone's KSK.",
    )


@dataclass
class _Job:
    signer: _KeySigner
    rrset: _RRset
    inception: int
    expiration: int


#: Below this many RRSIGs the pipeline is not worth starting a worker process.
PIPELINE_MIN = 256
#: RRSIGs per batch: small, so that the last batches in flight are short.
_BATCH = 64


def verifier_count() -> int:
    """Verifier processes beside the signing thread: one per spare core, at most three."""
    return max(1, min(3, (os.cpu_count() or 1) - 1))


def pipeline_useful() -> bool:
    """True with more than one core. Measured with the other core kept busy, the pipeline
    still beats signing and verifying in turn (this thread verifies whatever the workers
    have not), so the machine's load is not consulted."""
    return (os.cpu_count() or 1) > 1


def _estimate(doc: Document, policy: ZonePolicy, ksks: Sequence[Ksk]) -> bool:
    """True when the run will be long enough for the pipeline (counted before planning)."""
    if doc.format == "knot":
        slots = len(knot_slots(doc, policy)) * (3 if policy.cds_cdnskey else 1)
    else:
        slots = len(doc.bundles)
    return slots * max(1, len(ksks)) >= PIPELINE_MIN


def _start_workers() -> list[VerifierProcess]:
    from appliance.dnssec.verifier import VerifierProcess

    return [VerifierProcess() for _ in range(verifier_count())]


def _execute(jobs: Sequence[_Job], stats: SignStats, workers: list[VerifierProcess]) -> list[RRSIG]:
    """Sign every job and verify every RRSIG; nothing is returned unless all verified."""
    if not workers or len(jobs) < PIPELINE_MIN:
        out: list[RRSIG] = []
        for index, job in enumerate(jobs):
            data = job.signer.data(job.rrset, job.inception, job.expiration)
            signature = job.signer.private.sign_fast(data)
            job.signer.require_valid(data, signature, index)
            out.append(_finish(job, index, data, signature, stats))
        stats.rrsigs += len(out)
        return out
    try:
        out = _Pipeline(jobs, workers).run(stats)
    except (RuntimeError, OSError) as exc:  # a worker died (its pipe broke)
        raise SigningError(
            f"The verification worker failed ({exc}).",
            hint="Nothing was written. Run again; report if it repeats.",
        ) from None
    stats.rrsigs += len(out)
    return out


#: Batches a worker holds at once: one it verifies, one waiting in its pipe. The rest stay
#: here, so that whoever is free first (a worker, or this process once signing is done)
#: verifies them.
_AHEAD = 2


class _Pipeline:
    """Large runs: this thread only signs, while worker processes verify finished batches on
    the other cores; once signing is done this process builds the RRSIGs and verifies the
    newest unclaimed batches itself while the workers take the oldest.

    No thread: the HSM call is never kept waiting for the GIL. Each RRSIG must rebuild, from
    its own fields, exactly the data that was signed and verified (`signed_data`), and the
    first RRSIG of each RRset and key is validated by dnspython itself (`full_validation`).
    """

    def __init__(self, jobs: Sequence[_Job], workers: list[VerifierProcess]) -> None:
        self.jobs = jobs
        self.workers = workers
        self.inputs = [j.signer.data(j.rrset, j.inception, j.expiration) for j in jobs]
        self.signatures: list[bytes] = []
        self.unclaimed: collections.deque[tuple[_KeySigner, list[int]]] = collections.deque()
        self.claimed: list[collections.deque[tuple[_KeySigner, list[int]]]] = [
            collections.deque() for _ in workers
        ]

    def run(self, stats: SignStats) -> list[RRSIG]:
        filling: dict[int, list[int]] = {}
        seen: set[int] = set()
        for index, job in enumerate(self.jobs):
            self.signatures.append(job.signer.private.sign_fast(self.inputs[index]))
            if id(job.signer) not in seen:  # a wrong key stops the run at its first RRSIG
                seen.add(id(job.signer))
                job.signer.require_valid(self.inputs[index], self.signatures[index], index)
            batch = filling.setdefault(id(job.signer), [])
            batch.append(index)
            if len(batch) == _BATCH:
                self.unclaimed.append((job.signer, filling.pop(id(job.signer))))
                self.feed()
        for batch in filling.values():
            self.unclaimed.append((self.jobs[batch[0]].signer, batch))
        self.feed()
        out: list[RRSIG] = []
        for index, job in enumerate(self.jobs):
            out.append(_finish(job, index, self.inputs[index], self.signatures[index], stats))
            if index % _BATCH == 0:
                self.feed()
        while self.unclaimed:
            signer, batch = self.unclaimed.pop()  # the newest: the workers take the oldest
            for index in batch:
                signer.require_valid(self.inputs[index], self.signatures[index], index)
            self.feed()
        for worker, claimed in zip(self.workers, self.claimed, strict=True):
            while claimed:
                self._answers(worker, claimed, wait=True)
        return out  # every answer is in: the caller ends the workers without waiting

    def feed(self) -> None:
        """Take the workers' answers; hand each worker the oldest batches up to _AHEAD."""
        for worker, claimed in zip(self.workers, self.claimed, strict=True):
            self._answers(worker, claimed, wait=False)
            while worker.in_flight < _AHEAD and self.unclaimed:
                signer, batch = self.unclaimed.popleft()
                worker.submit(
                    int(signer.dnskey.algorithm),
                    signer.dnskey.key,
                    [(self.inputs[i], self.signatures[i]) for i in batch],
                )
                claimed.append((signer, batch))

    @staticmethod
    def _answers(
        worker: VerifierProcess,
        claimed: collections.deque[tuple[_KeySigner, list[int]]],
        *,
        wait: bool,
    ) -> None:
        for failed in worker.collect(wait=wait):
            signer, batch = claimed.popleft()
            if failed:
                raise _bad(
                    signer.tag,
                    f"{len(failed)} bad signature(s), first for RRSIG #{batch[failed[0]]}",
                )


def _finish(job: _Job, index: int, data: bytes, signature: bytes, stats: SignStats) -> RRSIG:
    """The RRSIG for a signed job: it must rebuild, from its own fields, exactly the data
    that was signed; the first of each RRset and key is validated by dnspython too."""
    signer = job.signer
    rrsig = signer.rrsig(job.rrset, job.inception, job.expiration, signature)
    if signed_data(rrsig, job.rrset.wire) != data:
        raise _bad(signer.tag, f"RRSIG #{index} does not rebuild its signed data")
    signer.full_validation(rrsig, job.rrset, stats)
    return rrsig


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _ksk_key(ksk: _KeySigner, owner: str, ttl: int) -> Key:
    d = ksk.dnskey
    return Key(
        owner,
        ttl,
        int(d.flags),
        d.protocol,
        int(d.algorithm),
        d.key,
        ksk.tag,
        key_identifier=ksk.ksk.identifier,
    )


def sign_request(
    doc: Document,
    policy: ZonePolicy,
    ksks: Sequence[Ksk],
    *,
    now: datetime,
    stats: SignStats | None = None,
    pipeline: bool | None = None,
) -> Document:
    """The SKR for a checked KSR (check first: this function does not judge the request).

    `pipeline` lets large runs verify in worker processes while this thread signs (see
    `_Pipeline`); None chooses it when there is more than one core. Every RRSIG is verified
    either way before anything is returned.
    """
    if doc.kind != "request":
        raise SigningError(f"{doc.source} is not a KSR.")
    for b in doc.bundles:
        if not any(k.signs_at(b.inception) for k in ksks):
            raise SigningError(
                f"No KSK is scheduled to sign bundle {b.id} of {doc.domain}.",
                hint="Configure the zone's KSK (its HSM label) and its rollover windows.",
            )
    stats = stats if stats is not None else SignStats()
    if pipeline is None:
        pipeline = pipeline_useful()
    workers = _start_workers() if pipeline and _estimate(doc, policy, ksks) else []
    try:  # the workers start while the plan is made
        zone = doc.zone
        signers = [_KeySigner(k, zone) for k in ksks]
        plan = _Plan()
        if doc.format == "knot":
            _plan_knot(doc, policy, signers, stats, plan)
        else:
            _plan_iana(doc, signers, stats, plan)
        rrsigs = _execute(plan.jobs, stats, workers)
    finally:
        for w in workers:
            w.kill()
    bundles = tuple(
        dataclasses.replace(
            skeleton,
            signatures=tuple(
                Signature(doc.domain, ttl, rrsigs[i], ident) for i, ttl, ident in refs
            ),
        )
        for skeleton, refs in plan.bundles
    )
    if doc.format == "knot":
        return Document(
            format="knot",
            kind="response",
            domain=doc.domain,
            bundles=bundles,
            timestamp=now,
            source=doc.source,
        )
    return Document(
        format="iana",
        kind="response",
        domain=doc.domain,
        bundles=bundles,
        id=doc.id,
        serial=doc.serial,
        timestamp=now,
        zsk_policy=doc.zsk_policy,
        ksk_policy=_ksk_policy(policy, doc.zsk_policy, ksks),
        source=doc.source,
    )


@dataclass
class _Plan:
    jobs: list[_Job] = dataclasses.field(default_factory=list)
    #: Each bundle without signatures, and (job index, TTL, key identifier) per signature.
    bundles: list[tuple[Bundle, list[tuple[int, int, str]]]] = dataclasses.field(
        default_factory=list
    )

    def sign(
        self,
        signers: Sequence[_KeySigner],
        rrset: _RRset,
        inception: int,
        expiration: int,
        refs: list[tuple[int, int, str]],
        identifiers: bool,
    ) -> None:
        # A revoked KSK signs the DNSKEY RRset too (RFC 5011 2.1), so resolvers see REVOKE.
        for s in signers:
            refs.append((len(self.jobs), rrset.ttl, s.ksk.identifier if identifiers else ""))
            self.jobs.append(_Job(s, rrset, inception, expiration))


class _KskKeys:
    """Which KSKs are published and which sign at a time, with their Keys cached."""

    def __init__(self, domain: str, signers: Sequence[_KeySigner]) -> None:
        self.domain = domain
        self.signers = signers
        self.cache: dict[tuple[int, tuple[int, ...]], tuple[Key, ...]] = {}

    def at(
        self, when: datetime, ttl: int
    ) -> tuple[list[_KeySigner], list[_KeySigner], tuple[Key, ...]]:
        published = [s for s in self.signers if s.ksk.published_at(when)]
        signing = [s for s in published if s.ksk.signs_at(when)]
        ident = (ttl, tuple(id(s) for s in published))
        keys = self.cache.get(ident)
        if keys is None:
            keys = self.cache[ident] = tuple(_ksk_key(s, self.domain, ttl) for s in published)
        return published, signing, keys


def _plan_iana(doc: Document, signers: Sequence[_KeySigner], stats: SignStats, plan: _Plan) -> None:
    zone = doc.zone
    cache: dict[tuple[int, tuple[Key, ...]], _RRset] = {}
    ksk_keys = _KskKeys(doc.domain, signers)
    for b in doc.bundles:
        ttl = b.keys[0].ttl
        published, signing, ksk_part = ksk_keys.at(b.inception, ttl)
        if b.signers:  # the requester named the KSKs it wants (IANA <Signer>)
            signing = [s for s in signing if s.ksk.identifier in b.signers]
            if not signing:
                raise SigningError(
                    f"Bundle {b.id} asks for signer(s) {', '.join(b.signers)}"
                    ", none of which is scheduled to sign it."
                )
        keys = tuple(b.keys) + ksk_part
        rrset = cache.get((ttl, keys))
        if rrset is None:
            rrset = cache[(ttl, keys)] = _RRset(zone, ttl, [k.dnskey() for k in keys])
            stats.rrsets += 1
        refs: list[tuple[int, int, str]] = []
        plan.sign(
            signing,
            rrset,
            times.epoch(b.inception),
            times.epoch(b.expiration),
            refs,
            identifiers=True,
        )
        plan.bundles.append((Bundle(b.id, b.inception, b.expiration, keys), refs))


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


def _plan_knot(
    doc: Document,
    policy: ZonePolicy,
    signers: Sequence[_KeySigner],
    stats: SignStats,
    plan: _Plan,
) -> None:
    zone = doc.zone
    cache: dict[tuple[int, tuple[Key, ...]], tuple[tuple[_RRset, ...], tuple[Record, ...]]] = {}
    ksk_keys = _KskKeys(doc.domain, signers)
    for when, b in knot_slots(doc, policy):
        ttl = b.keys[0].ttl
        published, signing, ksk_part = ksk_keys.at(when, ttl)
        keys = tuple(b.keys) + ksk_part
        cached = cache.get((ttl, keys))
        if cached is None:
            built = [_RRset(zone, ttl, [k.dnskey() for k in keys])]
            if policy.cds_cdnskey:
                active = [s for s in published if not s.ksk.revoked]
                built.append(_RRset(zone, 0, [_cdnskey(s.dnskey) for s in active]))
                built.append(
                    _RRset(zone, 0, [dns.dnssec.make_cds(zone, s.dnskey, "SHA256") for s in active])
                )
            records = tuple(
                Record(doc.domain, 0, dns.rdatatype.to_text(rd.rdtype), rd.to_text())
                for rrset in built[1:]
                for rd in rrset.rdataset
            )
            cached = cache[(ttl, keys)] = (tuple(built), records)
            stats.rrsets += len(built)
        rrsets, records = cached
        inception = times.epoch(when - policy.inception_offset)
        expiration = times.epoch(when + policy.rrsig_lifetime)
        refs: list[tuple[int, int, str]] = []
        for rrset in rrsets:
            plan.sign(signing, rrset, inception, expiration, refs, identifiers=False)
        skeleton = Bundle(
            str(times.epoch(when)), when, when + policy.rrsig_lifetime, keys, (), records
        )
        plan.bundles.append((skeleton, refs))


def _cdnskey(key: DNSKEY) -> CDNSKEY:
    return CDNSKEY(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN, dns.rdatatype.CDNSKEY, key.flags, key.protocol, key.algorithm, key.key
    )


def _ksk_policy(policy: ZonePolicy, zsk: KeyPolicy | None, ksks: Sequence[Ksk]) -> KeyPolicy:
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
