"""SLIP-39 layer: official known-answer vectors, split/combine, binary form, extension."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from appliance.sharing import slip39
from appliance.sharing.errors import CombineError, ShareFormatError

VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "slip39" / "vectors.json").read_text("utf-8")
)
VALID = [v for v in VECTORS if v[2]]
INVALID = [v for v in VECTORS if not v[2]]


def test_vector_file_has_both_kinds() -> None:
    assert len(VALID) >= 15 and len(INVALID) >= 20


@pytest.mark.parametrize("vector", VALID, ids=[v[0] for v in VALID])
def test_valid_vector_recovers_its_secret(vector: list[object]) -> None:
    _, mnemonics, secret_hex, _ = vector
    assert isinstance(mnemonics, list)
    shares = [slip39.from_words(m) for m in mnemonics]
    assert slip39.combine(shares, passphrase=b"TREZOR").hex() == secret_hex
    # The binary form round-trips to the very same words.
    assert [slip39.to_words(s) for s in shares] == [" ".join(m.split()) for m in mnemonics]


@pytest.mark.parametrize("vector", INVALID, ids=[v[0] for v in INVALID])
def test_invalid_vector_is_refused_with_a_clear_error(vector: list[object]) -> None:
    _, mnemonics, _, _ = vector
    assert isinstance(mnemonics, list)
    with pytest.raises((ShareFormatError, CombineError)) as info:
        shares = [slip39.from_words(m) for m in mnemonics]
        slip39.combine(shares, passphrase=b"TREZOR")
    assert info.value.message  # a sentence for the operator, not a bare exception
    assert "Traceback" not in str(info.value)


def _secret() -> bytearray:
    return bytearray(range(32))


def test_3_of_7_any_three_in_any_order_and_not_two() -> None:
    shares = slip39.split(_secret(), 3, 7)
    assert len(shares) == 7 and all(len(s) == 42 for s in shares)
    for combo in itertools.permutations(range(7), 3):
        if combo[0] > 2:  # a representative sample, all orders of the first ones
            break
        assert slip39.combine([shares[i] for i in combo]) == _secret()
    with pytest.raises(CombineError, match="2 of 3 shares .* 1 more needed"):
        slip39.combine(shares[:2])


def test_identify_names_set_and_index() -> None:
    shares = slip39.split(_secret(), 2, 3, identifier=0x1234)
    infos = [slip39.identify(s) for s in shares]
    assert [i.index for i in infos] == [0, 1, 2]
    assert {i.set_id for i in infos} == {"1234"}
    assert infos[0].threshold == 2 and infos[0].extendable


def test_words_round_trip_and_typo_is_caught() -> None:
    share = slip39.split(_secret(), 2, 3)[1]
    words = slip39.to_words(share)
    assert len(words.split()) == 33
    assert slip39.from_words(words) == share
    broken = words.split()
    broken[10] = "academic" if broken[10] != "academic" else "acid"
    with pytest.raises(ShareFormatError, match="checksum"):
        slip39.from_words(" ".join(broken))


def test_damaged_binary_share_is_refused() -> None:
    share = slip39.split(_secret(), 2, 3)[0]
    share[20] ^= 0x01
    with pytest.raises(ShareFormatError):
        slip39.identify(share)


def test_shares_of_two_sets_do_not_mix() -> None:
    a = slip39.split(_secret(), 2, 3, identifier=1)
    b = slip39.split(_secret(), 2, 3, identifier=2)
    with pytest.raises(CombineError, match="different sets"):
        slip39.combine([a[0], b[1]])


def test_group_thresholds_for_two_sites() -> None:
    groups = slip39.split_groups(_secret(), 2, [(2, 3), (2, 3), (3, 5)])
    assert (
        slip39.combine([groups[0][0], groups[0][2], groups[2][1], groups[2][3], groups[2][4]])
        == _secret()
    )
    with pytest.raises(CombineError, match="1 of 2 groups"):
        slip39.combine([groups[0][0], groups[0][1], groups[1][0]])


def test_extend_gives_a_new_index_that_combines_with_the_others() -> None:
    shares = slip39.split(_secret(), 4, 7)
    new = slip39.extend([shares[0], shares[1], shares[2], shares[3]], 7)
    assert slip39.identify(new).index == 7
    assert slip39.combine([new, shares[4], shares[5], shares[6]]) == _secret()
    with pytest.raises(CombineError, match="quorum"):
        slip39.extend(shares[:3], 8)
    with pytest.raises(CombineError, match="already"):
        slip39.extend(shares[:4], 2)


def test_forged_share_at_an_existing_index_is_named() -> None:
    shares = slip39.split(_secret(), 2, 3)
    other = slip39.split(bytearray(32), 2, 3, identifier=slip39.identify(shares[0]).identifier)
    with pytest.raises(CombineError, match="index 0"):
        slip39.combine([shares[0], other[0], shares[1]])


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(CombineError, match="1-of-3"):
        slip39.split(_secret(), 1, 3)
    with pytest.raises(CombineError, match="k <= n"):
        slip39.split(_secret(), 4, 3)
    with pytest.raises(CombineError, match="even length"):
        slip39.split(bytearray(15), 2, 3)
