"""Attestations: a holder's card signs, on the card, "in my custody and intact".

A holder runs `appliance attest` at home with a reader, their card, their PIN and a copy of
the roster (which holds no secret). The card first opens its own sealed share and checks it
against the roster's commitment (so "intact" is a tested fact, not a promise), then signs
the statement with its signing key (PSO:CDS). The output is a JSON file and a QR image
(base32 text: QR alphanumeric mode reads back exactly). `verify` checks an attestation
against the roster: the member, the commitment and the card's signing key recorded at issue.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from appliance import atomic, canonical, signing
from appliance.sharing import commitment, envelope
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import AttestationError, EnvelopeError, QuorumError
from appliance.sharing.ports import HolderCard
from appliance.sharing.roster import (
    STATUS_RETIRED,
    CredentialSet,
    Member,
    Roster,
    now_utc,
    parse_stamp,
    stamp,
)
from appliance.sharing.wipe import wipe

FORMAT = "appliance-attestation/1"
STATEMENT = "in my custody and intact"
QR_PREFIX = "APPLIANCE-ATTEST1:"
_KEYS = {
    "format",
    "set_id",
    "purpose",
    "subject",
    "group_index",
    "index",
    "holder",
    "card_serial",
    "commitment",
    "date",
    "nonce",
    "statement",
    "roster_serial",
}


@dataclass(frozen=True)
class Attestation:
    statement: dict[str, Any]
    signature: bytes

    def to_json(self) -> bytes:
        doc = {"attestation": self.statement, "signature": self.signature.hex()}
        return canonical.pretty(doc)

    def qr_text(self) -> str:
        doc = {"attestation": self.statement, "signature": self.signature.hex()}
        return QR_PREFIX + base64.b32encode(canonical.dumps(doc)).decode("ascii").rstrip("=")

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write `attestation-<set>-<index>-<date>.json` and `.png` (QR) into `folder`."""
        import qrcode  # heavy: only when an image is made
        from qrcode.util import MODE_ALPHA_NUM, QRData

        s = self.statement
        base = f"attestation-{s['set_id']}-{s['index']}-{s['date'][:10]}"
        json_path = Path(folder) / f"{base}.json"
        png_path = Path(folder) / f"{base}.png"
        atomic.write_bytes(json_path, self.to_json())
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8)
        qr.add_data(QRData(self.qr_text().encode("ascii"), mode=MODE_ALPHA_NUM))
        qr.make(fit=True)
        image = qr.make_image()
        tmp = png_path.with_suffix(".png.tmp")
        image.save(str(tmp))
        tmp.replace(png_path)
        return json_path, png_path


def find_member(
    roster: Roster, serial: str, set_id: str | None = None
) -> tuple[CredentialSet, Member]:
    """The active credential set and member for a card (the set named, or its only one)."""
    found = [
        (s, m)
        for s in roster.active_sets()
        if s.purpose in (Purpose.HSM_ACTIVATION, Purpose.BACKUP_KEY)
        and (set_id is None or s.set_id == set_id)
        for m in s.members
        if m.card_serial == serial and not m.revoked
    ]
    if not found:
        raise QuorumError(
            f"card {serial} holds no live share of "
            + (f"set {set_id}" if set_id else "any active set")
            + " in this roster",
            hint="Use the card issued to you and the latest roster.",
        )
    if len(found) > 1:
        raise QuorumError(
            f"card {serial} holds shares of several sets: " + ", ".join(s.set_id for s, _ in found),
            hint="Name the set to attest (--set).",
        )
    return found[0]


def make_attestation(
    roster: Roster,
    card: HolderCard,
    pin: bytearray,
    *,
    set_id: str | None = None,
    nonce: str | None = None,
    now: datetime | None = None,
) -> Attestation:
    """Check the card's share against the roster, then sign the statement on the card.
    The PIN is wiped."""
    try:
        cset, member = find_member(roster, card.serial, set_id)
        card.verify_pin(pin)
        on_card, sealed = card.read_private_do(), bytes.fromhex(member.envelope)
        if on_card != sealed:
            if not roster.superseded_on_card(card.serial, on_card):
                raise EnvelopeError(
                    f"the sealed share on card {card.serial} differs from the roster's copy",
                    hint="Do not attest; bring the card to the next ceremony for a retest.",
                )
            card.write_private_do(sealed)  # a rekey happened while the card was away
        share = envelope.open_with_card(card, sealed)
        try:
            commitment.check(share, member.commitment, where=f"card {card.serial}")
        finally:
            wipe(share)
        statement = {
            "format": FORMAT,
            "set_id": cset.set_id,
            "purpose": cset.purpose.label,
            "subject": cset.subject,
            "group_index": member.group_index,
            "index": member.index,
            "holder": member.holder,
            "card_serial": card.serial,
            "commitment": member.commitment.as_text(),
            "date": stamp(now or now_utc()),
            "nonce": nonce or secrets.token_hex(16),
            "statement": STATEMENT,
            "roster_serial": roster.serial,
        }
        card.verify_pin(pin, for_signing=True)
        signature = card.sign(canonical.dumps(statement))
    finally:
        wipe(pin)
    return Attestation(statement, signature)


def parse(data: bytes | str) -> Attestation:
    """An attestation from its JSON file or its QR text, parsed strictly."""
    whole = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = whole.strip()  # a scanner ends the QR text with a newline
    try:
        if text.startswith(QR_PREFIX):
            b32 = text[len(QR_PREFIX) :]
            raw = base64.b32decode(b32 + "=" * (-len(b32) % 8))
            doc = json.loads(raw)
            written = QR_PREFIX + base64.b32encode(canonical.dumps(doc)).decode().rstrip("=")
        else:
            doc = json.loads(text)
            text, written = whole, canonical.pretty(doc).decode("utf-8")  # the file, exactly
    except (ValueError, UnicodeDecodeError, TypeError):
        raise AttestationError(
            "not an attestation (neither its JSON file nor its QR text)",
            hint="Give the .json file written by `appliance attest` or the scanned QR text.",
        ) from None
    if written != text:  # one spelling only: any other is a changed document
        raise AttestationError(
            "the attestation is not written as the appliance writes it: it was edited, "
            "damaged or misread",
            hint="Give the .json file as written, or scan the QR code again.",
        )
    if not isinstance(doc, dict) or set(doc) != {"attestation", "signature"}:
        raise AttestationError("an attestation has exactly 'attestation' and 'signature'")
    st, sig = doc["attestation"], doc["signature"]
    if not isinstance(st, dict) or set(st) != _KEYS:
        missing = sorted(_KEYS - set(st)) if isinstance(st, dict) else []
        extra = sorted(set(st) - _KEYS) if isinstance(st, dict) else []
        raise AttestationError(
            "the attested statement has the wrong fields"
            + (f" (missing {missing})" if missing else "")
            + (f" (unknown {extra})" if extra else "")
        )
    for key in _KEYS - {"group_index", "index", "roster_serial"}:
        if not isinstance(st[key], str):
            raise AttestationError(f"attestation field {key!r} must be text")
    for key in ("group_index", "index", "roster_serial"):
        if not isinstance(st[key], int) or isinstance(st[key], bool):
            raise AttestationError(f"attestation field {key!r} must be an integer")
    if st["format"] != FORMAT or st["statement"] != STATEMENT:
        raise AttestationError("the attestation's format or statement text is not ours")
    try:
        signature = canonical.hex_bytes(sig) if isinstance(sig, str) else b""
    except ValueError:
        signature = b""
    if len(signature) != 64:
        raise AttestationError("the attestation's signature is not 64 bytes of hex")
    parse_stamp(st["date"], "attestation date")
    return Attestation(st, signature)


@dataclass(frozen=True)
class Verified:
    set_id: str
    holder: str
    card_serial: str
    index: int
    date: str


def verify(roster: Roster, attestation: Attestation, *, now: datetime | None = None) -> Verified:
    """Check an attestation against the roster; raise AttestationError naming the failure."""
    st = attestation.statement
    try:
        cset = roster.get_set(st["set_id"])
    except Exception:
        raise AttestationError(f"the roster has no set {st['set_id']}") from None
    if cset.status == STATUS_RETIRED:
        raise AttestationError(
            f"set {cset.set_id} was retired: an attestation for it proves nothing",
            hint="The holder attests the share of the current set.",
        )
    member = cset.member_by_index(st["group_index"], st["index"])
    if member is None:
        raise AttestationError(f"set {cset.set_id} has no member with share {st['index']}")
    if member.card_serial != st["card_serial"]:
        raise AttestationError(
            f"share {member.index} of set {cset.set_id} was issued to card {member.card_serial},"
            f" not to card {st['card_serial']}"
        )
    if member.revoked:
        raise AttestationError(f"{member.label} was revoked")
    if st["commitment"] != member.commitment.as_text():
        raise AttestationError(
            f"the attested commitment differs from the roster's for {member.label}"
        )
    key = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), bytes.fromhex(member.signing_public_key)
    )
    try:
        key.verify(
            signing.raw_to_der(attestation.signature),
            canonical.dumps(st),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise AttestationError(
            f"the signature is not by the card issued to {member.holder} "
            f"(card {member.card_serial}), or the statement was changed",
            hint="Do not record it; ask the holder to attest again with their card.",
        ) from None
    date = parse_stamp(st["date"])
    if date > (now or now_utc()) + timedelta(days=1):
        raise AttestationError(f"the attestation is dated in the future ({st['date']})")
    return Verified(cset.set_id, member.holder, member.card_serial, member.index, st["date"])


def record(roster: Roster, verified: Verified) -> Roster:
    """The roster with the member's last attestation date set (when newer)."""
    member = roster.get_set(verified.set_id).member_by_serial(verified.card_serial)
    assert member is not None  # noqa: S101 - verify() found it
    if member.last_attestation and member.last_attestation >= verified.date:
        return roster
    return roster.with_member(
        verified.set_id, dataclasses.replace(member, last_attestation=verified.date)
    )
