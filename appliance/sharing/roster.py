"""The roster: who holds which share of which set, signed by the ceremony key.

A roster is a JSON file:

    {"format": "appliance-roster/1",
     "body": {...canonical content...},
     "signature": {"algorithm": "ecdsa-p256-sha256", "public_key": <base64 DER>,
                   "value": <hex r||s over canonical JSON of body>}}

`body` holds `serial` (incremented at each write), `previous` (SHA-256 of the previous
body, so versions chain), `updated_at`, the credential `sets` and the sealed `notes`.
Loading checks the signature against the ceremony key the caller trusts (by fingerprint or
DER) before anything else: a roster whose signature fails is an error. Parsing is strict:
unknown or missing keys and wrong types are errors naming the place (`sets[1].members[0]...`).

The roster holds no secret: envelopes are sealed to cards, commitments are salted hashes,
notes are sealed to a quorum.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from appliance import atomic, canonical, media, signing
from appliance.sharing.commitment import Commitment
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import RosterError
from appliance.sharing.ports import CardFingerprints

FORMAT = "appliance-roster/1"
STATUS_ACTIVE = "active"
STATUS_RETIRED = "retired"
#: A roster of hundreds of holders is well under 1 MiB; anything far larger is not one.
MAX_ROSTER_BYTES = 16 * 1024 * 1024


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str, where: str = "timestamp") -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise RosterError(
            f"{where}: {text!r} is not a UTC timestamp like 2026-01-31T12:00:00Z"
        ) from None


@dataclass(frozen=True)
class Member:
    """One holder's place in one set."""

    role: str
    holder: str
    card_serial: str
    fingerprints: CardFingerprints
    ecdh_public_key: str  # hex, uncompressed P-256 point
    signing_public_key: str  # hex, uncompressed P-256 point
    group_index: int
    index: int
    commitment: Commitment
    envelope: str  # hex of the sealed envelope (the card's DO 0101 holds the same bytes)
    envelope_on_card: bool
    issued_at: str
    card_version: str
    card_provisioned_at: str
    last_retest: str | None = None
    last_retest_tries_left: int | None = None
    last_attestation: str | None = None
    location_hint: str | None = None  # note id
    emergency_contact: str | None = None  # note id
    revoked: bool = False
    revoked_at: str | None = None
    revoked_reason: str | None = None

    @property
    def label(self) -> str:
        return f"{self.role} {self.holder} (card {self.card_serial}, share {self.index})"


@dataclass(frozen=True)
class CredentialSet:
    set_id: str  # SLIP-39 identifier, 4 hex digits
    purpose: Purpose
    subject: str  # "token ceremony", "backup 2026-q1", "location hint of RKSH5"
    threshold: int
    group_threshold: int
    created_at: str
    members: tuple[Member, ...]
    status: str = STATUS_ACTIVE
    retired_at: str | None = None
    replaced_by: str | None = None

    @property
    def identifier(self) -> int:
        return int(self.set_id, 16)

    @property
    def live_members(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if not m.revoked)

    @property
    def group_count(self) -> int:
        """Groups (sites) of a multi-site set; 1 for a plain k-of-n set. Every group has the
        member threshold `threshold`; any `group_threshold` complete groups open the set."""
        return 1 + max((m.group_index for m in self.members), default=0)

    def live_in_group(self, group_index: int) -> int:
        return sum(1 for m in self.live_members if m.group_index == group_index)

    def spare(self) -> int:
        """How many more live members the set can lose and still be opened (-1: it cannot
        be opened any more)."""
        kill = sorted(
            self.live_in_group(g) - self.threshold + 1
            for g in range(self.group_count)
            if self.live_in_group(g) >= self.threshold
        )
        if len(kill) < self.group_threshold:
            return -1
        return sum(kill[: len(kill) - self.group_threshold + 1]) - 1

    def member_by_serial(self, serial: str) -> Member | None:
        for m in self.members:
            if m.card_serial == serial:
                return m
        return None

    def member_by_index(self, group_index: int, index: int) -> Member | None:
        for m in self.members:
            if (m.group_index, m.index) == (group_index, index):
                return m
        return None


@dataclass(frozen=True)
class SealedNote:
    """A location hint or an emergency contact, sealed under a key shared by a quorum set."""

    note_id: str
    kind: str  # "location-hint" | "emergency-contact"
    about: str  # the holder's card serial
    quorum_set: str  # set_id of the quorum that can open it
    ciphertext: str  # hex: 12-byte nonce || AES-256-GCM ciphertext and tag
    written_at: str


@dataclass(frozen=True)
class Roster:
    serial: int = 0
    previous: str = ""
    updated_at: str = ""
    sets: tuple[CredentialSet, ...] = ()
    notes: tuple[SealedNote, ...] = ()
    #: The ceremony key that signed this roster (DER); empty for an unsaved roster.
    signer_public_key: bytes = field(default=b"", compare=False)

    def get_set(self, set_id: str) -> CredentialSet:
        for s in self.sets:
            if s.set_id == set_id:
                return s
        raise RosterError(
            f"the roster has no credential set {set_id}",
            hint="Check the set id against the printed roster.",
        )

    def active_sets(self, purpose: Purpose | None = None) -> list[CredentialSet]:
        return [
            s
            for s in self.sets
            if s.status == STATUS_ACTIVE and (purpose is None or s.purpose == purpose)
        ]

    def set_for(self, purpose: Purpose, subject: str) -> CredentialSet:
        found = [s for s in self.active_sets(purpose) if s.subject == subject]
        if not found:
            raise RosterError(
                f"no active {purpose.label} set for {subject!r} in the roster",
                hint="Issue one first, or check the subject name.",
            )
        return found[0]

    def get_note(self, note_id: str) -> SealedNote:
        for n in self.notes:
            if n.note_id == note_id:
                return n
        raise RosterError(f"the roster has no sealed note {note_id}")

    def with_set(self, new: CredentialSet) -> Roster:
        """This roster with `new` replacing the set of the same id (or added)."""
        sets = [s for s in self.sets if s.set_id != new.set_id]
        pos = next((i for i, s in enumerate(self.sets) if s.set_id == new.set_id), len(sets))
        sets.insert(pos, new)
        return dataclasses.replace(self, sets=tuple(sets))

    def with_member(self, set_id: str, member: Member) -> Roster:
        cs = self.get_set(set_id)
        members = tuple(
            member if (m.group_index, m.index) == (member.group_index, member.index) else m
            for m in cs.members
        )
        if members == cs.members and member not in members:
            members = (*cs.members, member)
        return self.with_set(dataclasses.replace(cs, members=members))

    def with_note(self, note: SealedNote) -> Roster:
        return dataclasses.replace(
            self, notes=tuple(n for n in self.notes if n.note_id != note.note_id) + (note,)
        )

    def superseded_on_card(self, serial: str, on_card: bytes) -> bool:
        """True when a card holds nothing, or exactly the envelope this roster recorded for
        it in a retired set (a rekey sealed its new share while the card was away). Any
        other difference from the roster's copy is a changed envelope."""
        if not on_card:
            return True
        text = on_card.hex()
        for s in self.sets:
            m = s.member_by_serial(serial) if s.status == STATUS_RETIRED else None
            if m is not None and m.envelope == text:
                return True
        return False

    def set_ids(self) -> set[int]:
        return {s.identifier for s in self.sets}


# --- serialisation ---------------------------------------------------------------------------


def _member_json(m: Member) -> dict[str, Any]:
    d = dataclasses.asdict(m)
    d["fingerprints"] = dataclasses.asdict(m.fingerprints)
    d["commitment"] = m.commitment.as_text()
    return d


def body_of(roster: Roster) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "serial": roster.serial,
        "previous": roster.previous,
        "updated_at": roster.updated_at,
        "sets": [
            {
                "set_id": s.set_id,
                "purpose": s.purpose.label,
                "subject": s.subject,
                "threshold": s.threshold,
                "group_threshold": s.group_threshold,
                "created_at": s.created_at,
                "status": s.status,
                "retired_at": s.retired_at,
                "replaced_by": s.replaced_by,
                "members": [_member_json(m) for m in s.members],
            }
            for s in roster.sets
        ],
        "notes": [dataclasses.asdict(n) for n in roster.notes],
    }


def body_digest(roster: Roster) -> str:
    return canonical.sha256_hex(body_of(roster))


def dumps(
    roster: Roster, signer: signing.CeremonySigner, *, when: datetime | None = None
) -> tuple[bytes, Roster]:
    """The next version of `roster` as signed file bytes, and that version."""
    nxt = dataclasses.replace(
        roster,
        serial=roster.serial + 1,
        previous=body_digest(roster) if roster.serial else "",
        updated_at=stamp(when or now_utc()),
        signer_public_key=signer.public_key_der(),
    )
    body = body_of(nxt)
    sig = signer.sign(canonical.dumps(body))
    doc = {
        "format": FORMAT,
        "body": body,
        "signature": {
            "algorithm": signing.ALGORITHM,
            "public_key": base64.b64encode(nxt.signer_public_key).decode("ascii"),
            "value": sig.hex(),
        },
    }
    return canonical.pretty(doc), nxt


def save(
    path: Path, roster: Roster, signer: signing.CeremonySigner, *, when: datetime | None = None
) -> Roster:
    """Sign and atomically write the next version of `roster`; returns that version."""
    data, nxt = dumps(roster, signer, when=when)
    atomic.write_bytes(Path(path), data)
    return nxt


# --- strict parsing --------------------------------------------------------------------------

T = TypeVar("T")


class _Obj:
    """A JSON object being read strictly; every key must be consumed."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise RosterError(f"{where}: expected an object, found {type(value).__name__}")
        self.value: dict[str, Any] = value
        self.where = where
        self.seen: set[str] = set()

    def _get(self, key: str, kinds: tuple[type, ...], optional: bool) -> Any:
        self.seen.add(key)
        if key not in self.value:
            if optional:
                return None
            raise RosterError(f"{self.where}: missing key {key!r}")
        v = self.value[key]
        if v is None and optional:
            return None
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            names = "/".join(k.__name__ for k in kinds)
            raise RosterError(f"{self.where}.{key}: expected {names}, found {type(v).__name__}")
        return v

    def text(self, key: str) -> str:
        v: str = self._get(key, (str,), False)
        return v

    def opt_text(self, key: str) -> str | None:
        v: str | None = self._get(key, (str,), True)
        return v

    def integer(self, key: str) -> int:
        v: int = self._get(key, (int,), False)
        return v

    def opt_integer(self, key: str) -> int | None:
        v: int | None = self._get(key, (int,), True)
        return v

    def flag(self, key: str) -> bool:
        v: bool = self._get(key, (bool,), False)
        return v

    def obj(self, key: str) -> _Obj:
        return _Obj(self._get(key, (dict,), False), f"{self.where}.{key}")

    def items(self, key: str, item: Callable[[Any, str], T]) -> tuple[T, ...]:
        items = self._get(key, (list,), False)
        return tuple(item(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(items))

    def hexa(self, key: str, size: int | None = None) -> str:
        v = self.text(key)
        try:
            raw = bytes.fromhex(v)
        except ValueError:
            raise RosterError(f"{self.where}.{key}: not hexadecimal") from None
        if size is not None and len(raw) != size:
            raise RosterError(f"{self.where}.{key}: expected {size} bytes, found {len(raw)}")
        return v

    def stamp(self, key: str, optional: bool = False) -> str | None:
        v = self.opt_text(key) if optional else self.text(key)
        if v is not None:
            parse_stamp(v, f"{self.where}.{key}")
        return v

    def done(self) -> None:
        extra = sorted(set(self.value) - self.seen)
        if extra:
            raise RosterError(
                f"{self.where}: unknown key {extra[0]!r}",
                hint="The roster was written by another version or edited by hand.",
            )


def _commitment(text: str, where: str) -> Commitment:
    salt, sep, digest = text.partition(":")
    try:
        ok = sep == ":" and len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 32
    except ValueError:
        ok = False
    if not ok:
        raise RosterError(f"{where}: commitment must be 'salt-hex:sha256-hex'")
    return Commitment(salt, digest)


def _member(value: Any, where: str) -> Member:
    o = _Obj(value, where)
    fp = o.obj("fingerprints")
    fps = CardFingerprints(fp.text("signing"), fp.text("decryption"), fp.text("authentication"))
    fp.done()
    m = Member(
        role=o.text("role"),
        holder=o.text("holder"),
        card_serial=o.text("card_serial"),
        fingerprints=fps,
        ecdh_public_key=o.hexa("ecdh_public_key", 65),
        signing_public_key=o.hexa("signing_public_key", 65),
        group_index=o.integer("group_index"),
        index=o.integer("index"),
        commitment=_commitment(o.text("commitment"), f"{where}.commitment"),
        envelope=o.hexa("envelope"),
        envelope_on_card=o.flag("envelope_on_card"),
        issued_at=o.stamp("issued_at") or "",
        card_version=o.text("card_version"),
        card_provisioned_at=o.stamp("card_provisioned_at") or "",
        last_retest=o.stamp("last_retest", True),
        last_retest_tries_left=o.opt_integer("last_retest_tries_left"),
        last_attestation=o.stamp("last_attestation", True),
        location_hint=o.opt_text("location_hint"),
        emergency_contact=o.opt_text("emergency_contact"),
        revoked=o.flag("revoked"),
        revoked_at=o.stamp("revoked_at", True),
        revoked_reason=o.opt_text("revoked_reason"),
    )
    o.done()
    if not 0 <= m.index < 16 or not 0 <= m.group_index < 16:
        raise RosterError(f"{where}: share index must be within 0..15")
    return m


def _set(value: Any, where: str) -> CredentialSet:
    o = _Obj(value, where)
    set_id = o.hexa("set_id", 2)
    try:
        purpose = Purpose.from_label(o.text("purpose"))
    except ValueError:
        raise RosterError(
            f"{where}.purpose: unknown purpose; expected one of "
            + ", ".join(p.label for p in Purpose)
        ) from None
    cs = CredentialSet(
        set_id=set_id,
        purpose=purpose,
        subject=o.text("subject"),
        threshold=o.integer("threshold"),
        group_threshold=o.integer("group_threshold"),
        created_at=o.stamp("created_at") or "",
        status=o.text("status"),
        retired_at=o.stamp("retired_at", True),
        replaced_by=o.opt_text("replaced_by"),
        members=o.items("members", _member),
    )
    o.done()
    if cs.status not in (STATUS_ACTIVE, STATUS_RETIRED):
        raise RosterError(f"{where}.status: must be 'active' or 'retired'")
    if not 1 <= cs.threshold <= 16:
        raise RosterError(f"{where}.threshold: must be within 1..16")
    seen: set[tuple[int, int]] = set()
    for m in cs.members:
        if (m.group_index, m.index) in seen:
            raise RosterError(f"{where}: two members hold share {m.index} of group {m.group_index}")
        seen.add((m.group_index, m.index))
    return cs


def _note(value: Any, where: str) -> SealedNote:
    o = _Obj(value, where)
    n = SealedNote(
        note_id=o.text("note_id"),
        kind=o.text("kind"),
        about=o.text("about"),
        quorum_set=o.hexa("quorum_set", 2),
        ciphertext=o.hexa("ciphertext"),
        written_at=o.stamp("written_at") or "",
    )
    o.done()
    if n.kind not in ("location-hint", "emergency-contact"):
        raise RosterError(f"{where}.kind: must be 'location-hint' or 'emergency-contact'")
    return n


def loads(
    data: bytes,
    *,
    trusted_fingerprint: str | None = None,
    trusted_public_key: bytes | None = None,
    where: str = "roster",
) -> Roster:
    """Parse and verify a roster file. The trusted key is required: the roster's signature
    must verify and its key must be the one the caller trusts."""
    if not trusted_fingerprint and not trusted_public_key:
        raise RosterError(
            "a roster can only be loaded against a trusted ceremony key",
            hint="Give the ceremony key's fingerprint (from the printed ceremony sheet).",
        )
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RosterError(f"{where}: not a JSON roster ({exc})") from None
    if canonical.pretty(doc) != data:
        raise RosterError(
            f"{where} is not laid out as the appliance writes it: it was edited or damaged",
            hint="Use the roster file exactly as the appliance wrote it (another copy).",
        )
    top = _Obj(doc, where)
    if top.text("format") != FORMAT:
        raise RosterError(f"{where}: format {top.value['format']!r} is not {FORMAT!r}")
    sig = top.obj("signature")
    if sig.text("algorithm") != signing.ALGORITHM:
        raise RosterError(f"{where}.signature.algorithm: expected {signing.ALGORITHM}")
    try:
        key = canonical.b64_bytes(sig.text("public_key"))
        value = canonical.hex_bytes(sig.text("value"))
    except ValueError:
        raise RosterError(f"{where}.signature: public_key or value is not well encoded") from None
    sig.done()
    body_raw = top._get("body", (dict,), False)
    top.done()
    if trusted_public_key is not None and key != trusted_public_key:
        raise RosterError(
            f"{where} is signed by ceremony key {signing.fingerprint(key)[:16]}, not by the "
            f"trusted key {signing.fingerprint(trusted_public_key)[:16]}",
            hint="Use the roster written by this appliance's ceremony key.",
        )
    if trusted_fingerprint is not None and signing.fingerprint(key) != trusted_fingerprint.lower():
        raise RosterError(
            f"{where} is signed by ceremony key {signing.fingerprint(key)[:16]}..., not by "
            f"{trusted_fingerprint[:16]}...",
            hint="Compare the fingerprint with the printed ceremony sheet.",
        )
    try:
        signing.verify(key, canonical.dumps(body_raw), value)
    except signing.SignatureInvalid as exc:
        raise RosterError(
            f"{where}: the signature does not verify: {exc.message}",
            hint="The roster was changed after it was signed: do not use it; restore the "
            "last signed copy.",
        ) from None
    body = _Obj(body_raw, f"{where}.body")
    if body.text("format") != FORMAT:
        raise RosterError(f"{where}.body.format: expected {FORMAT!r}")
    roster = Roster(
        serial=body.integer("serial"),
        previous=body.text("previous"),
        updated_at=body.stamp("updated_at") or "",
        sets=body.items("sets", _set),
        notes=body.items("notes", _note),
        signer_public_key=key,
    )
    body.done()
    ids = [s.set_id for s in roster.sets]
    if len(ids) != len(set(ids)):
        raise RosterError(f"{where}: two sets share one set id")
    return roster


def load(
    path: Path, *, trusted_fingerprint: str | None = None, trusted_public_key: bytes | None = None
) -> Roster:
    path = Path(path)
    try:
        data = media.read_file(path, MAX_ROSTER_BYTES)
    except media.Refused as exc:
        raise RosterError(f"roster {exc}", hint=exc.hint) from None
    return loads(
        data,
        trusted_fingerprint=trusted_fingerprint,
        trusted_public_key=trusted_public_key,
        where=str(path),
    )


def iter_members(roster: Roster) -> Iterator[tuple[CredentialSet, Member]]:
    for s in roster.sets:
        for m in s.members:
            yield s, m
