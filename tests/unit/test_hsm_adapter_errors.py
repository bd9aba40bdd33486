"""PKCS#11 failures become operator errors (including the ones SoftHSM cannot provoke)."""

from __future__ import annotations

import ctypes

import pytest
from pkcs11 import Attribute
from pkcs11 import exceptions as p11e

from appliance.hsm import errors
from appliance.hsm.pkcs11_adapter import BoolTemplate, TokenInfo, _map, wipe_bytes


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (p11e.DeviceMemory(), errors.TokenFull, "no room left"),
        (p11e.MechanismInvalid(), errors.UnsupportedAlgorithm, "does not support"),
        (p11e.KeyNotWrappable(), errors.HsmError, "refuses to export"),
        (p11e.WrappedKeyInvalid(), errors.RestoreError, "could not unwrap"),
        (p11e.DeviceRemoved(), errors.HsmError, "went away"),
        (p11e.GeneralError(), errors.HsmError, "failed while"),
        (p11e.SessionCount(), errors.HsmError, "failed while"),
    ],
)
def test_pkcs11_errors_are_mapped(exc: p11e.PKCS11Error, kind: type, words: str) -> None:
    mapped = _map(exc, "doing something")
    assert isinstance(mapped, kind)
    assert words in mapped.message and "doing something" in mapped.message
    assert mapped.hint


def test_pin_state_in_words() -> None:
    assert "final try" in TokenInfo("t", "s", "m", "x", 0x20000).pin_state()
    assert "locked" in TokenInfo("t", "s", "m", "x", 0x40000).pin_state()
    assert "no PIN warnings" in TokenInfo("t", "s", "m", "x", 0x42D).pin_state()


def test_unwrap_template_is_a_ck_attribute_array() -> None:
    template = BoolTemplate({Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
    packed = template.packed()
    word = ctypes.sizeof(ctypes.c_ulong)
    assert len(packed) == 2 * 3 * word
    first_type = int.from_bytes(packed[:word], "little")
    first_ptr = int.from_bytes(packed[word : 2 * word], "little")
    assert first_type == int(Attribute.SENSITIVE)
    assert ctypes.string_at(first_ptr, 1) == b"\x01"
    second_ptr = int.from_bytes(packed[4 * word : 5 * word], "little")
    assert ctypes.string_at(second_ptr, 1) == b"\x00"


def test_wipe_bytes_clears_our_own_copy() -> None:
    secret = bytes(bytearray(b"k" * 32))
    wipe_bytes(secret)
    assert secret == bytes(32)
