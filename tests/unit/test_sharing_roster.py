"""The signed roster: round trip, versions chain, signature and strictness errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance import canonical, signing
from appliance.sharing import roster as rosters
from appliance.sharing.errors import RosterError
from appliance.sharing.roster import Roster
from tests.unit.test_sharing_quorum import NOW, officers


def _saved(tmp_path: Path) -> tuple[Path, signing.SoftwareSigner, Roster]:
    signer = signing.SoftwareSigner()
    roster, _, _ = officers(Roster(), [])
    path = tmp_path / "roster.json"
    saved = rosters.save(path, roster, signer, when=NOW)
    return path, signer, saved


def test_round_trip_and_versions_chain(tmp_path: Path) -> None:
    path, signer, saved = _saved(tmp_path)
    fp = signing.fingerprint(signer.public_key_der())
    loaded = rosters.load(path, trusted_fingerprint=fp)
    assert loaded == saved and loaded.serial == 1 and loaded.previous == ""
    again = rosters.save(path, loaded, signer, when=NOW)
    reloaded = rosters.load(path, trusted_public_key=signer.public_key_der())
    assert reloaded.serial == 2 and reloaded.previous == rosters.body_digest(loaded)
    assert reloaded.sets == again.sets


def test_a_changed_roster_does_not_load(tmp_path: Path) -> None:
    path, signer, _ = _saved(tmp_path)
    doc = json.loads(path.read_text())
    doc["body"]["sets"][0]["members"][0]["revoked"] = True
    path.write_bytes(canonical.pretty(doc))
    with pytest.raises(RosterError, match="signature does not verify"):
        rosters.load(path, trusted_public_key=signer.public_key_der())


def test_a_roster_signed_by_another_key_does_not_load(tmp_path: Path) -> None:
    path, _, _ = _saved(tmp_path)
    other = signing.SoftwareSigner()
    with pytest.raises(RosterError, match="not by the trusted key"):
        rosters.load(path, trusted_public_key=other.public_key_der())
    with pytest.raises(RosterError, match="Compare the fingerprint"):
        rosters.load(path, trusted_fingerprint=signing.fingerprint(other.public_key_der()))
    with pytest.raises(RosterError, match="trusted ceremony key"):
        rosters.load(path)


def _resign(path: Path, signer: signing.SoftwareSigner, edit: object) -> None:
    from appliance import canonical

    doc = json.loads(path.read_text())
    edit(doc["body"])  # type: ignore[operator]
    doc["signature"]["value"] = signer.sign(canonical.dumps(doc["body"])).hex()
    path.write_bytes(canonical.pretty(doc))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda b: b["sets"][0]["members"][1].update(extra=1),
            r"members\[1\]: unknown key 'extra'",
        ),
        (lambda b: b["sets"][0].pop("threshold"), r"sets\[0\]: missing key 'threshold'"),
        (lambda b: b["sets"][0].update(threshold="3"), r"threshold: expected int, found str"),
        (lambda b: b["sets"][0].update(purpose="coffee"), r"purpose: unknown purpose"),
        (lambda b: b["sets"][0]["members"][0].update(revoked=1), r"revoked: expected bool"),
        (lambda b: b["sets"][0]["members"][0].update(issued_at="yesterday"), r"UTC timestamp"),
        (lambda b: b["sets"][0]["members"][0].update(commitment="ab"), r"salt-hex:sha256"),
        (lambda b: b["sets"][0]["members"][2].update(index=0), r"two members hold share 0"),
        (lambda b: b["sets"][0]["members"][0].update(ecdh_public_key="00"), r"expected 65 bytes"),
    ],
)
def test_strict_parsing_names_the_place(tmp_path: Path, edit: object, message: str) -> None:
    path, signer, _ = _saved(tmp_path)
    _resign(path, signer, edit)
    with pytest.raises(RosterError, match=message):
        rosters.load(path, trusted_public_key=signer.public_key_der())


def test_not_json_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text("{")
    with pytest.raises(RosterError, match="not a JSON roster"):
        rosters.load(path, trusted_fingerprint="00")


def test_the_same_roster_in_another_layout_does_not_load(tmp_path: Path) -> None:
    """Signed bytes have one spelling: compact JSON, or upper-case signature hex, is a
    changed file even though it means the same."""
    path, signer, _ = _saved(tmp_path)
    original = path.read_bytes()
    doc = json.loads(original)
    path.write_text(json.dumps(doc, sort_keys=True))
    with pytest.raises(RosterError, match="not laid out as the appliance writes it"):
        rosters.load(path, trusted_public_key=signer.public_key_der())
    doc["signature"]["value"] = doc["signature"]["value"].upper()
    path.write_bytes(canonical.pretty(doc))
    with pytest.raises(RosterError, match="not well encoded"):
        rosters.load(path, trusted_public_key=signer.public_key_der())
    path.write_bytes(original)
    assert rosters.load(path, trusted_public_key=signer.public_key_der()).serial
