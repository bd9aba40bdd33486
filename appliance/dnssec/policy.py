"""KSR policy checks, configurable per zone, every violation reported at once.

Each check yields violations of one requirement id (kskm's ids where they exist). A ceremony
may sign a violating KSR only through an explicit `Override` per requirement id, with a
reason and a witness, which `CheckReport.overrides_used` hands to the journal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dns.dnssec
import dns.exception
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype

from appliance.dnssec import errors as E
from appliance.dnssec.model import Bundle, Document, Key, KeyPolicy
from appliance.dnssec.times import human
from appliance.errors import DnssecError

DEPRECATED_ALGORITHMS = frozenset({1, 3, 5, 6, 7, 10, 12})
_EC_KEY_BYTES = {13: 64, 14: 96, 15: 32, 16: 57}
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class ZonePolicy:
    """What a KSR for one zone must satisfy, and how its SKR is made. Defaults suit a TLD."""

    zone: str
    # keys
    algorithms: tuple[int, ...] = (8, 13, 14, 15)
    rsa_sizes: tuple[int, ...] = (2048, 3072, 4096)
    rsa_exponents: tuple[int, ...] = (65537,)
    min_keys_per_bundle: int = 1
    max_keys_per_bundle: int = 4
    max_distinct_keys: int | None = None
    # bundles
    min_bundles: int = 1
    max_bundles: int = 20_000
    min_cycle: timedelta = timedelta(0)
    max_cycle: timedelta = timedelta(days=400)
    min_bundle_interval: timedelta = timedelta(seconds=1)
    max_bundle_interval: timedelta = timedelta(days=90)
    # signatures: IANA bundle validity, or Knot's rrsig_lifetime
    min_signature_validity: timedelta = timedelta(days=1)
    max_signature_validity: timedelta = timedelta(days=90)
    #: IANA overlap of consecutive bundles; None: the KSR's own claims (Min/MaxValidityOverlap).
    min_validity_overlap: timedelta | None = None
    max_validity_overlap: timedelta | None = None
    #: Nothing may expire more than this far after `now`.
    horizon: timedelta = timedelta(days=400)
    min_publish_safety: timedelta = timedelta(0)
    max_publish_safety: timedelta = timedelta(days=60)
    min_retire_safety: timedelta = timedelta(0)
    max_retire_safety: timedelta = timedelta(days=60)
    check_pop: bool = True
    #: False: a key's RSA exponent may differ from the request's declared one (historic root
    #: KSRs declared e=3 for keys with e=65537); the size must still match.
    check_declared_exponent: bool = True
    # the KSK
    #: The KSK's algorithm as the zone's operator agreed it; checked against the real key.
    ksk_algorithm: int | None = None
    ksk_active_from: datetime | None = None
    ksk_active_until: datetime | None = None
    # Knot SKR making (keymgr's rrsig-lifetime, rrsig-refresh; signatures back-dated 90 min)
    rrsig_lifetime: timedelta = timedelta(days=14)
    rrsig_refresh: timedelta = timedelta(days=7)
    inception_offset: timedelta = timedelta(minutes=90)
    cds_cdnskey: bool = False
    # IANA ResponsePolicy/KSK margins
    ksk_publish_safety: timedelta = timedelta(0)
    ksk_retire_safety: timedelta = timedelta(days=28)

    @classmethod
    def root(cls, **changes: object) -> ZonePolicy:
        """The root zone's policy (IANA DPS): RSASHA256-2048 e=65537, 9 bundles per quarter,
        10-day intervals, 21-day validity, signatures expire at most 180 days ahead."""
        base = cls(
            zone=".",
            algorithms=(8,),
            rsa_sizes=(2048,),
            rsa_exponents=(65537,),
            min_keys_per_bundle=1,
            max_keys_per_bundle=2,
            max_distinct_keys=3,
            min_bundles=9,
            max_bundles=9,
            min_cycle=timedelta(days=79),
            max_cycle=timedelta(days=81),
            min_bundle_interval=timedelta(days=9),
            max_bundle_interval=timedelta(days=11),
            min_signature_validity=timedelta(days=21),
            max_signature_validity=timedelta(days=21),
            horizon=timedelta(days=180),
            min_publish_safety=timedelta(days=10),
            max_publish_safety=timedelta(days=10),
            min_retire_safety=timedelta(days=10),
            max_retire_safety=timedelta(days=10),
            ksk_publish_safety=timedelta(0),
            ksk_retire_safety=timedelta(days=28),
        )
        return _replace(base, changes)


def _replace(policy: ZonePolicy, changes: dict[str, object]) -> ZonePolicy:
    import dataclasses

    return dataclasses.replace(policy, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class KskInfo:
    """What the checks need to know about a KSK: its algorithm and when it signs."""

    algorithm: int
    key_tag: int
    identifier: str = ""
    #: The KSK signs bundles whose inception is in [sign_from, sign_until) (None: open).
    sign_from: datetime | None = None
    sign_until: datetime | None = None
    publish_only: bool = False

    def signs_at(self, when: datetime) -> bool:
        if self.publish_only:
            return False
        return (self.sign_from is None or when >= self.sign_from) and (
            self.sign_until is None or when < self.sign_until
        )


@dataclass(frozen=True)
class Override:
    """A witnessed decision to sign despite violations of one requirement."""

    requirement: str
    reason: str
    witness: str = ""

    def __post_init__(self) -> None:
        if self.requirement not in E.REQUIREMENTS:
            raise DnssecError(
                f"Unknown requirement id {self.requirement!r} in an override.",
                hint="Valid ids: " + ", ".join(E.REQUIREMENTS),
            )
        if self.requirement in E.NOT_OVERRIDABLE:
            raise DnssecError(
                f"{self.requirement} cannot be overridden.",
                hint="Deprecated algorithms are refused in every case.",
            )
        if not self.reason.strip():
            raise DnssecError(
                f"The override of {self.requirement} needs a reason.",
                hint="State why the ceremony signs despite the violation.",
            )


@dataclass(frozen=True)
class CheckReport:
    source: str
    violations: tuple[E.PolicyViolation, ...]
    overrides: tuple[Override, ...] = ()
    checked: tuple[str, ...] = field(default_factory=tuple)

    @property
    def blocking(self) -> tuple[E.PolicyViolation, ...]:
        waived = {o.requirement for o in self.overrides}
        return tuple(v for v in self.violations if v.requirement not in waived)

    @property
    def overrides_used(self) -> tuple[Override, ...]:
        found = {v.requirement for v in self.violations}
        return tuple(o for o in self.overrides if o.requirement in found)

    @property
    def ok(self) -> bool:
        return not self.blocking

    def raise_if_blocking(self) -> None:
        if self.blocking:
            raise E.PolicyViolations(self.source, list(self.blocking))

    def as_dict(self) -> dict[str, object]:
        """For the journal and JSON output."""
        return {
            "source": self.source,
            "ok": self.ok,
            "violations": [
                {"requirement": v.requirement, "message": v.detail} for v in self.violations
            ],
            "overrides_used": [
                {"requirement": o.requirement, "reason": o.reason, "witness": o.witness}
                for o in self.overrides_used
            ],
        }


def check_request(
    doc: Document,
    policy: ZonePolicy,
    *,
    ksks: Sequence[KskInfo],
    now: datetime,
    previous: Document | None = None,
    overrides: Sequence[Override] = (),
) -> CheckReport:
    """Every check on `doc` against `policy`; violations are collected, never raised here."""
    if doc.kind != "request":
        raise DnssecError(f"{doc.source} is an SKR, not a KSR.", hint="Give the KSR file.")
    found: list[E.PolicyViolation] = []
    for check in _CHECKS:
        found.extend(check(doc, policy, ksks, now, previous))
    return CheckReport(doc.source, tuple(found), tuple(overrides))


_Args = tuple[Document, ZonePolicy, Sequence[KskInfo], datetime, Document | None]


def _header(doc: Document, policy: ZonePolicy, *_: object) -> Iterator[E.PolicyViolation]:
    want = dns.name.from_text(policy.zone).canonicalize().to_text()
    if doc.domain != want:
        yield E.KSR_DOMAIN(f"the request is for {doc.domain!r}, the policy for {want!r}")


def _records(doc: Document, *_: object) -> Iterator[E.PolicyViolation]:
    for b in doc.bundles:
        for k in b.keys:
            if k.owner != doc.domain:
                yield E.KSR_OWNER(f"{k.where}: owner {k.owner} is not the zone {doc.domain}")
        for r in b.records:
            if r.owner != doc.domain:
                yield E.KSR_OWNER(f"{r.where}: owner {r.owner} is not the zone {doc.domain}")
            yield E.KSR_RECORD_TYPE(f"{r.where}: a {r.rdtype} record (only DNSKEY may be asked)")
        for s in b.signatures:
            if s.rrsig.type_covered != dns.rdatatype.DNSKEY:
                covered = dns.rdatatype.to_text(s.rrsig.type_covered)
                yield E.KSR_RECORD_TYPE(f"{s.where}: signature covers {covered}, not DNSKEY")


def _keys(doc: Document, policy: ZonePolicy, *_: object) -> Iterator[E.PolicyViolation]:
    seen: dict[int, Key] = {}
    reported: set[tuple[str, int]] = set()

    def once(kind: str, key: Key) -> bool:
        token = (kind, hash((key.flags, key.algorithm, key.public_key, key.key_tag)))
        if token in reported:
            return False
        reported.add(token)
        return True

    for b in doc.bundles:
        for k in b.keys:
            tag = int(dns.dnssec.key_id(k.dnskey()))
            label = f"{k.where} (key {k.key_tag}, bundle {b.id})"
            if (k.flags != 256 or k.protocol != 3) and once("flags", k):
                yield E.KSR_FLAGS(
                    f"{label}: flags {k.flags} protocol {k.protocol}; a request "
                    "may hold zone keys only (flags 256, protocol 3)"
                )
            if tag != k.key_tag and once("tag", k):
                yield E.KSR_KEY_TAG(f"{label}: stated key tag {k.key_tag}, computed {tag}")
            if k.algorithm in DEPRECATED_ALGORITHMS:
                if once("deprecated", k):
                    yield E.KSR_ALG_DEPRECATED(f"{label}: algorithm {k.algorithm} is deprecated")
            elif k.algorithm not in policy.algorithms:
                if once("alg", k):
                    yield E.KSR_POLICY_ALG(
                        f"{label}: algorithm {k.algorithm} not in the policy "
                        f"{list(policy.algorithms)}"
                    )
            else:
                problem = _size_problem(k, policy)
                if problem and once("size", k):
                    yield E.KSR_KEY_SIZE(f"{label}: {problem}")
            previous = seen.get(tag)
            if previous is not None and previous.public_key != k.public_key and once("dup", k):
                yield E.KSR_BUNDLE_KEYS(f"{label}: key tag {tag} names two different keys")
            seen.setdefault(tag, k)
            declared = doc.zsk_policy
            if (
                declared is not None
                and not _matches_declared(k, declared, policy.check_declared_exponent)
                and once("declared", k)
            ):
                yield E.KSR_BUNDLE_KEYS(
                    f"{label}: key does not match the request's own ZSK SignatureAlgorithm"
                )
    if doc.zsk_policy is not None:
        for alg in doc.zsk_policy.algorithms:
            if alg.algorithm in DEPRECATED_ALGORITHMS:
                yield E.KSR_ALG_DEPRECATED(f"RequestPolicy names algorithm {alg.algorithm}")
            elif alg.algorithm not in policy.algorithms:
                yield E.KSR_POLICY_ALG(
                    f"RequestPolicy names algorithm {alg.algorithm}, not in "
                    f"the policy {list(policy.algorithms)}"
                )
            elif alg.exponent is not None and (
                alg.size not in policy.rsa_sizes or alg.exponent not in policy.rsa_exponents
            ):
                yield E.KSR_KEY_SIZE(
                    f"RequestPolicy names RSA-{alg.size} e={alg.exponent}, "
                    f"policy allows sizes {list(policy.rsa_sizes)} exponents "
                    f"{list(policy.rsa_exponents)}"
                )


def rsa_parameters(public_key: bytes) -> tuple[int, int] | None:
    """(modulus bits, exponent) of an RFC 3110 RSA public key, None when malformed."""
    if not public_key:
        return None
    if public_key[0]:
        elen, rest = public_key[0], public_key[1:]
    else:
        if len(public_key) < 3:
            return None
        elen, rest = int.from_bytes(public_key[1:3], "big"), public_key[3:]
    if elen == 0 or len(rest) <= elen:
        return None
    exponent = int.from_bytes(rest[:elen], "big")
    modulus = int.from_bytes(rest[elen:], "big")
    return modulus.bit_length(), exponent


def _size_problem(k: Key, policy: ZonePolicy) -> str:
    if k.algorithm in (5, 7, 8, 10):
        params = rsa_parameters(k.public_key)
        if params is None:
            return "malformed RSA public key"
        bits, exponent = params
        if bits not in policy.rsa_sizes:
            return f"RSA-{bits} not in the policy sizes {list(policy.rsa_sizes)}"
        if exponent not in policy.rsa_exponents:
            return f"RSA exponent {exponent} not in the policy {list(policy.rsa_exponents)}"
        return ""
    want = _EC_KEY_BYTES.get(k.algorithm)
    if want is not None and len(k.public_key) != want:
        return f"public key is {len(k.public_key)} bytes, algorithm {k.algorithm} needs {want}"
    return ""


def _matches_declared(k: Key, declared: KeyPolicy, exponent_too: bool) -> bool:
    for alg in declared.algorithms:
        if alg.algorithm != k.algorithm:
            continue
        if alg.exponent is None:
            return True
        params = rsa_parameters(k.public_key)
        if (
            params is not None
            and params[0] == alg.size
            and (params[1] == alg.exponent or not exponent_too)
        ):
            return True
    return False


def _bundles(
    doc: Document,
    policy: ZonePolicy,
    ksks: Sequence[KskInfo],
    now: datetime,
    previous: Document | None,
) -> Iterator[E.PolicyViolation]:
    bundles = doc.bundles
    seen: set[str] = set()
    for b in bundles:
        if b.id in seen:
            yield E.KSR_BUNDLE_UNIQUE(f"{b.where}: bundle id {b.id} appears more than once")
        seen.add(b.id)
    n = len(bundles)
    if not policy.min_bundles <= n <= policy.max_bundles:
        yield E.KSR_BUNDLE_COUNT(
            f"{n} bundles; the policy wants {policy.min_bundles}..{policy.max_bundles}"
        )
    cycle = bundles[-1].inception - bundles[0].inception
    if not policy.min_cycle <= cycle <= policy.max_cycle:
        yield E.KSR_BUNDLE_CYCLE_DURATION(
            f"first to last bundle inception is {human(cycle)}; the policy wants "
            f"{human(policy.min_cycle)}..{human(policy.max_cycle)}"
        )
    distinct: set[bytes] = set()
    for b in bundles:
        count = len(b.keys)
        distinct.update(k.public_key for k in b.keys)
        if not policy.min_keys_per_bundle <= count <= policy.max_keys_per_bundle:
            yield E.KSR_POLICY_KEYS(
                f"{b.where}: bundle {b.id} has {count} keys; the policy wants "
                f"{policy.min_keys_per_bundle}..{policy.max_keys_per_bundle}"
            )
    if policy.max_distinct_keys is not None and len(distinct) > policy.max_distinct_keys:
        yield E.KSR_POLICY_KEYS(
            f"{len(distinct)} different keys in the request; the policy allows at most "
            f"{policy.max_distinct_keys}"
        )
    for prev, this in zip(bundles, bundles[1:], strict=False):
        interval = this.inception - prev.inception
        if not policy.min_bundle_interval <= interval <= policy.max_bundle_interval:
            yield E.KSR_POLICY_BUNDLE_INTERVALS(
                f"{this.where}: bundle {this.id} starts {human(interval)} after the previous "
                f"one; the policy wants {human(policy.min_bundle_interval)}.."
                f"{human(policy.max_bundle_interval)}"
            )
    if doc.format == "iana":
        yield from _iana_times(doc, policy, now)
    else:
        yield from _knot_times(doc, policy, now)


def _iana_times(doc: Document, policy: ZonePolicy, now: datetime) -> Iterator[E.PolicyViolation]:
    claims = doc.zsk_policy
    low = policy.min_validity_overlap
    high = policy.max_validity_overlap
    if claims is not None:
        low = claims.min_validity_overlap if low is None else low
        high = claims.max_validity_overlap if high is None else high
        for what, value, lo, hi in (
            (
                "PublishSafety",
                claims.publish_safety,
                policy.min_publish_safety,
                policy.max_publish_safety,
            ),
            (
                "RetireSafety",
                claims.retire_safety,
                policy.min_retire_safety,
                policy.max_retire_safety,
            ),
        ):
            if not lo <= value <= hi:
                yield E.KSR_POLICY_SAFETY(
                    f"{what} {human(value)}; the policy wants {human(lo)}..{human(hi)}"
                )
    for prev, this in zip(doc.bundles, doc.bundles[1:], strict=False):
        overlap = prev.expiration - this.inception
        if overlap < timedelta(0):
            yield E.KSR_POLICY_SIG_OVERLAP(
                f"{this.where}: gap of {human(-overlap)} between bundle {prev.id} and {this.id}"
            )
        elif (low is not None and overlap < low) or (high is not None and overlap > high):
            yield E.KSR_POLICY_SIG_OVERLAP(
                f"{this.where}: bundle {this.id} overlaps the previous one by {human(overlap)}; "
                f"wanted {human(low or timedelta(0))}..{human(high or timedelta(0))}"
            )
    for b in doc.bundles:
        validity = b.expiration - b.inception
        if not policy.min_signature_validity <= validity <= policy.max_signature_validity:
            yield E.KSR_POLICY_SIG_VALIDITY(
                f"{b.where}: bundle {b.id} validity {human(validity)}; the policy wants "
                f"{human(policy.min_signature_validity)}..{human(policy.max_signature_validity)}"
            )
        if b.expiration <= now:
            yield E.KSR_POLICY_SIG_HORIZON(f"{b.where}: bundle {b.id} expired at {b.expiration}")
        elif b.expiration - now > policy.horizon:
            yield E.KSR_POLICY_SIG_HORIZON(
                f"{b.where}: bundle {b.id} expires {human(b.expiration - now)} from now, more "
                f"than the horizon {human(policy.horizon)}"
            )


def _knot_times(doc: Document, policy: ZonePolicy, now: datetime) -> Iterator[E.PolicyViolation]:
    life = policy.rrsig_lifetime
    if not policy.min_signature_validity <= life <= policy.max_signature_validity:
        yield E.KSR_POLICY_SIG_VALIDITY(
            f"rrsig_lifetime {human(life)}; the policy wants "
            f"{human(policy.min_signature_validity)}..{human(policy.max_signature_validity)}"
        )
    if not timedelta(0) < policy.rrsig_refresh < life:
        yield E.KSR_POLICY_SIG_VALIDITY(
            f"rrsig_refresh {human(policy.rrsig_refresh)} must be between 0 and rrsig_lifetime"
        )
    first, last = doc.bundles[0], doc.bundles[-1]
    if first.inception + life <= now:
        yield E.KSR_POLICY_SIG_HORIZON(
            f"{first.where}: signatures for slot {first.inception} would already be expired"
        )
    if last.inception + life - now > policy.horizon:
        yield E.KSR_POLICY_SIG_HORIZON(
            f"{last.where}: the last signatures would expire {human(last.inception + life - now)}"
            f" from now, more than the horizon {human(policy.horizon)}"
        )


def _pop(doc: Document, policy: ZonePolicy, *_: object) -> Iterator[E.PolicyViolation]:
    if doc.format != "iana" or not policy.check_pop:
        return
    for b in doc.bundles:
        yield from _bundle_pop(doc, b)


def _bundle_pop(doc: Document, b: Bundle) -> Iterator[E.PolicyViolation]:
    zone = doc.zone
    rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    for k in b.keys:
        rdataset.add(k.dnskey(), k.ttl)
    keyring = {zone: rdataset}
    for k in b.zsks:
        tag = int(dns.dnssec.key_id(k.dnskey()))
        own = [
            s for s in b.signatures if s.rrsig.key_tag == tag and s.rrsig.algorithm == k.algorithm
        ]
        if not own:
            yield E.KSR_BUNDLE_POP(f"{b.where}: no signature by key {tag} over the bundle")
            continue
        for s in own:
            try:
                dns.dnssec.validate_rrsig(
                    (zone, rdataset),
                    s.rrsig,
                    keyring,  # type: ignore[arg-type]
                    now=s.rrsig.inception,
                )
            except (dns.exception.ValidationFailure, dns.exception.DNSException) as exc:
                yield E.KSR_BUNDLE_POP(f"{s.where}: signature by key {tag} does not verify ({exc})")


def _chain(
    doc: Document,
    policy: ZonePolicy,
    ksks: Sequence[KskInfo],
    now: datetime,
    previous: Document | None,
) -> Iterator[E.PolicyViolation]:
    if previous is None:
        return
    if previous.kind != "response":
        raise DnssecError(f"{previous.source} is not an SKR.", hint="Give the previous SKR.")
    if previous.domain != doc.domain:
        yield E.KSR_CHAIN_KEYS(f"the previous SKR is for {previous.domain}, not {doc.domain}")
        return
    last, first = previous.bundles[-1], doc.bundles[0]
    before = {k.public_key for k in last.zsks}
    now_keys = {k.public_key for k in first.zsks}
    if before != now_keys:
        yield E.KSR_CHAIN_KEYS(
            f"{first.where}: the first bundle's ZSKs {_tags(first.zsks)} differ from the last "
            f"previous SKR bundle's {_tags(last.zsks)}"
        )
    end = max((s.rrsig.expiration for s in last.signatures), default=0)
    previous_end = max(last.expiration.timestamp(), end)
    gap = first.inception.timestamp() - previous_end
    if gap > 0:
        yield E.KSR_CHAIN_OVERLAP(
            f"{first.where}: {human(timedelta(seconds=gap))} gap after the previous SKR's "
            "last signatures expire"
        )
    elif doc.format == "iana":
        overlap = timedelta(seconds=-gap)
        low = policy.min_validity_overlap or (
            doc.zsk_policy.min_validity_overlap if doc.zsk_policy else None
        )
        high = policy.max_validity_overlap or (
            doc.zsk_policy.max_validity_overlap if doc.zsk_policy else None
        )
        if (low is not None and overlap < low) or (high is not None and overlap > high):
            yield E.KSR_CHAIN_OVERLAP(
                f"{first.where}: overlap with the previous SKR is {human(overlap)}, wanted "
                f"{human(low or timedelta(0))}..{human(high or timedelta(0))}"
            )
    if first.inception < last.inception:
        yield E.KSR_CHAIN_OVERLAP(
            f"{first.where}: the request starts before the previous SKR's last bundle"
        )
    if doc.format == "iana":
        if doc.id and doc.id == previous.id:
            yield E.KSR_CHAIN_ID(f"KSR id {doc.id} was already used by the previous SKR")
        reused = {b.id for b in doc.bundles} & {b.id for b in previous.bundles}
        for bid in sorted(reused):
            yield E.KSR_CHAIN_ID(f"bundle id {bid} was already used by the previous SKR")


def _tags(keys: Sequence[Key]) -> list[int]:
    return sorted(int(dns.dnssec.key_id(k.dnskey())) for k in keys)


def _ksk(
    doc: Document, policy: ZonePolicy, ksks: Sequence[KskInfo], *_: object
) -> Iterator[E.PolicyViolation]:
    if not ksks:
        yield E.KSR_KSK_ACTIVE(f"no KSK is configured for {doc.domain}")
        return
    start, until = policy.ksk_active_from, policy.ksk_active_until
    for b in doc.bundles:
        if (start is not None and b.inception < start) or (
            until is not None and b.inception >= until
        ):
            yield E.KSR_KSK_ACTIVE(
                f"{b.where}: bundle {b.id} at {b.inception} is outside the KSK's active period "
                f"({start or '-'} .. {until or '-'})"
            )
    for b in doc.bundles:
        if not any(k.signs_at(b.inception) for k in ksks):
            yield E.KSR_KSK_ACTIVE(
                f"{b.where}: no KSK is scheduled to sign bundle {b.id} ({b.inception})"
            )
        elif b.signers and not any(
            k.signs_at(b.inception) and k.identifier in b.signers for k in ksks
        ):
            yield E.KSR_KSK_ACTIVE(
                f"{b.where}: bundle {b.id} asks for signer(s) "
                f"{', '.join(b.signers)}, none of which signs it"
            )
    ksk_algs = {k.algorithm for k in ksks if not k.publish_only}
    if policy.ksk_algorithm is not None and ksk_algs != {policy.ksk_algorithm}:
        yield E.KSR_KSK_ALG(
            f"the KSK uses {sorted(ksk_algs)}, the policy says {policy.ksk_algorithm}"
        )
    reported: set[int] = set()
    for b in doc.bundles:
        signing = {k.algorithm for k in ksks if k.signs_at(b.inception)} or ksk_algs
        for alg in sorted({k.algorithm for k in b.keys} - signing - reported):
            reported.add(alg)
            yield E.KSR_KSK_ALG(
                f"{b.where}: ZSK algorithm {alg}, but the KSK uses {sorted(signing)}"
            )


_CHECKS = (_header, _records, _keys, _bundles, _pop, _chain, _ksk)
