"""SLIP-39 secret sharing on shamir-mnemonic: split, combine, identify, extend, words.

The arithmetic, checksums and metadata are the library's; this module gives them the shapes
the appliance needs:

- a *binary share* is the SLIP-39 share's word indices packed 10 bits each (big-endian, zero
  padding): 42 bytes for a 32-byte secret, checksum included, convertible to and from the
  share's words without loss. That is what is sealed to a card;
- *words* are the standard SLIP-39 mnemonic, the paper fallback, readable by any SLIP-39 tool
  (`shamir recover`, Trezor);
- sets are *extendable* (SLIP-39 extendable flag) and a new member index can be computed
  later from a quorum of existing shares (interpolation by the library's own routine).

Secrets cross this module as bytearrays. shamir-mnemonic works on immutable bytes and str
internally; those temporaries are released, not wiped: we keep that window as short as we can.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shamir_mnemonic import MnemonicError, Share, recover_ems, split_ems
from shamir_mnemonic.constants import MAX_SHARE_COUNT, RADIX_BITS
from shamir_mnemonic.shamir import (
    EncryptedMasterSecret,
    RawShare,
    ShareGroup,
    _interpolate,
    _recover_secret,
)
from shamir_mnemonic.wordlist import WORD_INDEX_MAP, WORDLIST

from appliance.sharing.errors import CombineError, ShareFormatError

#: SLIP-39 iteration exponent for our sets (PBKDF2 10000 << e over 4 rounds; e=1 as the
#: reference `generate_mnemonics` default). The passphrase is empty: the cards protect shares.
ITERATION_EXPONENT = 1
SECRET_BYTES = 32
MAX_MEMBERS = MAX_SHARE_COUNT  # 16 member indices, 0..15, per group, ever (extensions too)
ID_LIMIT = 1 << 15


@dataclass(frozen=True)
class ShareInfo:
    """What a share says about itself (not secret): its set, group and place."""

    identifier: int
    extendable: bool
    iteration_exponent: int
    group_index: int
    group_threshold: int
    group_count: int
    index: int
    threshold: int

    @property
    def set_id(self) -> str:
        """The set as people read it: SLIP-39 identifier in 4 hex digits."""
        return f"{self.identifier:04x}"


def _info(share: Share) -> ShareInfo:
    return ShareInfo(
        identifier=share.identifier,
        extendable=share.extendable,
        iteration_exponent=share.iteration_exponent,
        group_index=share.group_index,
        group_threshold=share.group_threshold,
        group_count=share.group_count,
        index=share.index,
        threshold=share.member_threshold,
    )


# --- binary <-> words <-> Share -------------------------------------------------------------


def _pack(indices: Sequence[int]) -> bytearray:
    total_bits = len(indices) * RADIX_BITS
    nbytes = (total_bits + 7) // 8
    acc = 0
    for i in indices:
        acc = (acc << RADIX_BITS) | i
    acc <<= nbytes * 8 - total_bits
    out = bytearray(acc.to_bytes(nbytes, "big"))
    return out


def _unpack(data: bytes | bytearray) -> list[int]:
    nwords = (len(data) * 8) // RADIX_BITS
    pad = len(data) * 8 - nwords * RADIX_BITS
    acc = int.from_bytes(data, "big")
    if acc & ((1 << pad) - 1):
        raise ShareFormatError(
            "binary share has non-zero padding bits: it is damaged or not a share",
            hint="Use the share's words (paper fallback) or re-issue it with a quorum.",
        )
    acc >>= pad
    mask = (1 << RADIX_BITS) - 1
    return [(acc >> (RADIX_BITS * (nwords - 1 - k))) & mask for k in range(nwords)]


def _share_from_binary(data: bytes | bytearray) -> Share:
    if len(data) < 20:
        raise ShareFormatError(
            f"binary share has {len(data)} bytes, too short for a SLIP-39 share",
            hint="The data is not a share; check what was read from the card.",
        )
    return _share_from_words(" ".join(WORDLIST[i] for i in _unpack(data)))


def _share_from_words(words: str) -> Share:
    try:
        return Share.from_mnemonic(words)
    except MnemonicError as exc:
        raise ShareFormatError(
            f"not a valid SLIP-39 share: {exc}",
            hint="Check each word against the paper copy; the checksum catches most typos.",
        ) from None


def _share_to_binary(share: Share) -> bytearray:
    return _pack([WORD_INDEX_MAP[w] for w in share.words()])


def to_words(share: bytes | bytearray) -> str:
    """The SLIP-39 mnemonic of a binary share: the paper fallback (a str: print, then drop)."""
    return str(_share_from_binary(share).mnemonic())


def from_words(words: str) -> bytearray:
    """Binary share from its SLIP-39 words (checksum verified)."""
    return _share_to_binary(_share_from_words(words))


def identify(share: bytes | bytearray) -> ShareInfo:
    """Set identifier, group and member index of a binary share (checksum verified)."""
    return _info(_share_from_binary(share))


def identify_words(words: str) -> ShareInfo:
    return _info(_share_from_words(words))


# --- split ---------------------------------------------------------------------------------


def new_identifier(avoid: Iterable[int] = ()) -> int:
    """A random 15-bit SLIP-39 identifier not in `avoid` (the roster's sets stay distinct)."""
    taken = set(avoid)
    if len(taken) >= ID_LIMIT:
        raise CombineError("no free SLIP-39 set identifier left")
    while True:
        ident = secrets.randbelow(ID_LIMIT)
        if ident not in taken:
            return ident


def _check_secret(secret: bytes | bytearray) -> None:
    if len(secret) < 16 or len(secret) % 2:
        raise CombineError(
            f"a SLIP-39 secret has an even length of at least 16 bytes, got {len(secret)}"
        )


def split_groups(
    secret: bytearray,
    group_threshold: int,
    groups: Sequence[tuple[int, int]],
    *,
    identifier: int | None = None,
    extendable: bool = True,
) -> list[list[bytearray]]:
    """Split `secret` into groups of (threshold, count) binary shares; any `group_threshold`
    complete groups recover it (multi-site sets: one group per site)."""
    _check_secret(secret)
    if not groups:
        raise CombineError("a share set needs at least one group")
    if not 1 <= group_threshold <= len(groups):
        raise CombineError(
            f"group threshold {group_threshold} must be between 1 and {len(groups)} groups"
        )
    for k, n in groups:
        if not (1 <= k <= n <= MAX_MEMBERS):
            raise CombineError(
                f"a group of {k}-of-{n} is not possible: need 1 <= k <= n <= {MAX_MEMBERS}"
            )
        if k == 1 and n > 1:
            raise CombineError(
                f"a 1-of-{n} group would give every member the whole secret",
                hint="Use a threshold of at least 2, or a 1-of-1 group.",
            )
    ident = new_identifier() if identifier is None else identifier
    if not 0 <= ident < ID_LIMIT:
        raise CombineError(f"SLIP-39 identifier {ident} is outside 0..{ID_LIMIT - 1}")
    ems = EncryptedMasterSecret.from_master_secret(
        bytes(secret), b"", ident, extendable, ITERATION_EXPONENT
    )
    try:
        shares = split_ems(group_threshold, list(groups), ems)
    except ValueError as exc:
        raise CombineError(f"cannot split: {exc}") from None
    return [[_share_to_binary(s) for s in group] for group in shares]


def split(
    secret: bytearray,
    threshold: int,
    count: int,
    *,
    identifier: int | None = None,
    extendable: bool = True,
) -> list[bytearray]:
    """Split `secret` into `count` binary shares, any `threshold` of which recover it."""
    return split_groups(
        secret, 1, [(threshold, count)], identifier=identifier, extendable=extendable
    )[0]


# --- combine and extend --------------------------------------------------------------------


def _grouped(shares: Sequence[bytes | bytearray]) -> dict[int, ShareGroup]:
    if not shares:
        raise CombineError("no shares given")
    decoded = [_share_from_binary(s) for s in shares]
    first = decoded[0]
    groups: dict[int, ShareGroup] = {}
    for s in decoded:
        if s.common_parameters() != first.common_parameters():
            raise CombineError(
                f"shares of different sets: {first.identifier:04x} and {s.identifier:04x}",
                hint="Present only cards of the set being opened.",
            )
        group = groups.setdefault(s.group_index, ShareGroup())
        if s in group:
            continue
        if any(o.index == s.index for o in group):
            raise CombineError(
                f"two different shares claim index {s.index} of set {s.identifier:04x}",
                hint="One of them is forged or from a damaged card: find it by retesting.",
            )
        try:
            group.add(s)
        except MnemonicError as exc:
            raise CombineError(f"shares do not belong together: {exc}") from None
    return groups


def combine(shares: Sequence[bytes | bytearray], passphrase: bytes = b"") -> bytearray:
    """The secret from enough binary shares (extra shares are ignored; order is free)."""
    groups = _grouped(shares)
    first = next(iter(next(iter(groups.values()))))
    complete = {i: g.get_minimal_group() for i, g in groups.items() if g.is_complete()}
    if len(complete) < first.group_threshold:
        if first.group_count == 1:
            g = groups[first.group_index]
            raise CombineError(
                f"{len(g)} of {g.member_threshold()} shares of set {first.identifier:04x}: "
                f"{g.member_threshold() - len(g)} more needed",
                have=len(g),
                need=g.member_threshold(),
            )
        raise CombineError(
            f"{len(complete)} of {first.group_threshold} groups of set "
            f"{first.identifier:04x} complete: more shares needed",
            have=len(complete),
            need=first.group_threshold,
        )
    chosen = dict(sorted(complete.items())[: first.group_threshold])
    try:
        ems = recover_ems(chosen)
        return bytearray(ems.decrypt(passphrase))
    except (MnemonicError, ValueError) as exc:
        raise CombineError(
            f"the shares of set {first.identifier:04x} do not combine: {exc}",
            hint="A share is damaged or forged: retest each card against the roster.",
        ) from None


def extend(shares: Sequence[bytes | bytearray], new_index: int) -> bytearray:
    """A new member share at `new_index` of the same set and group, from a quorum of that
    group (the SLIP-39 polynomial evaluated at a fresh x by the library's interpolation)."""
    groups = _grouped(shares)
    if len(groups) != 1:
        raise CombineError("extend takes shares of one group only")
    group = next(iter(groups.values()))
    first = next(iter(group))
    if not first.extendable:
        raise CombineError(f"set {first.identifier:04x} is not extendable")
    if not 0 <= new_index < MAX_MEMBERS:
        raise CombineError(
            f"member index {new_index} is outside 0..{MAX_MEMBERS - 1}",
            hint="SLIP-39 allows 16 member indices per group; rekey instead.",
        )
    if any(s.index == new_index for s in group):
        raise CombineError(f"index {new_index} is already one of the shares given")
    if not group.is_complete():
        raise CombineError(
            f"{len(group)} of {group.member_threshold()} shares: a quorum is needed to extend"
        )
    minimal = group.get_minimal_group()
    raw = [RawShare(s.index, s.value) for s in minimal]
    try:  # the quorum's group secret must pass its SLIP-39 digest before we extend it
        _recover_secret(first.member_threshold, raw)
    except MnemonicError:
        raise CombineError(
            f"the shares of set {first.identifier:04x} do not combine: cannot extend",
            hint="A share is damaged or forged: retest each card against the roster.",
        ) from None
    value = _interpolate(raw, new_index) if first.member_threshold > 1 else first.value
    new = Share(
        first.identifier,
        first.extendable,
        first.iteration_exponent,
        first.group_index,
        first.group_threshold,
        first.group_count,
        new_index,
        first.member_threshold,
        value,
    )
    return _share_to_binary(new)
