"""The PKCS#11 adapter: the one module (with module.py) that speaks python-pkcs11.

Everything above it works with plain values: labels, ids, `KeySpec`, SubjectPublicKeyInfo
DER, bytes in and bytes out. The adapter never prompts: the caller passes the user PIN as a
bytearray, which goes to C_Login without an immutable copy (python-pkcs11 calls
`pin.encode()`; our wrapper returns the caller's buffer itself).

SoftHSM 2.6.1 quirks handled here (FIELD-NOTES, docs/hsm.md):
- python-pkcs11 puts every capability attribute into an unwrap template; SoftHSM rejects
  ENCRYPT/VERIFY/WRAP on a private key (AttributeTypeInvalid). Our attribute mapper leaves
  capabilities out of generated templates: we always pass the ones we mean.
- CKA_UNWRAP_TEMPLATE is an array attribute python-pkcs11 cannot encode: we build the
  CK_ATTRIBUTE array with ctypes and keep it alive for the duration of the call.
- CKA_EC_POINT is DER-wrapped; EC private keys carry no point (pair with the public object).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.attributes import AttributeMapper

from appliance.hsm import algorithms as alg
from appliance.hsm import module as hsm_module
from appliance.hsm.errors import (
    HsmError,
    KeyNotFound,
    LabelInUse,
    PinError,
    TokenFull,
    TokenNotFound,
    UnsupportedAlgorithm,
)
from appliance.hsm.errors import RestoreError as _RestoreError

# Token flags (PKCS#11 2.40 CK_TOKEN_INFO.flags) that describe the user PIN.
_PIN_FLAGS = {
    0x00010000: "a wrong PIN was entered since the last successful login (count low)",
    0x00020000: "the next wrong PIN locks the user PIN (final try)",
    0x00040000: "the user PIN is locked",
    0x00080000: "the user PIN must be changed",
}
_TOKEN_INITIALIZED = 0x400
_PROTECTED_AUTHENTICATION_PATH = 0x100
_USER_PIN_INITIALIZED = 0x8

#: Mechanisms each key kind needs: (key-pair generation, signing).
_MECHANISMS: dict[str, tuple[Mechanism, Mechanism]] = {
    "rsa": (Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.SHA256_RSA_PKCS),
    "ec": (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA),
    "ed25519": (Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA),
}
_KEY_TYPES: dict[str, KeyType] = {
    "rsa": KeyType.RSA,
    "ec": KeyType.EC,
    "ed25519": KeyType.EC_EDWARDS,
}
WRAP_MECHANISM = Mechanism.AES_KEY_WRAP_PAD
WRAP_MECHANISM_NAME = "CKM_AES_KEY_WRAP_PAD"


@dataclass(frozen=True)
class TokenInfo:
    label: str
    serial: str
    manufacturer: str
    model: str
    flags: int

    def pin_state(self) -> str:
        """What the token says about the user PIN, in words."""
        states = [text for bit, text in _PIN_FLAGS.items() if self.flags & bit]
        if not states:
            return "the token reports no PIN warnings (it may not count tries: SoftHSM does not)"
        return "; ".join(states)


@dataclass(frozen=True)
class KeyObject:
    """A private key on the token, with what its public half and attributes tell."""

    label: str
    id: bytes
    kind: str
    public_key_der: bytes | None
    created: dt.date | None
    extractable: bool
    sensitive: bool
    local: bool


class ObjectRef:
    """An object this process created or found; opaque above the adapter."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj


# -- values python-pkcs11 cannot encode by itself -------------------------------------------


class _CkAttribute(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_ulong),
        ("pValue", ctypes.c_void_p),
        ("ulValueLen", ctypes.c_ulong),
    ]


class BoolTemplate:
    """A CK_ATTRIBUTE array of CK_BBOOL values, for CKA_UNWRAP_TEMPLATE.

    PKCS#11 reads the array through pointers, so the buffers must outlive the call that
    passes them: keep this object referenced until C_CreateObject returns.
    """

    def __init__(self, values: dict[Attribute, bool]) -> None:
        self._buffers = [
            ctypes.create_string_buffer(b"\x01" if v else b"\x00", 1) for v in values.values()
        ]
        self._array = (_CkAttribute * len(values))()
        for i, (attr, buf) in enumerate(zip(values, self._buffers, strict=True)):
            self._array[i].type = int(attr)
            self._array[i].pValue = ctypes.addressof(buf)
            self._array[i].ulValueLen = 1

    def packed(self) -> bytes:
        return ctypes.string_at(ctypes.addressof(self._array), ctypes.sizeof(self._array))


class _Pin:
    """Hands the caller's bytearray to C_Login without making an immutable copy."""

    __slots__ = ("_buf",)

    def __init__(self, buf: bytearray) -> None:
        self._buf = buf

    def encode(self, _encoding: str = "utf-8") -> bytearray:
        return self._buf


class _Mapper(AttributeMapper):
    """python-pkcs11's mapper, minus implicit capability attributes, plus UNWRAP_TEMPLATE."""

    def __init__(self) -> None:
        super().__init__()
        self.register_handler(Attribute.UNWRAP_TEMPLATE, _pack_template, bytes)

    def generic_key_template(
        self,
        base_template: dict[Attribute, Any],
        *,
        capabilities: Any,
        id_: bytes | None,
        label: str | None,
        store: bool,
    ) -> dict[Attribute, Any]:
        template = dict(base_template)
        if id_ is not None:
            template[Attribute.ID] = id_
        if label is not None:
            template[Attribute.LABEL] = label
        template[Attribute.TOKEN] = bool(store)
        return template


def _pack_template(value: BoolTemplate) -> bytes:
    return value.packed()


def wipe_bytes(value: bytes) -> None:
    """Overwrite an immutable bytes object we created ourselves (CPython only, best effort).

    python-pkcs11 needs a `bytes` for attribute values (CKA_VALUE of the wrapping key). We
    make that one object from the caller's bytearray and clear it after the call.
    """
    if sys.implementation.name != "cpython" or len(value) < 2:
        return
    offset = sys.getsizeof(b"") - 1  # header size: ob_sval follows it
    ctypes.memset(id(value) + offset, 0, len(value))


# -- choosing and opening a token ----------------------------------------------------------


class Token:
    """A token of a loaded module, chosen by label or serial."""

    def __init__(self, module: Path, *, label: str | None = None, serial: str | None = None):
        if not label and not serial:
            raise TokenNotFound("No token named.", hint="Give a token label or serial.")
        self.module = Path(module)
        lib = hsm_module.load(self.module)
        found = []
        try:
            for tok in lib.get_tokens():
                tok_label = str(tok.label).strip()
                tok_serial = _text(tok.serial)
                if (label is None or tok_label == label) and (
                    serial is None or tok_serial == serial
                ):
                    found.append(tok)
            offered = [f"{str(t.label).strip()} ({_text(t.serial)})" for t in lib.get_tokens()]
        except p11e.PKCS11Error as exc:
            raise HsmError(
                f"Cannot list the tokens of {self.module.name}: {type(exc).__name__}.",
                hint="Check the module configuration (SoftHSM: SOFTHSM2_CONF).",
            ) from None
        wanted = f"label '{label}'" if label else f"serial '{serial}'"
        if label and serial:
            wanted = f"label '{label}' and serial '{serial}'"
        if not found:
            raise TokenNotFound(
                f"No token with {wanted} in {self.module.name}; tokens: "
                + (", ".join(offered) or "none"),
                hint="Initialise the token (appliance hsm init / the hsm-init ceremony) or "
                "correct [hsm] token.",
                label=label,
                serial=serial,
            )
        if len(found) > 1:
            raise TokenNotFound(
                f"{len(found)} tokens have {wanted}; the appliance needs exactly one.",
                hint="Choose the token by serial as well.",
                label=label,
            )
        self._token = found[0]

    @property
    def info(self) -> TokenInfo:
        tok = self._token
        return TokenInfo(
            label=str(tok.label).strip(),
            serial=_text(tok.serial),
            manufacturer=str(tok.manufacturer_id).strip(),
            model=str(tok.model).strip(),
            flags=int(tok.flags),
        )

    def open(self, pin: bytearray, *, rw: bool = True) -> Session:
        """Open a session and log in as the user with `pin` (not kept, not copied)."""
        self._require_initialised("Initialise the token first (appliance hsm init).")
        if not isinstance(pin, bytearray):
            raise TypeError("the PIN must be a bytearray the caller wipes")
        label = self.info.label
        return self._login(
            _Pin(pin),
            rw=rw,
            refused=f"Token '{label}' did not accept the user PIN",
            refused_hint="A token that counts wrong PINs has counted this one. Check which PIN "
            "was used before trying again; the appliance does not retry by itself.",
            locked=f"The user PIN of token '{label}' is locked.",
            locked_hint="The Security Officer must unlock or re-initialise the token.",
            doing=f"opening a session on token '{label}'",
        )

    def open_protected(self, *, rw: bool = True) -> Session:
        """Open a session and log in through the token's protected authentication path (a
        PED or PIN pad): the HSM runs its own quorum; no PIN passes through the appliance."""
        info = self._require_initialised("Initialise the token first with the vendor's procedure.")
        if not info.flags & _PROTECTED_AUTHENTICATION_PATH:
            raise HsmError(
                f"Token '{info.label}' ({info.serial}) has no protected authentication path "
                "(no PED or PIN pad): it cannot run its own quorum.",
                hint='Set [hsm] activation = "pin-quorum" in the configuration for this token.',
                label=info.label,
            )
        return self._login(
            pkcs11.PROTECTED_AUTH,
            rw=rw,
            refused=f"Token '{info.label}' did not accept the credentials presented on its PED",
            refused_hint="The HSM has counted this try. Check which credentials were presented "
            "before trying again; the appliance does not retry by itself.",
            locked=f"The user credential of token '{info.label}' is locked.",
            locked_hint="The Security Officer must unlock the token with the vendor's procedure.",
            doing=f"logging in on token '{info.label}' through its PED",
        )

    def _require_initialised(self, hint: str) -> TokenInfo:
        info = self.info
        if not info.flags & _TOKEN_INITIALIZED or not info.flags & _USER_PIN_INITIALIZED:
            raise TokenNotFound(
                f"Token '{info.label}' is not initialised or has no user PIN.",
                hint=hint,
                label=info.label,
            )
        return info

    def _login(
        self,
        user_pin: Any,
        *,
        rw: bool,
        refused: str,
        refused_hint: str,
        locked: str,
        locked_hint: str,
        doing: str,
    ) -> Session:
        """Log in once, never retrying: a refusal reports the token's PIN state and stops."""
        info = self.info
        try:
            raw = self._token.open(rw=rw, user_pin=user_pin, attribute_mapper=_Mapper())
        except p11e.UserAlreadyLoggedIn:
            # PKCS#11 login state is per application: another open session already logged in.
            raw = self._token.open(rw=rw, attribute_mapper=_Mapper())
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as exc:
            state = self.info.pin_state()
            raise PinError(
                f"{refused} ({_reason(exc)}); token state: {state}.",
                hint=refused_hint,
                label=info.label,
                state=state,
            ) from None
        except p11e.PinLocked:
            raise PinError(locked, hint=locked_hint, label=info.label, state="locked") from None
        except p11e.PKCS11Error as exc:
            raise _map(exc, doing) from None
        return Session(raw, info)


class Session:
    """A logged-in R/W session: a context manager that closes the session on exit."""

    def __init__(self, raw: Any, info: TokenInfo) -> None:
        self._s = raw
        self.info = info
        self._mechs: frozenset[int] | None = None
        self._ed25519_wrappable: bool | None = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(p11e.PKCS11Error):
            self._s.close()

    def change_user_pin(self, old: bytearray, new: bytearray) -> None:
        """C_SetPIN on the logged-in user: the activation rekey gives the token a new PIN.
        Both PINs are the caller's bytearrays (not kept, not copied)."""
        if not isinstance(old, bytearray) or not isinstance(new, bytearray):
            raise TypeError("the PINs must be bytearrays the caller wipes")
        try:
            self._s.set_pin(_Pin(old), _Pin(new))
        except (p11e.PinIncorrect, p11e.PinInvalid, p11e.PinLenRange) as exc:
            raise PinError(
                f"Token '{self.info.label}' refused the PIN change ({_reason(exc)}).",
                hint="Nothing was changed: the token keeps its current user PIN.",
                label=self.info.label,
            ) from None
        except p11e.PKCS11Error as exc:
            raise _map(exc, f"changing the user PIN of token '{self.info.label}'") from None

    # -- capabilities --

    def mechanisms(self) -> frozenset[int]:
        if self._mechs is None:
            self._mechs = frozenset(int(m) for m in self._s.token.slot.get_mechanisms())
        return self._mechs

    def require(self, spec: alg.KeySpec) -> None:
        """Raise UnsupportedAlgorithm unless the token can generate and sign with `spec`."""
        missing = [m.name for m in _MECHANISMS[spec.kind] if int(m) not in self.mechanisms()]
        if missing:
            raise UnsupportedAlgorithm(
                f"Token '{self.info.label}' lacks {', '.join('CKM_' + n for n in missing)}, "
                f"needed for {spec.type_name} keys.",
                hint="Choose another algorithm, or an HSM (firmware) that offers it.",
                missing=missing,
            )

    def can_wrap(self) -> bool:
        return int(WRAP_MECHANISM) in self.mechanisms()

    def can_wrap_ed25519(self) -> bool:
        """Probe: can this token wrap an Ed25519 key? (SoftHSM 2.6.1 cannot.)"""
        if self._ed25519_wrappable is None:
            self._ed25519_wrappable = self._probe_ed25519_wrap()
        return self._ed25519_wrappable

    def _probe_ed25519_wrap(self) -> bool:
        if not self.can_wrap() or int(Mechanism.EC_EDWARDS_KEY_PAIR_GEN) not in self.mechanisms():
            return False
        created: list[Any] = []
        try:
            pub, priv = self._s.generate_keypair(
                KeyType.EC_EDWARDS,
                store=False,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                public_template={Attribute.EC_PARAMS: alg.ED25519_PARAMS, Attribute.VERIFY: True},
                private_template={
                    Attribute.SIGN: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: True,
                },
            )
            created += [pub, priv]
            wk = self._s.generate_key(
                KeyType.AES, 256, store=False, template={Attribute.WRAP: True}
            )
            created.append(wk)
            wk.wrap_key(priv, mechanism=WRAP_MECHANISM)
            return True
        except p11e.PKCS11Error:
            return False
        finally:
            for obj in created:
                with contextlib.suppress(p11e.PKCS11Error):
                    obj.destroy()

    # -- objects --

    def labels(self) -> set[str]:
        out = set()
        for obj in self._s.get_objects():
            with contextlib.suppress(p11e.PKCS11Error):
                out.add(str(obj[Attribute.LABEL]))
        return out

    def object_count(self) -> int:
        return sum(1 for _ in self._s.get_objects())

    def key_objects(self) -> list[KeyObject]:
        """Every private key on the token, paired with its public object by CKA_ID."""
        publics: dict[bytes, Any] = {}
        for pub in self._s.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY}):
            publics[bytes(pub[Attribute.ID])] = pub
        out = []
        for priv in self._s.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
            out.append(self._describe(priv, publics.get(bytes(priv[Attribute.ID]))))
        out.sort(key=lambda k: (k.label, k.id))
        return out

    def _describe(self, priv: Any, pub: Any | None) -> KeyObject:
        key_type = priv[Attribute.KEY_TYPE]
        kind = {KeyType.RSA: "rsa", KeyType.EC: "ec", KeyType.EC_EDWARDS: "ed25519"}.get(
            key_type, f"other-{int(key_type):#x}"
        )
        spki: bytes | None = None
        try:
            if kind == "rsa":
                spki = alg.spki_from_rsa(priv[Attribute.MODULUS], priv[Attribute.PUBLIC_EXPONENT])
            elif pub is not None and kind in ("ec", "ed25519"):
                spki = alg.spki_from_ec(pub[Attribute.EC_PARAMS], pub[Attribute.EC_POINT])
        except (p11e.PKCS11Error, ValueError, HsmError):
            spki = None
        return KeyObject(
            label=str(priv[Attribute.LABEL]),
            id=bytes(priv[Attribute.ID]),
            kind=kind,
            public_key_der=spki,
            created=_date(priv) or (_date(pub) if pub is not None else None),
            extractable=bool(priv[Attribute.EXTRACTABLE]),
            sensitive=bool(priv[Attribute.SENSITIVE]),
            local=bool(priv[Attribute.LOCAL]),
        )

    def _private(self, key_id: bytes) -> Any:
        found = list(
            self._s.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id})
        )
        if not found:
            raise KeyNotFound(
                f"No private key with id {key_id.hex()} on token '{self.info.label}'.",
                hint="List the keys with: appliance hsm inventory",
                id=key_id.hex(),
            )
        return found[0]

    def read_private_value(self, key_id: bytes) -> bytes:
        """Try to read CKA_VALUE of a private key (tests prove that this fails)."""
        try:
            return bytes(self._private(key_id)[Attribute.VALUE])
        except (p11e.AttributeSensitive, p11e.AttributeTypeInvalid) as exc:
            raise HsmError(
                f"The token refuses to reveal the private key ({type(exc).__name__}).",
                refused=type(exc).__name__,
            ) from None

    # -- key generation --

    def generate(
        self, spec: alg.KeySpec, label: str, *, extractable: bool, created: dt.date
    ) -> KeyObject:
        """Generate a key pair on the token; CKA_ID becomes SHA-1 of the public key."""
        self.require(spec)
        if label in self.labels():
            raise LabelInUse(
                f"Token '{self.info.label}' already holds an object labelled '{label}'.",
                hint="Choose another label; the appliance never reuses a label.",
                label=label,
            )
        pending = b"pending:" + self._s.generate_random(96)
        common = {Attribute.LABEL: label, Attribute.ID: pending, Attribute.START_DATE: created}
        public: dict[Attribute, Any] = {
            **common,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
        }
        private: dict[Attribute, Any] = {
            **common,
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: extractable,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        if spec.kind == "rsa":
            public[Attribute.MODULUS_BITS] = spec.bits
            public[Attribute.PUBLIC_EXPONENT] = alg.RSA_EXPONENT.to_bytes(3, "big")
        else:
            public[Attribute.EC_PARAMS] = spec.ec_params
        mechanism = _MECHANISMS[spec.kind][0]
        try:
            pub, priv = self._s.generate_keypair(
                _KEY_TYPES[spec.kind],
                spec.bits if spec.kind == "rsa" else None,
                store=True,
                mechanism=mechanism,
                public_template=public,
                private_template=private,
            )
        except p11e.PKCS11Error as exc:
            raise _map(exc, f"generating a {spec.type_name} key") from None
        try:
            if spec.kind == "rsa":
                spki = alg.spki_from_rsa(pub[Attribute.MODULUS], pub[Attribute.PUBLIC_EXPONENT])
            else:
                spki = alg.spki_from_ec(spec.ec_params, pub[Attribute.EC_POINT])
            key_id = alg.key_id(spki)
            pub[Attribute.ID] = key_id
            priv[Attribute.ID] = key_id
        except (p11e.PKCS11Error, ValueError) as exc:
            for obj in (pub, priv):
                with contextlib.suppress(p11e.PKCS11Error):
                    obj.destroy()
            if isinstance(exc, p11e.PKCS11Error):
                raise _map(exc, "recording the new key's id") from None
            raise
        return self._describe(priv, pub)

    def destroy_key(self, key_id: bytes) -> None:
        """Remove the private and public objects with this CKA_ID."""
        for obj in list(self._s.get_objects({Attribute.ID: key_id})):
            obj.destroy()

    def lock(self, key_id: bytes) -> None:
        """CKA_EXTRACTABLE -> false: the key can never be wrapped again."""
        try:
            self._private(key_id)[Attribute.EXTRACTABLE] = False
        except p11e.PKCS11Error as exc:
            raise _map(exc, f"locking key {key_id.hex()}") from None

    # -- signing --

    def signer(self, key_id: bytes, spec: alg.KeySpec) -> Callable[[bytes], bytes]:
        """A bound raw-sign function for the key: one C_SignInit/C_Sign per call, nothing else."""
        self.require(spec)
        priv = self._private(key_id)
        return functools.partial(priv.sign, mechanism=_MECHANISMS[spec.kind][1])

    def raw_private(self, key_id: bytes) -> Any:
        """The python-pkcs11 private key object (for bench/hsm.py's raw baseline only)."""
        return self._private(key_id)

    def sign_with(self, ref: ObjectRef, spec: alg.KeySpec, token_input: bytes) -> bytes:
        try:
            return bytes(ref._obj.sign(token_input, mechanism=_MECHANISMS[spec.kind][1]))
        except p11e.PKCS11Error as exc:
            raise _map(exc, "signing with a restored key") from None

    # -- wrapping --

    @contextlib.contextmanager
    def wrapping_key(self, value: bytearray) -> Iterator[ObjectRef]:
        """Import a 32-byte AES key as a session object that only wraps and unwraps.

        CKA_UNWRAP_TEMPLATE forces everything it unwraps to be sensitive and non-extractable.
        The object is destroyed on exit (and vanishes with the session anyway).
        """
        if not isinstance(value, bytearray) or len(value) != 32:
            raise HsmError(
                "The backup wrapping key must be 32 bytes.",
                hint="The credentials layer rebuilds it from the shareholders' cards.",
            )
        if not self.can_wrap():
            raise UnsupportedAlgorithm(
                f"Token '{self.info.label}' lacks {WRAP_MECHANISM_NAME}: it cannot make backups.",
                hint="Use the vendor's backup procedure for this HSM.",
            )
        template = BoolTemplate({Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
        secret = bytes(value)
        try:
            obj = self._s.create_object(
                {
                    Attribute.CLASS: ObjectClass.SECRET_KEY,
                    Attribute.KEY_TYPE: KeyType.AES,
                    Attribute.TOKEN: False,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.WRAP: True,
                    Attribute.UNWRAP: True,
                    Attribute.ENCRYPT: False,
                    Attribute.DECRYPT: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                    Attribute.LABEL: "appliance-backup-wrapping-key",
                    Attribute.VALUE: secret,
                    Attribute.UNWRAP_TEMPLATE: template,
                }
            )
        except p11e.PKCS11Error as exc:
            raise _map(exc, "importing the backup wrapping key") from None
        finally:
            wipe_bytes(secret)
            del template
        try:
            yield ObjectRef(obj)
        finally:
            with contextlib.suppress(p11e.PKCS11Error):
                obj.destroy()

    def wrap(self, wrapping: ObjectRef, key_id: bytes) -> bytes:
        priv = self._private(key_id)
        try:
            return bytes(wrapping._obj.wrap_key(priv, mechanism=WRAP_MECHANISM))
        except p11e.PKCS11Error as exc:
            raise _map(exc, f"wrapping key {key_id.hex()}") from None

    def unwrap(
        self,
        wrapping: ObjectRef,
        blob: bytes,
        spec: alg.KeySpec,
        *,
        label: str,
        key_id: bytes,
        store: bool,
        created: dt.date | None = None,
    ) -> ObjectRef:
        """Unwrap a private key: sensitive, non-extractable, sign-only (template enforced)."""
        template: dict[Attribute, Any] = {
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
        }
        if created is not None:
            template[Attribute.START_DATE] = created
        try:
            obj = wrapping._obj.unwrap_key(
                ObjectClass.PRIVATE_KEY,
                _KEY_TYPES[spec.kind],
                blob,
                id=key_id,
                label=label,
                mechanism=WRAP_MECHANISM,
                store=store,
                template=template,
            )
        except p11e.PKCS11Error as exc:
            raise _map(exc, f"unwrapping key '{label}'") from None
        return ObjectRef(obj)

    def create_public(
        self, public_key_der: bytes, *, label: str, key_id: bytes, created: dt.date | None
    ) -> ObjectRef:
        """Recreate a public key object (restored private keys come back without one)."""
        spec = alg.spec_from_public_key(public_key_der)
        nums = alg.public_numbers_for_token(public_key_der)
        attrs: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: _KEY_TYPES[spec.kind],
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.LABEL: label,
            Attribute.ID: key_id,
        }
        if created is not None:
            attrs[Attribute.START_DATE] = created
        if spec.kind == "rsa":
            attrs[Attribute.MODULUS] = nums["modulus"]
            attrs[Attribute.PUBLIC_EXPONENT] = nums["exponent"]
        else:
            attrs[Attribute.EC_PARAMS] = nums["params"]
            attrs[Attribute.EC_POINT] = nums["point"]
        try:
            return ObjectRef(self._s.create_object(attrs))
        except p11e.PKCS11Error as exc:
            raise _map(exc, f"creating the public key object of '{label}'") from None

    def destroy(self, ref: ObjectRef) -> None:
        with contextlib.suppress(p11e.PKCS11Error):
            ref._obj.destroy()


# -- helpers -------------------------------------------------------------------------------


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value).strip()


def _date(obj: Any) -> dt.date | None:
    try:
        value = obj[Attribute.START_DATE]
    except (p11e.PKCS11Error, ValueError):
        return None
    return value if isinstance(value, dt.date) else None


def _reason(exc: p11e.PKCS11Error) -> str:
    reasons: dict[type[p11e.PKCS11Error], str] = {
        p11e.PinIncorrect: "wrong PIN",
        p11e.PinInvalid: "the PIN has characters the token does not accept",
        p11e.PinLenRange: "the PIN is too short or too long for this token",
    }
    return reasons.get(type(exc), type(exc).__name__)


def _map(exc: p11e.PKCS11Error, doing: str) -> HsmError:
    """A PKCS#11 failure as an operator-facing error."""
    name = type(exc).__name__
    if isinstance(exc, p11e.DeviceMemory | p11e.HostMemory):
        return TokenFull(
            f"The token has no room left while {doing} ({name}).",
            hint="Remove keys that are no longer needed (after a verified backup) or use a "
            "token with more capacity.",
            cause=name,
        )
    if isinstance(
        exc, p11e.MechanismInvalid | p11e.MechanismParamInvalid | p11e.FunctionNotSupported
    ):
        return UnsupportedAlgorithm(
            f"The token does not support what is needed for {doing} ({name}).",
            hint="Choose another algorithm or an HSM that offers the mechanism.",
            cause=name,
        )
    if isinstance(exc, p11e.KeyNotWrappable | p11e.KeyUnextractable):
        return HsmError(
            f"The token refuses to export the key while {doing} ({name}).",
            hint="The key is not extractable or its type cannot be wrapped on this token; it "
            "cannot be covered by a backup (see docs/hsm.md, extractability).",
            cause=name,
        )
    if isinstance(exc, p11e.TemplateInconsistent | p11e.AttributeTypeInvalid):
        return HsmError(
            f"The token rejected the attributes while {doing} ({name}).",
            hint="This token needs a different template; report it with the token model.",
            cause=name,
        )
    if isinstance(
        exc, p11e.WrappedKeyInvalid | p11e.EncryptedDataInvalid | p11e.WrappedKeyLenRange
    ):
        return _RestoreError(
            f"The token could not unwrap the blob while {doing} ({name}).",
            hint="The wrapping key is wrong or the blob is damaged.",
            cause=name,
        )
    if isinstance(exc, p11e.UserNotLoggedIn):
        return PinError(
            f"Not logged in while {doing}.", hint="Log in to the token first.", cause=name
        )
    if isinstance(exc, p11e.DeviceRemoved | p11e.TokenNotPresent | p11e.SessionHandleInvalid):
        return HsmError(
            f"The token went away while {doing} ({name}).",
            hint="Reconnect the HSM and repeat the step.",
            cause=name,
        )
    if isinstance(exc, p11e.FunctionFailed | p11e.GeneralError | p11e.DeviceError):
        return HsmError(
            f"The token failed while {doing} ({name}).",
            hint="The token may be out of storage (SoftHSM reports a full disk this way) or "
            "faulty: check its free space or capacity and its logs, then repeat the step.",
            cause=name,
        )
    return HsmError(
        f"The token failed while {doing} ({name}).",
        hint="Repeat the step; if it fails again, check the HSM and its logs.",
        cause=name,
    )


def raw_module() -> Any:
    """python-pkcs11 itself (bench/hsm.py compares against it)."""
    return pkcs11
