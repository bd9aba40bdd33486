"""The card port the credential flows need, and nothing more.

A holder's card is an OpenPGP card (v3.4 application): an ECDH P-256 decryption key and an
ECDSA P-256 signing key generated on the card, a user PIN (PW1) and an admin PIN (PW3), and
private-use data objects. The cards layer speaks APDUs; `appliance.sharing.openpgp_card`
adapts its session to these protocols, `appliance.sharing.fake_card` is the in-memory fake.

Contract for implementations:
- PINs arrive as bytearrays; the implementation does not keep them (the flows wipe them).
- A wrong PIN raises `WrongPin(tries_left)`; a blocked one `PinBlocked`; a card pulled out
  mid-operation `CardRemoved`; other refusals `CardError`. No retry is spent silently.
- `decipher` is PSO:DECIPHER with the ECDH key: it takes the other party's uncompressed point
  (65 bytes, 04||X||Y) and returns the shared secret's X coordinate (32 bytes), only after
  `verify_pin(pin)` (PW1 for decipher, reference 0x82).
- `sign` is PSO:COMPUTE DIGITAL SIGNATURE: ECDSA P-256 over SHA-256(data), raw r||s,
  only after `verify_pin(pin, for_signing=True)` (PW1 reference 0x81).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

#: Private-use data object holding the sealed envelope (readable always, writable after PW1).
ENVELOPE_DO = 0x0101
#: PINs of a factory-fresh OpenPGP card (spec defaults); provisioning replaces them at once.
FACTORY_USER_PIN = b"123456"
FACTORY_ADMIN_PIN = b"12345678"


@dataclass(frozen=True)
class CardFingerprints:
    """OpenPGP v4 fingerprints (hex, 40 digits) of the card's signing, decryption and
    authentication keys, as `gpg --card-status` prints them; empty when absent."""

    signing: str
    decryption: str
    authentication: str = ""


class HolderCard(Protocol):
    """What every credential flow needs from a holder's card."""

    @property
    def serial(self) -> str:
        """The card's serial (manufacturer + serial number from the AID, hex)."""
        ...

    def application_version(self) -> str:
        """OpenPGP application version, e.g. "3.4"."""
        ...

    def fingerprints(self) -> CardFingerprints: ...

    def ecdh_public_key(self) -> bytes:
        """The decryption key's public point, uncompressed (65 bytes)."""
        ...

    def signing_public_key(self) -> bytes:
        """The signing key's public point, uncompressed (65 bytes)."""
        ...

    def pin_tries_left(self) -> int:
        """PW1 retry counter (no retry spent)."""
        ...

    def verify_pin(self, pin: bytearray, *, for_signing: bool = False) -> None:
        """VERIFY PW1 (0x82, or 0x81 for signing)."""
        ...

    def decipher(self, ephemeral_point: bytes) -> bytearray:
        """PSO:DECIPHER with the ECDH key: the shared X coordinate (caller wipes it)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """PSO:CDS: ECDSA P-256 over SHA-256(data), raw r||s (64 bytes)."""
        ...

    def read_private_do(self, tag: int = ENVELOPE_DO) -> bytes: ...

    def write_private_do(self, data: bytes, tag: int = ENVELOPE_DO) -> None:
        """Write a private-use DO (0101 needs PW1 verified)."""
        ...


class ProvisionableCard(HolderCard, Protocol):
    """The extra steps of issuing: reset, keys on card, holder data, PINs of the holder."""

    @property
    def completed_reset(self) -> bool:
        """Opening the card finished a factory reset that a pull had left half done (only
        when the card was opened for a flow that resets it: CardRoom's `finish_reset`)."""
        ...

    def factory_reset(self) -> None:
        """TERMINATE DF + ACTIVATE FILE: keys and data gone, factory PINs back."""
        ...

    def provision(
        self, admin_pin: bytearray, *, role: str, holder: str, login: str
    ) -> CardFingerprints:
        """The appliance's card profile (appliance.cards.provision): cardholder name from
        role and holder, login data, signing/decryption/authentication keys generated on
        the card (P-256) with their fingerprints and times. Needs PW3 (`admin_pin`)."""
        ...

    def change_pin(self, old: bytearray, new: bytearray, *, admin: bool = False) -> None:
        """CHANGE REFERENCE DATA for PW1 (or PW3 when `admin`)."""
        ...


class ForwardingCard:
    """A ProvisionableCard that hands every call to the card `_card()` returns at that moment.

    For cards that come and go: one reader shared by a room of holders, or turns in a test.
    Subclasses say which card is live (raising CardRemoved when none is) and what `serial` is.
    """

    @property
    def serial(self) -> str:
        raise NotImplementedError

    def _card(self) -> ProvisionableCard:
        raise NotImplementedError

    @property
    def completed_reset(self) -> bool:
        return self._card().completed_reset

    def application_version(self) -> str:
        return self._card().application_version()

    def fingerprints(self) -> CardFingerprints:
        return self._card().fingerprints()

    def ecdh_public_key(self) -> bytes:
        return self._card().ecdh_public_key()

    def signing_public_key(self) -> bytes:
        return self._card().signing_public_key()

    def pin_tries_left(self) -> int:
        return self._card().pin_tries_left()

    def verify_pin(self, pin: bytearray, *, for_signing: bool = False) -> None:
        self._card().verify_pin(pin, for_signing=for_signing)

    def decipher(self, ephemeral_point: bytes) -> bytearray:
        return self._card().decipher(ephemeral_point)

    def sign(self, data: bytes) -> bytes:
        return self._card().sign(data)

    def read_private_do(self, tag: int = ENVELOPE_DO) -> bytes:
        return self._card().read_private_do(tag)

    def write_private_do(self, data: bytes, tag: int = ENVELOPE_DO) -> None:
        self._card().write_private_do(data, tag)

    def factory_reset(self) -> None:
        self._card().factory_reset()

    def provision(
        self, admin_pin: bytearray, *, role: str, holder: str, login: str
    ) -> CardFingerprints:
        return self._card().provision(admin_pin, role=role, holder=holder, login=login)

    def change_pin(self, old: bytearray, new: bytearray, *, admin: bool = False) -> None:
        self._card().change_pin(old, new, admin=admin)
