"""Provisioning a holder's card to the appliance's card profile (smartcard/README.md).

Cardholder name (5B) = role and holder in the ISO 7501 form "ROLE<<Given<Names", which
`gpg --card-status` shows as "Given Names ROLE"; login data (5E) = the role id; all three
keys are NIST P-256 generated on the card (SIG: ECDSA attestations, DEC: ECDH for sealed
shares, AUT: ECDSA). Fingerprints and creation times are written as gpg computes them, so
standard tools show the same fingerprints the appliance reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from appliance.cards.errors import CardError
from appliance.cards.openpgp import KeySlot, OpenPgpSession, Pin

_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 .,'-]*$")
NAME_MAX = 39


def cardholder_name(role: str, holder: str) -> str:
    """Encode role and holder for DO 5B ("CO1", "Alice Example" -> "CO1<<Alice<Example")."""
    for what, part in (("role", role), ("holder", holder)):
        if not _PART.match(part) or "  " in part:
            raise CardError(
                0x6A80,
                f"the {what} '{part}' must be ASCII letters, digits, spaces and . , ' -",
            )
    name = f"{role}<<{holder.strip().replace(' ', '<')}"
    if len(name) > NAME_MAX:
        raise CardError(0x6700, f"role and holder take {len(name)} characters; the card holds 39")
    return name


def parse_cardholder_name(name: str) -> tuple[str, str]:
    """(role, holder) from DO 5B; ("", name) for a name not written by the appliance."""
    if "<<" not in name:
        return "", name.replace("<", " ").strip()
    role, _, holder = name.partition("<<")
    return role, holder.replace("<", " ").strip()


@dataclass(frozen=True)
class ProvisionedCard:
    serial: str
    name: str
    login: str
    fingerprints: dict[KeySlot, bytes]
    #: SubjectPublicKeyInfo DER of each key (what appliance.signing.verify takes).
    public_keys: dict[KeySlot, bytes]


def provision(
    session: OpenPgpSession,
    admin_pin: bytearray,
    *,
    role: str,
    role_id: str,
    holder: str,
    timestamp: int,
    url: str = "",
) -> ProvisionedCard:
    """Write the profile and generate the three keys on the card. The caller wipes the PIN.

    Replaces any keys on the card: callers confirm that with the operator first.
    """
    name = cardholder_name(role, holder)
    session.verify(Pin.ADMIN, admin_pin)
    session.set_name(name)
    session.set_login_data(role_id)
    if url:
        session.set_url(url)
    publics: dict[KeySlot, bytes] = {}
    for slot in KeySlot:
        key = session.generate_key(slot, timestamp)
        publics[slot] = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    status = session.status()
    return ProvisionedCard(
        serial=status.serial,
        name=name,
        login=role_id,
        fingerprints=dict(status.fingerprints),
        public_keys=publics,
    )
