"""RFC 9285 base45: the RFC's examples, strict decoding, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.outputs import base45

RFC_EXAMPLES = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
]


@pytest.mark.parametrize(("raw", "text"), RFC_EXAMPLES)
def test_rfc9285_examples(raw: bytes, text: str) -> None:
    assert base45.encode(raw) == text
    assert base45.decode(text) == raw


@pytest.mark.parametrize("bad", ["GGW", "A", "ab", "Z~Z", "::::"])
def test_invalid_text_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        base45.decode(bad)


@given(st.binary(max_size=300))
def test_round_trip(data: bytes) -> None:
    text = base45.encode(data)
    assert set(text) <= set(base45.ALPHABET)
    assert len(text) == len(data) // 2 * 3 + (2 if len(data) % 2 else 0)
    assert base45.decode(text) == data
