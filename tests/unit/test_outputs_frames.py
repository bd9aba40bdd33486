"""QR frames: header, per-frame checksum, capacity, reassembly in any order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.outputs import frames, qr
from appliance.outputs.errors import FrameError

CAPACITY = qr.capacity_chars(25, "M")
ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def test_capacity_matches_the_qr_tables() -> None:
    # ISO/IEC 18004 alphanumeric capacities (and FIELD-NOTES): v25-M 1451, v40 L/M 4296/3391.
    assert qr.capacity_chars(25, "M") == 1451
    assert qr.capacity_chars(40, "M") == 3391
    assert qr.capacity_chars(40, "L") == 4296
    assert qr.capacity_chars(1, "H") == 10


def test_frame_text_layout_and_parse() -> None:
    f = frames.Frame("7QX2", 1, 3, 12, b"hello")
    text = f.text()
    assert text.startswith("CB1:7QX2:1:3:12:")
    assert set(text) <= ALNUM
    assert frames.parse(text) == f


def test_split_fills_frames_to_capacity_and_reassembles() -> None:
    data = random.Random(1).randbytes(50_000)
    parts = frames.split(data, "7QX2", 1, CAPACITY)
    assert all(len(p.text()) <= CAPACITY for p in parts)
    assert max(len(p.text()) for p in parts) > CAPACITY - 3  # full frames, not half-empty
    assert len(parts) == -(-len(data) // len(parts[0].data))
    assert {p.count for p in parts} == {len(parts)}
    collector = frames.Collector()
    shuffled = [p.text() for p in parts]
    random.Random(2).shuffle(shuffled)
    collector.add_texts(shuffled + shuffled[:3], "scan")
    got = collector.sets["7QX2"][1]
    assert got.missing() == []
    assert got.data() == data
    assert collector.duplicates == 3


def test_every_frame_fits_the_chosen_qr() -> None:
    text = frames.split(b"\xff" * 5000, "AAAA", 0, CAPACITY)[0].text()
    assert len(qr.matrix(text, 25, "M")) == 117  # version 25 is 117 modules wide


@pytest.mark.parametrize("position", [0, 6, 20, -3])
def test_a_changed_character_is_caught(position: int) -> None:
    text = frames.Frame("7QX2", 1, 3, 12, bytes(range(60))).text()
    chars = list(text)
    chars[position] = "Z" if chars[position] != "Z" else "Y"
    with pytest.raises(FrameError):
        frames.parse("".join(chars))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HELLO", "no CB header"),
        ("CB1:7QX2", "truncated"),
        ("CB2:7QX2:1:1:1:BB8:" + frames._crc("CB2:7QX2:1:1:1:BB8"), "not supported"),
        ("CB1:7QX2:1:5:4:BB8:" + frames._crc("CB1:7QX2:1:5:4:BB8"), "outside"),
        ("CB1:7QX2:1:01:4:BB8:" + frames._crc("CB1:7QX2:1:01:4:BB8"), "canonical"),
    ],
)
def test_malformed_frames_say_why(text: str, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        frames.parse(text)


def test_collector_sets_aside_conflicts_and_keeps_sets_apart() -> None:
    collector = frames.Collector()
    collector.add(frames.Frame("AAAA", 1, 1, 2, b"a"), "p1")
    collector.add(frames.Frame("AAAA", 1, 2, 3, b"b"), "p2")  # disagrees on the count
    collector.add(frames.Frame("AAAA", 1, 1, 2, b"z"), "p3")  # same index, other data
    collector.add(frames.Frame("BBBB", 1, 1, 1, b"c"), "p4")
    collector.add_texts(["garbage"], "p5")
    assert collector.sets["AAAA"][1].missing() == [2]
    assert collector.frame_count("AAAA") == 1
    assert collector.frame_count("BBBB") == 1
    assert len(collector.notes) == 3
    assert "says 3 frames" in collector.notes[0]
    assert "two different frames 1" in collector.notes[1]
    assert collector.notes[2].startswith("p5: a code was set aside")


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=4000), st.integers(min_value=60, max_value=1500))
def test_any_payload_any_capacity_round_trips(data: bytes, capacity: int) -> None:
    parts = frames.split(data, "ZZ77", 4, capacity)
    assert all(len(p.text()) <= capacity for p in parts)
    collector = frames.Collector()
    collector.add_texts(reversed([p.text() for p in parts]))
    assert collector.sets["ZZ77"][4].data() == data


def test_small_outputs_get_one_big_code() -> None:
    ds = b"example.com. 3600 IN DS 20326 13 2 " + b"E0" * 32
    (frame,) = frames.split(ds, "7QX2", 2, CAPACITY)
    modules = qr.matrix(frame.text(), None, "M")
    assert len(modules) < 117  # the smallest version that fits, not the full v25
    pitch = qr.pitch_for(len(modules), qr.CHOSEN.size_mm)
    assert pitch >= 2 * qr.CHOSEN.module_mm
    assert pitch * len(modules) <= qr.CHOSEN.size_mm
    px = pitch / qr.GRID_MM
    assert px == round(px)
