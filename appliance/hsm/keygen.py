"""Key generation on the token: DNSSEC keys, the ceremony key, and pre-generated periods.

Every key is generated on the token, sensitive, and extractable until a backup covers it
(the backup then locks it: docs/hsm.md "Extractability"). A KSK that no backup can cover
(Ed25519 on SoftHSM 2.6.1, which cannot wrap it) is refused unless the operator overrides;
the override comes back in `Generated.override` so the ceremony journal records it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.hsm import algorithms as alg
from appliance.hsm import backup, keys
from appliance.hsm.errors import KeyNotCoverable, LabelInUse
from appliance.hsm.pkcs11_adapter import Session


@dataclass(frozen=True)
class Generated:
    key: keys.KeyRecord
    #: False when no backup on this token can cover the key.
    coverable: bool
    #: Set when an uncoverable KSK was generated on the operator's override: journal it.
    override: str | None = None


@dataclass(frozen=True)
class Plan:
    """One key of a pre-generation period."""

    zone: str
    role: str  # "ksk" | "zsk"
    algorithm: int
    first_use: dt.date
    bits: int | None = None


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def coverable(session: Session, spec: alg.KeySpec) -> bool:
    """Can a backup of this token cover a key of `spec`?"""
    if not session.can_wrap():
        return False
    if spec.kind == "ed25519":
        return session.can_wrap_ed25519()
    return True


def generate_key(
    session: Session,
    algorithm: int,
    *,
    role: str,
    zone: str = "",
    label: str | None = None,
    bits: int | None = None,
    allow_uncoverable: bool = False,
    today: dt.date | None = None,
    first_use: dt.date | None = None,
) -> Generated:
    """Generate a DNSSEC key; label from the convention unless given (then it must be free).

    `today` is the generation day (CKA_START_DATE), `first_use` the day in the label
    (defaults to today; pre-generated keys carry the day they start to be used).
    """
    if role not in ("ksk", "zsk"):
        raise ValueError(f"role must be 'ksk' or 'zsk', not {role!r}")
    spec = alg.spec_for(algorithm, bits)
    session.require(spec)
    day = today or _today()
    can_cover = coverable(session, spec)
    override = None
    if not can_cover and role == "ksk":
        why = (
            f"token '{session.info.label}' cannot wrap {spec.type_name} keys, so no backup "
            "can cover this KSK: if the token is lost, the KSK is lost"
        )
        if not allow_uncoverable:
            raise KeyNotCoverable(
                f"Refusing to generate a KSK that no backup can cover: {why}.",
                hint="Choose algorithm 13 or 8 for the KSK, or override knowingly "
                "(--allow-uncoverable); the override is recorded in the journal.",
                algorithm=algorithm,
            )
        override = f"uncoverable KSK generated on operator override: {why}"
    if label is None:
        label = _free_label(session, keys.dnssec_label(zone, role, algorithm, first_use or day))
    else:
        keys.check_label(label)
        if label == keys.CEREMONY_LABEL:
            raise LabelInUse(
                f"'{label}' is reserved for the ceremony key.", hint="Choose another label."
            )
    obj = session.generate(spec, label, extractable=True, created=day)
    return Generated(keys.KeyRecord.from_object(obj), can_cover, override)


def generate_ceremony_key(session: Session, *, today: dt.date | None = None) -> keys.HsmCeremonyKey:
    """Generate the token's ceremony key (P-256, its own key: never a DNSSEC key)."""
    obj = session.generate(
        alg.CEREMONY_SPEC, keys.CEREMONY_LABEL, extractable=True, created=today or _today()
    )
    record = keys.KeyRecord.from_object(obj)
    return keys.HsmCeremonyKey(record, session.signer(record.id, record.spec))


def _free_label(session: Session, base: str) -> str:
    taken = session.labels()
    if base not in taken:
        return base
    for n in range(2, 1000):
        candidate = f"{base}-{n}"
        if candidate not in taken:
            return candidate
    raise LabelInUse(f"No free label left for '{base}'.", hint="Give a label explicitly.")


def pregenerate(
    session: Session,
    plans: Sequence[Plan],
    wrapping_key: bytearray,
    backups_dir: Path,
    *,
    today: dt.date | None = None,
) -> tuple[list[Generated], backup.BackupResult]:
    """Generate a period's keys and back them all up in the same step.

    All or nothing: a key that cannot be covered stops the step before anything is
    generated, and a failed backup removes the keys this step generated. Returns the keys
    and the `backup.BackupResult`.
    """
    for plan in plans:
        spec = alg.spec_for(plan.algorithm, plan.bits)
        session.require(spec)
        if not coverable(session, spec):
            raise KeyNotCoverable(
                f"Pre-generated {plan.role} keys of algorithm {plan.algorithm} cannot be backed "
                f"up on token '{session.info.label}'.",
                hint="Pre-generate only keys the backup can cover (algorithms 8, 13, 14 here).",
                algorithm=plan.algorithm,
            )
    made: list[Generated] = []
    try:
        for plan in plans:
            made.append(
                generate_key(
                    session,
                    plan.algorithm,
                    role=plan.role,
                    zone=plan.zone,
                    bits=plan.bits,
                    today=today,
                    first_use=plan.first_use,
                )
            )
        result = backup.create_backup(session, wrapping_key, backups_dir)
        missing = [g.key.label for g in made if g.key.id not in result.covered_ids]
        if missing:
            raise KeyNotCoverable(
                "The backup does not cover the pre-generated keys " + ", ".join(missing) + ".",
                hint="Nothing of this step was kept; check the token and repeat.",
            )
    except BaseException:
        for g in made:
            session.destroy_key(g.key.id)
        raise
    return made, result
