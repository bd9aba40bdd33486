"""Keys on the token as other layers use them: DNSSEC signers and the ceremony key.

Conventions (docs/hsm.md):
- CKA_ID = SHA-1 of the public key's SubjectPublicKeyInfo DER (20 bytes), the same on the
  private and the public object and on every token the key is restored to.
- CKA_LABEL = `<zone>-<role>-a<algorithm>-<yyyymmdd>` for DNSSEC keys (role `ksk` or `zsk`,
  date = first day of use; `-2`, `-3`... when that is taken), `appliance-ceremony-key` for
  the ceremony key. Labels are unique on a token: generation refuses a label in use.
- CKA_START_DATE = the day the key was generated (the inventory reports ages from it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from appliance import signing
from appliance.hsm import algorithms as alg
from appliance.hsm.errors import HsmError, KeyNotFound, SignatureCheckFailed
from appliance.hsm.pkcs11_adapter import KeyObject, Session

CEREMONY_LABEL = "appliance-ceremony-key"
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,62}$")
Role = str  # "ksk" | "zsk" | "ceremony" | "other"


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise HsmError(
            f"'{label}' is not a usable key label.",
            hint="Use 1-63 characters: letters, digits and . _ : @ + - (starting with a "
            "letter or digit).",
            label=label,
        )
    return label


def dnssec_label(zone: str, role: str, algorithm: int, day: dt.date) -> str:
    """The conventional label of a DNSSEC key (without the uniqueness suffix)."""
    zone_part = zone.rstrip(".").lower() or "root"
    return check_label(f"{zone_part}-{role}-a{algorithm}-{day:%Y%m%d}")


def role_of(label: str) -> Role:
    if label == CEREMONY_LABEL:
        return "ceremony"
    for role in ("ksk", "zsk"):
        if f"-{role}-" in label:
            return role
    return "other"


@dataclass(frozen=True)
class KeyRecord:
    """A key as inventories, manifests and coverage reports describe it."""

    label: str
    id: bytes
    spec: alg.KeySpec
    public_key_der: bytes
    created: dt.date | None
    extractable: bool

    @property
    def role(self) -> Role:
        return role_of(self.label)

    @property
    def algorithm(self) -> int | None:
        return self.spec.algorithm

    @property
    def dnskey_public_key(self) -> bytes:
        return alg.dnskey_public_key(self.public_key_der)

    def key_tag(self, flags: int) -> int | None:
        if self.spec.algorithm is None:
            return None
        return alg.key_tag(flags, self.spec.algorithm, self.dnskey_public_key)

    @classmethod
    def from_object(cls, obj: KeyObject) -> KeyRecord:
        if obj.public_key_der is None:
            raise HsmError(
                f"Key '{obj.label}' ({obj.id.hex()}) has no public key object on the token.",
                hint="Restore its public key from the backup manifest (appliance hsm restore) "
                "or remove the orphaned private key.",
                label=obj.label,
            )
        spec = alg.spec_from_public_key(obj.public_key_der, ceremony=obj.label == CEREMONY_LABEL)
        return cls(obj.label, obj.id, spec, obj.public_key_der, obj.created, obj.extractable)


class HsmDnssecKey:
    """A DNSSEC key in the HSM, matching appliance.dnssec.signer.DnssecKeySigner.

    `sign()` returns the DNSSEC wire-format signature after checking it in software with the
    recorded public key. The session, key handle, mechanism and verifier are bound once, so
    a signature costs one C_SignInit/C_Sign, the host-side hash where the algorithm needs it,
    and the software verification.
    """

    __slots__ = ("record", "_prepare", "_raw", "_verify")

    def __init__(self, record: KeyRecord, raw_sign: Callable[[bytes], bytes]) -> None:
        if record.spec.algorithm is None:
            raise HsmError(f"'{record.label}' is not a DNSSEC key.", label=record.label)
        self.record = record
        self._prepare = alg.prepare(record.spec)
        self._raw = raw_sign
        self._verify = alg.verifier(record.public_key_der)

    @property
    def algorithm(self) -> int:
        assert self.record.spec.algorithm is not None  # noqa: S101 - checked in __init__
        return self.record.spec.algorithm

    @property
    def dnskey_public_key(self) -> bytes:
        return self.record.dnskey_public_key

    @property
    def label(self) -> str:
        return self.record.label

    def sign(self, data: bytes) -> bytes:
        """DNSSEC wire-format signature over `data`, verified before it is returned."""
        token_input = self._prepare(data)
        signature = self._raw(token_input)
        self._verify(token_input, signature)
        return signature

    def sign_unverified(self, data: bytes) -> bytes:
        """The token's signature without the software check.

        Only for a caller that verifies the result itself before using it (for example the
        DNSSEC layer validating each RRSIG against the DNSKEY): checking twice halves the
        ECDSA rate. Everything else calls `sign()`.
        """
        return self._raw(self._prepare(data))


class HsmCeremonyKey:
    """The appliance's ceremony key (P-256) in the HSM: an appliance.signing.CeremonySigner."""

    def __init__(self, record: KeyRecord, raw_sign: Callable[[bytes], bytes]) -> None:
        self.record = record
        self._raw = raw_sign
        self._der = record.public_key_der

    def public_key_der(self) -> bytes:
        return self._der

    def fingerprint(self) -> str:
        return signing.fingerprint(self._der)

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 over SHA-256(data), raw r||s, verified with appliance.signing.verify."""
        signature = bytes(self._raw(alg.prepare(alg.CEREMONY_SPEC)(data)))
        try:
            signing.verify(self._der, data, signature)
        except signing.SignatureInvalid:
            raise SignatureCheckFailed(
                "The ceremony key's signature does not verify with its public key.",
                hint="Do not use it; check the token (appliance hsm inventory).",
            ) from None
        return signature


def find(session: Session, *, label: str | None = None, key_id: bytes | None = None) -> KeyRecord:
    """The key with this label (or CKA_ID)."""
    for obj in session.key_objects():
        if (label is not None and obj.label == label) or (key_id is not None and obj.id == key_id):
            return KeyRecord.from_object(obj)
    what = f"label '{label}'" if label is not None else f"id {key_id.hex() if key_id else '?'}"
    raise KeyNotFound(
        f"No key with {what} on token '{session.info.label}'.",
        hint="List the keys with: appliance hsm inventory",
        label=label,
    )


def dnssec_key(session: Session, label: str) -> HsmDnssecKey:
    """An open DNSSEC signer for the key labelled `label` (bound to `session`)."""
    record = find(session, label=label)
    return HsmDnssecKey(record, session.signer(record.id, record.spec))


def ceremony_key(session: Session) -> HsmCeremonyKey:
    """The ceremony key of this token (generate it once with keygen.generate_ceremony_key)."""
    try:
        record = find(session, label=CEREMONY_LABEL)
    except KeyNotFound:
        raise KeyNotFound(
            f"Token '{session.info.label}' has no ceremony key.",
            hint="Generate it in the hsm-init ceremony (appliance hsm keygen --ceremony-key).",
        ) from None
    return HsmCeremonyKey(record, session.signer(record.id, record.spec))
