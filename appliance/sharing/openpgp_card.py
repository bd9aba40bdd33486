"""Adapter: the cards layer's OpenPGP card session as a `ProvisionableCard`.

The session (appliance.cards.openpgp.OpenPgpSession) runs over any Transport: the pyscard
adapter in a ceremony, vcard's DirectTransport in tests. This module maps its calls and its
errors to the credential flows' port; it adds no card logic of its own except the factory
reset of a card whose admin PIN nobody knows (block PW3, then TERMINATE DF).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.cards import errors as cards_errors
from appliance.cards.openpgp import KeySlot, OpenPgpSession, Pin
from appliance.cards.provision import provision
from appliance.cards.transport import Transport
from appliance.errors import CardsError
from appliance.sharing.errors import CardError, CardRemoved, PinBlocked, WrongPin
from appliance.sharing.ports import ENVELOPE_DO, CardFingerprints, ProvisionableCard

R = TypeVar("R")


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _port_errors(serial: str, fn: Callable[..., R], *args: object, **kwargs: object) -> R:
    """Every card call goes through here so card errors become the port's errors."""
    try:
        return fn(*args, **kwargs)
    except cards_errors.WrongPin as exc:
        raise WrongPin(exc.tries_left, serial=serial) from None
    except cards_errors.PinBlocked:
        raise PinBlocked(serial=serial) from None
    except cards_errors.CardRemoved:
        raise CardRemoved(serial=serial) from None
    except CardsError as exc:
        which = f"card {serial}" if serial else "the card in the reader"
        raise CardError(f"{which}: {exc.message}", hint=exc.hint, serial=serial) from None


class OpenPgpHolderCard:
    """A holder's OpenPGP card through an `OpenPgpSession`."""

    def __init__(self, session: OpenPgpSession) -> None:
        self._s = session
        self._serial = session.serial

    @classmethod
    def open(cls, transport: Transport, *, finish_reset: bool = False) -> OpenPgpHolderCard:
        """The card behind `transport`, SELECTed (OpenPgpSession's `finish_reset`); a card
        that cannot be opened raises the port's errors, like every later call."""
        return cls(_port_errors("", OpenPgpSession, transport, finish_reset=finish_reset))

    def _call(self, fn: Callable[..., R], *args: object, **kwargs: object) -> R:
        return _port_errors(self._serial, fn, *args, **kwargs)

    @property
    def serial(self) -> str:
        return self._serial

    @property
    def completed_reset(self) -> bool:
        """Opening this card finished a factory reset a pulled card had left half done."""
        return self._s.completed_reset

    def application_version(self) -> str:
        return str(self._call(lambda: self._s.status().version_text))

    def fingerprints(self) -> CardFingerprints:
        fps: dict[KeySlot, bytes] = self._call(lambda: self._s.status().fingerprints)

        def text(raw: bytes) -> str:
            return "" if not any(raw) else raw.hex().upper()

        return CardFingerprints(
            text(fps[KeySlot.SIG]), text(fps[KeySlot.DEC]), text(fps[KeySlot.AUT])
        )

    def ecdh_public_key(self) -> bytes:
        return _point(self._call(self._s.public_key, KeySlot.DEC))

    def signing_public_key(self) -> bytes:
        return _point(self._call(self._s.public_key, KeySlot.SIG))

    def pin_tries_left(self) -> int:
        return int(self._call(self._s.tries_left, Pin.USER))

    def verify_pin(self, pin: bytearray, *, for_signing: bool = False) -> None:
        self._call(self._s.verify, Pin.SIGN if for_signing else Pin.USER, pin)

    def decipher(self, ephemeral_point: bytes) -> bytearray:
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ephemeral_point)
        except ValueError:
            raise CardError("the ephemeral key is not a P-256 point") from None
        return bytearray(self._call(self._s.ecdh, peer))

    def sign(self, data: bytes) -> bytes:
        return bytes(self._call(self._s.sign, data))

    def read_private_do(self, tag: int = ENVELOPE_DO) -> bytes:
        return bytes(self._call(self._s.private_do, tag - 0x0100))

    def write_private_do(self, data: bytes, tag: int = ENVELOPE_DO) -> None:
        self._call(self._s.put_private_do, tag - 0x0100, bytes(data))

    # --- provisioning ----------------------------------------------------------------------
    def factory_reset(self) -> None:
        """Reset even when the admin PIN is unknown: a wrong admin PIN is presented until PW3
        blocks (the card then allows TERMINATE DF), as the OpenPGP card spec intends."""
        try:
            self._s.factory_reset()
            return
        except cards_errors.CardError as exc:
            if exc.sw not in (0x6982, 0x6985):
                raise CardError(f"card {self._serial}: {exc.message}") from None
        except cards_errors.CardRemoved:
            raise CardRemoved(serial=self._serial) from None
        for _ in range(16):
            junk = bytearray(b"\xff" * 8)
            try:
                self._s.verify(Pin.ADMIN, junk)
            except cards_errors.PinBlocked:
                break
            except cards_errors.WrongPin as exc:
                if exc.tries_left == 0:
                    break
        self._call(self._s.factory_reset)

    def provision(
        self, admin_pin: bytearray, *, role: str, holder: str, login: str
    ) -> CardFingerprints:
        self._call(
            provision,
            self._s,
            admin_pin,
            role=role,
            role_id=login,
            holder=holder,
            timestamp=int(time.time()),
        )
        return self.fingerprints()

    def change_pin(self, old: bytearray, new: bytearray, *, admin: bool = False) -> None:
        self._call(self._s.change_pin, Pin.ADMIN if admin else Pin.USER, old, new)


def _conforms(card: OpenPgpHolderCard) -> ProvisionableCard:
    return card  # mypy proves the adapter implements the port
