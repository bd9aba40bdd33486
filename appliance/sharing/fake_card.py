"""An in-memory holder card for unit tests and demos of the flows (no APDUs, no reader).

It keeps the OpenPGP card's rules that the flows depend on: keys generated "on card" and
never exported, PW1/PW3 retry counters (3 tries, blocked at 0), decipher and sign only after
the right PIN, one signature per PW1 (0x81) verification, 0101 writable after PW1, factory
reset. `remove()` makes the next operation fail as a pulled card does.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.sharing.errors import CardError, CardRemoved, PinBlocked, WrongPin
from appliance.sharing.ports import (
    ENVELOPE_DO,
    FACTORY_ADMIN_PIN,
    FACTORY_USER_PIN,
    CardFingerprints,
    ProvisionableCard,
)
from appliance.signing import der_to_raw

MAX_TRIES = 3


def _uncompressed(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class FakeCard:
    """Implements `ProvisionableCard` in memory."""

    #: A fake card is never left half reset.
    completed_reset = False

    def __init__(self, serial: str, *, version: str = "3.4") -> None:
        self._serial = serial
        self._version = version
        self.removed = False
        self.private_do_capacity = 254
        self.factory_reset_count = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._user_pin = bytearray(FACTORY_USER_PIN)
        self._admin_pin = bytearray(FACTORY_ADMIN_PIN)
        self._user_tries = MAX_TRIES
        self._admin_tries = MAX_TRIES
        self._pw1_82 = False
        self._pw1_81 = False
        self._pw3 = False
        self._sig: ec.EllipticCurvePrivateKey | None = None
        self._dec: ec.EllipticCurvePrivateKey | None = None
        self._dos: dict[int, bytes] = {}
        self.name = ""
        self.login = ""

    # --- test controls ----------------------------------------------------------------------
    def remove(self) -> None:
        self.removed = True
        self._pw1_81 = self._pw1_82 = self._pw3 = False

    def insert(self) -> None:
        self.removed = False

    def _present(self) -> None:
        if self.removed:
            raise CardRemoved(serial=self._serial)

    # --- HolderCard -------------------------------------------------------------------------
    @property
    def serial(self) -> str:
        return self._serial

    def application_version(self) -> str:
        self._present()
        return self._version

    def fingerprints(self) -> CardFingerprints:
        self._present()

        def fp(key: ec.EllipticCurvePrivateKey | None) -> str:
            return hashlib.sha1(_uncompressed(key)).hexdigest() if key else ""  # noqa: S324

        return CardFingerprints(fp(self._sig), fp(self._dec), "")

    def _need_keys(self) -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
        if self._sig is None or self._dec is None:
            raise CardError(
                f"card {self._serial} has no keys",
                hint="Provision the card (issue flow) first.",
            )
        return self._sig, self._dec

    def ecdh_public_key(self) -> bytes:
        self._present()
        return _uncompressed(self._need_keys()[1])

    def signing_public_key(self) -> bytes:
        self._present()
        return _uncompressed(self._need_keys()[0])

    def pin_tries_left(self) -> int:
        self._present()
        return self._user_tries

    def verify_pin(self, pin: bytearray, *, for_signing: bool = False) -> None:
        self._present()
        if self._user_tries == 0:
            raise PinBlocked(serial=self._serial)
        if not hmac.compare_digest(bytes(pin), bytes(self._user_pin)):
            self._user_tries -= 1
            if self._user_tries == 0:
                raise PinBlocked(serial=self._serial)
            raise WrongPin(self._user_tries, serial=self._serial)
        self._user_tries = MAX_TRIES
        if for_signing:
            self._pw1_81 = True
        else:
            self._pw1_82 = True

    def decipher(self, ephemeral_point: bytes) -> bytearray:
        self._present()
        if not self._pw1_82:
            raise CardError(f"card {self._serial}: PIN not verified for decipher")
        _, dec = self._need_keys()
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ephemeral_point)
        return bytearray(dec.exchange(ec.ECDH(), peer))

    def sign(self, data: bytes) -> bytes:
        self._present()
        if not self._pw1_81:
            raise CardError(f"card {self._serial}: PIN not verified for signing")
        self._pw1_81 = False  # PW1 status 00: one signature per verification
        sig, _ = self._need_keys()
        return der_to_raw(sig.sign(data, ec.ECDSA(hashes.SHA256())))

    def read_private_do(self, tag: int = ENVELOPE_DO) -> bytes:
        self._present()
        return self._dos.get(tag, b"")

    def write_private_do(self, data: bytes, tag: int = ENVELOPE_DO) -> None:
        self._present()
        if tag in (0x0101, 0x0103) and not self._pw1_82:
            raise CardError(f"card {self._serial}: PIN not verified for writing DO {tag:04X}")
        if tag in (0x0102, 0x0104) and not self._pw3:
            raise CardError(f"card {self._serial}: admin PIN not verified")
        if len(data) > self.private_do_capacity:
            raise CardError(
                f"card {self._serial}: {len(data)} bytes do not fit DO {tag:04X} "
                f"(max {self.private_do_capacity})"
            )
        self._dos[tag] = bytes(data)

    # --- ProvisionableCard ------------------------------------------------------------------
    def factory_reset(self) -> None:
        self._present()
        self._reset_state()
        self.factory_reset_count += 1

    def verify_admin_pin(self, pin: bytearray) -> None:
        self._present()
        if self._admin_tries == 0:
            raise PinBlocked(serial=self._serial)
        if not hmac.compare_digest(bytes(pin), bytes(self._admin_pin)):
            self._admin_tries -= 1
            raise WrongPin(self._admin_tries, serial=self._serial)
        self._admin_tries = MAX_TRIES
        self._pw3 = True

    def provision(
        self, admin_pin: bytearray, *, role: str, holder: str, login: str
    ) -> CardFingerprints:
        self.verify_admin_pin(admin_pin)
        self._sig = ec.generate_private_key(ec.SECP256R1())
        self._dec = ec.generate_private_key(ec.SECP256R1())
        self.name, self.login = f"{role}<<{holder.replace(' ', '<')}", login
        return self.fingerprints()

    def change_pin(self, old: bytearray, new: bytearray, *, admin: bool = False) -> None:
        self._present()
        if admin:
            self.verify_admin_pin(old)
            self._admin_pin = bytearray(new)
        else:
            self.verify_pin(old)
            self._user_pin = bytearray(new)

    # Tests use this to simulate an attacker who can write the card's data objects.
    def tamper_private_do(self, data: bytes, tag: int = ENVELOPE_DO) -> None:
        self._dos[tag] = bytes(data)


def _conforms(card: FakeCard) -> ProvisionableCard:
    return card  # mypy proves FakeCard implements the port
