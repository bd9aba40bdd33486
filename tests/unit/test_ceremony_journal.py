"""The journal: chain, signatures, and every kind of tampering named by its first bad seq."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from appliance import canonical
from appliance.ceremony import journal
from appliance.ceremony.errors import JournalTampered
from appliance.ceremony.journal import GENESIS, JournalWriter
from appliance.cli import main
from appliance.signing import SoftwareSigner


def _clock() -> str:
    return "2026-12-04T10:00:00.000Z"


def make_journal(path: Path, signer: SoftwareSigner | None, entries: int = 8) -> None:
    w = JournalWriter.create(path, _clock)
    w.append(
        "start", {"script": {"id": "t", "sha256": "00" * 32}, "attendance": {"CA": "A"}}, actor="CA"
    )
    for i in range(1, entries - 2):
        w.append("step_start", {"position": i}, step=f"s{i}", actor="CA")
    w.append("end", {"exceptions": 0, "outputs": {}}, actor="CA")
    if signer:
        w.sign_head(signer)
    w.close()


def test_entries_chain_and_are_canonical(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    make_journal(path, None)
    lines = path.read_bytes().splitlines()
    first = json.loads(lines[0])
    assert set(first) == {"seq", "time", "kind", "step", "actor", "data", "prev"}
    assert first["prev"] == GENESIS
    for a, b in zip(lines, lines[1:], strict=False):
        assert json.loads(b)["prev"] == canonical.sha256_hex(json.loads(a))
        assert canonical.dumps(json.loads(b)) == b
    state = journal.read(path)
    assert state.outcome == "ended" and not state.torn


def test_signature_verifies_and_binds_the_key(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    signer = SoftwareSigner()
    make_journal(path, signer)
    v = journal.verify(path, signer.public_key_der())
    assert len(v.signatures) == 1 and v.unsigned_tail == 0
    with pytest.raises(JournalTampered) as info:
        journal.verify(path, SoftwareSigner().public_key_der())
    assert info.value.seq == 7  # the signature entry, by another key than the one named


def _tamper_cases() -> dict[str, tuple[object, int]]:
    def flip(lines: list[bytes]) -> list[bytes]:
        line = bytearray(lines[3])
        pos = line.index(b'"position":3') + len(b'"position":')
        line[pos] = ord("7")
        lines[3] = bytes(line)
        return lines

    def flip_prev(lines: list[bytes]) -> list[bytes]:
        line = bytearray(lines[4])
        pos = line.index(b'"prev":"') + 12
        line[pos] = ord("0") if line[pos] != ord("0") else ord("1")
        lines[4] = bytes(line)
        return lines

    def delete(lines: list[bytes]) -> list[bytes]:
        del lines[5]
        return lines

    def swap(lines: list[bytes]) -> list[bytes]:
        lines[2], lines[3] = lines[3], lines[2]
        return lines

    def truncate_last(lines: list[bytes]) -> list[bytes]:
        lines[-1] = lines[-1][: len(lines[-1]) // 2]  # cut short, newline kept
        return lines

    def reserialise(lines: list[bytes]) -> list[bytes]:
        lines[2] = json.dumps(json.loads(lines[2]), indent=None).encode()
        return lines

    return {
        "flipped byte": (flip, 3),
        "flipped byte in prev": (flip_prev, 4),
        "deleted line": (delete, 5),
        "swapped lines": (swap, 2),
        "truncated last line": (truncate_last, 7),
        "re-serialised line": (reserialise, 2),
    }


@pytest.mark.parametrize("case", list(_tamper_cases()))
def test_tampering_names_the_first_bad_seq(tmp_path: Path, case: str) -> None:
    path = tmp_path / "j.jsonl"
    signer = SoftwareSigner()
    make_journal(path, signer)
    change, bad = _tamper_cases()[case]
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(change(lines)) + b"\n")  # type: ignore[operator]
    with pytest.raises(JournalTampered) as info:
        journal.verify(path)
    assert info.value.seq == bad, str(info.value)
    assert f"seq {bad}" in str(info.value)


def test_flipped_byte_anywhere_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    signer = SoftwareSigner()
    make_journal(path, signer)
    blob = path.read_bytes()
    line_starts = [0] + [i + 1 for i, b in enumerate(blob) if b == 0x0A][:-1]
    for offset in range(0, len(blob) - 1, 7):
        changed = bytearray(blob)
        changed[offset] ^= 0x01
        path.write_bytes(bytes(changed))
        line = max(i for i, s in enumerate(line_starts) if s <= offset)
        with pytest.raises(JournalTampered) as info:
            journal.verify(path)
        # the flipped line, or (for a flip in a link) its neighbour: never further away
        assert abs(info.value.seq - line) <= 1, (offset, line, str(info.value))


def test_torn_last_line_is_a_power_cut_not_tampering(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter.create(path, _clock)
    w.append("start", {"script": {"id": "t"}}, actor="CA")
    w.append("step_start", {}, step="a", actor="CA")
    w.close()
    whole = journal.JournalState(path, tuple(journal.read(path).entries))
    torn = whole.entries[-1].line()[:40]
    with path.open("ab") as f:
        f.write(torn)
    state = journal.read(path)
    assert state.torn == torn and len(state.entries) == 2 and state.outcome == "unfinished"
    # Resuming drops the torn bytes and continues the chain.
    w2 = JournalWriter(state, _clock)
    w2.append("resume", {"torn_bytes": len(torn)}, actor="CA")
    w2.close()
    again = journal.read(path)
    assert not again.torn and [e.kind for e in again.entries] == ["start", "step_start", "resume"]


def test_verify_cli_summary_and_tamper_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "j.jsonl"
    signer = SoftwareSigner()
    make_journal(path, signer)
    pem = tmp_path / "key.pem"
    pem.write_bytes(
        signer._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert main(["verify", "journal", str(path), "--pubkey", str(pem)]) == 0
    out = capsys.readouterr().out
    assert "chain intact" in out and "ceremony ENDED" in out and "1 valid" in out
    lines = path.read_bytes().splitlines()
    del lines[4]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["verify", "journal", str(path)]) == 1
    err = capsys.readouterr().err
    assert "seq 4 is missing" in err


def test_verify_cli_reports_torn_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter.create(path, _clock)
    w.append("start", {"script": {"id": "t"}, "attendance": {}}, actor="CA")
    w.close()
    with path.open("ab") as f:
        f.write(b'{"actor":"CA","da')
    assert main(["verify", "journal", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Torn last line" in out and "UNFINISHED (resumable)" in out
