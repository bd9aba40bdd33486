"""Errors of the credentials layer: each says what is wrong and what the room does next."""

from __future__ import annotations

from appliance.errors import SharingError


class ShareFormatError(SharingError):
    """A share (words or binary) is malformed or fails its checksum."""

    title = "Share"


class CombineError(SharingError):
    """The shares given do not combine into the secret."""

    title = "Share combination"


class EnvelopeError(SharingError):
    """A sealed envelope is malformed, was changed, or was sealed for another card."""

    title = "Sealed share"


class CommitmentMismatch(SharingError):
    """An opened share does not match the commitment in the roster."""

    title = "Share commitment"


class RosterError(SharingError):
    """A roster file is malformed, unsigned, signed by another key, or inconsistent."""

    title = "Roster"


class QuorumError(SharingError):
    """A card presented to a quorum is refused (duplicate, other set, revoked, not enough)."""

    title = "Quorum"


class CardError(SharingError):
    """The holder's card refused an operation (wrong PIN, blocked, removed, not provisioned)."""

    title = "Holder card"


class WrongPin(CardError):
    def __init__(self, tries_left: int, *, serial: str) -> None:
        super().__init__(
            f"PIN wrong for card {serial}: {tries_left} tries left before the card locks.",
            hint="Let the holder type the PIN again, slowly." if tries_left else "",
            tries_left=tries_left,
            serial=serial,
        )
        self.tries_left = tries_left


class PinBlocked(CardError):
    def __init__(self, *, serial: str) -> None:
        super().__init__(
            f"The PIN of card {serial} is blocked (no tries left).",
            hint="The holder's card must be unblocked with the reset code or admin PIN, "
            "or replaced with a quorum (see docs/credentials.md).",
            tries_left=0,
            serial=serial,
        )
        self.tries_left = 0


class CardRemoved(CardError):
    def __init__(self, *, serial: str = "") -> None:
        super().__init__(
            f"The card {serial} was removed before the operation finished.".replace("  ", " "),
            hint="Insert the card again; nothing was recorded for it.",
            serial=serial,
        )


class AttestationError(SharingError):
    """An attestation does not verify against the roster."""

    title = "Attestation"
