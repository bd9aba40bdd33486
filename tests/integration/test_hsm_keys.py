"""SoftHSM: every DNSSEC algorithm generates, signs and verifies; private keys stay inside."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import dns.dnssec
import dns.dnssecalgs
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import pytest

from appliance import signing
from appliance.hsm import keygen, keys
from appliance.hsm.errors import (
    HsmError,
    KeyNotCoverable,
    LabelInUse,
    SignatureCheckFailed,
    UnsupportedAlgorithm,
)
from appliance.hsm.pkcs11_adapter import Session
from tests.support.softhsm import SoftHsm

#: (algorithm, RSA bits): RSA-4096 is generated once for the whole module.
CASES = [(8, 2048), (8, 3072), (8, 4096), (13, None), (14, None), (15, None)]
SIG_LEN = {(8, 2048): 256, (8, 3072): 384, (8, 4096): 512, (13, None): 64, (14, None): 96}


@dataclass
class World:
    session: Session
    made: dict[tuple[int, int | None], keygen.Generated]
    ceremony: keys.HsmCeremonyKey


@pytest.fixture(scope="module")
def world(softhsm: SoftHsm) -> Iterator[World]:
    softhsm.init_token("keys")
    session = softhsm.open("keys")
    ceremony = keygen.generate_ceremony_key(session)
    made = {
        (a, b): keygen.generate_key(session, a, role="zsk", zone="example.", bits=b)
        for a, b in CASES
    }
    yield World(session, made, ceremony)
    session.close()


def _independent_verify(algorithm: int, dnskey_field: bytes, data: bytes, sig: bytes) -> None:
    """Verify with dnspython's own key classes, built from the DNSKEY record alone."""
    rdata = dns.rdtypes.ANY.DNSKEY.DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, 257, 3, algorithm, dnskey_field
    )
    public = dns.dnssecalgs.get_algorithm_cls(algorithm).public_cls.from_dnskey(rdata)
    public.verify(sig, data)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"alg{c[0]}-{c[1] or ''}")
def test_each_algorithm_generates_signs_and_verifies(world: World, case: tuple) -> None:
    made = world.made[case]
    assert made.key.algorithm == case[0]
    signer = keys.dnssec_key(world.session, made.key.label)
    assert signer.algorithm == case[0]
    assert signer.dnskey_public_key == made.key.dnskey_public_key
    data = b"\x00\x30\x08\x00RRSIG rdata prefix and canonical RRset" * 3
    sig = signer.sign(data)
    if case in SIG_LEN:
        assert len(sig) == SIG_LEN[case]
    _independent_verify(case[0], signer.dnskey_public_key, data, sig)
    rdata = dns.rdtypes.ANY.DNSKEY.DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, 257, 3, case[0], signer.dnskey_public_key
    )
    assert made.key.key_tag(257) == dns.dnssec.key_id(rdata)
    assert made.key.id == keys.alg.key_id(made.key.public_key_der)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"alg{c[0]}-{c[1] or ''}")
def test_private_key_value_cannot_be_read(world: World, case: tuple) -> None:
    made = world.made[case]
    with pytest.raises(HsmError, match="refuses to reveal") as info:
        world.session.read_private_value(made.key.id)
    assert info.value.fields["refused"] in ("AttributeSensitive", "AttributeTypeInvalid")
    obj = next(o for o in world.session.key_objects() if o.id == made.key.id)
    assert obj.sensitive and obj.local


def test_ceremony_key_is_a_ceremony_signer(world: World) -> None:
    signer: signing.CeremonySigner = world.ceremony
    data = b"journal head"
    signing.verify(signer.public_key_der(), data, signer.sign(data))
    found = keys.ceremony_key(world.session)
    assert found.public_key_der() == signer.public_key_der()
    assert found.record.algorithm is None and found.record.role == "ceremony"


def test_dnssec_key_fits_the_dnssec_layer_protocol(world: World) -> None:
    from appliance.dnssec.signer import DnssecKeySigner, DnssecPrivateKey

    key = keys.dnssec_key(world.session, world.made[(13, None)].key.label)
    assert isinstance(key, DnssecKeySigner)
    private = DnssecPrivateKey(key)  # dnspython's seam: builds the DNSKEY from our fields
    assert private.dnskey().key == key.dnskey_public_key
    _independent_verify(13, key.dnskey_public_key, b"rrset", private.sign(b"rrset"))


def test_a_signature_that_does_not_verify_is_never_returned(world: World) -> None:
    good = world.made[(13, None)].key
    # The record carries another P-256 public key than the token key's: the check must refuse.
    liar = keys.KeyRecord(
        good.label, good.id, good.spec, world.ceremony.public_key_der(), None, False
    )
    key = keys.HsmDnssecKey(liar, world.session.signer(good.id, good.spec))
    with pytest.raises(SignatureCheckFailed):
        key.sign(b"data")
    key.sign_unverified(b"data")  # the raw path does not check: only for self-verifying callers


def test_duplicate_label_is_refused(world: World) -> None:
    label = world.made[(13, None)].key.label
    before = len(world.session.key_objects())
    with pytest.raises(LabelInUse, match=label):
        keygen.generate_key(world.session, 13, role="zsk", label=label)
    with pytest.raises(LabelInUse, match="reserved"):
        keygen.generate_key(world.session, 13, role="zsk", label=keys.CEREMONY_LABEL)
    assert len(world.session.key_objects()) == before


def test_conventional_labels_get_a_suffix_instead_of_colliding(world: World) -> None:
    first = world.made[(14, None)].key.label
    again = keygen.generate_key(world.session, 14, role="zsk", zone="example.")
    assert again.key.label == first + "-2"
    world.session.destroy_key(again.key.id)


def test_ed25519_ksk_is_refused_when_no_backup_can_cover_it(world: World) -> None:
    assert not world.session.can_wrap_ed25519()  # SoftHSM 2.6.1
    before = len(world.session.key_objects())
    with pytest.raises(KeyNotCoverable, match="no backup can cover"):
        keygen.generate_key(world.session, 15, role="ksk", zone="example.")
    assert len(world.session.key_objects()) == before
    made = keygen.generate_key(
        world.session, 15, role="ksk", zone="example.", allow_uncoverable=True
    )
    assert made.override and "operator override" in made.override
    assert not made.coverable
    world.session.destroy_key(made.key.id)


def test_unsupported_algorithm_and_mechanism(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnsupportedAlgorithm, match="algorithm 10"):
        keygen.generate_key(world.session, 10, role="zsk")
    before = len(world.session.key_objects())
    without_eddsa = world.session.mechanisms() - {0x1057}  # CKM_EDDSA
    monkeypatch.setattr(world.session, "_mechs", without_eddsa)
    with pytest.raises(UnsupportedAlgorithm, match="CKM_EDDSA"):
        keygen.generate_key(world.session, 15, role="zsk", zone="example.")
    assert len(world.session.key_objects()) == before
