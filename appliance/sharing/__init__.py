"""Quorum credentials: SLIP-39 shares sealed to holders' cards, the signed roster, the flows.

Layers inside this package, bottom up:
- `slip39`: split/combine/identify/extend on shamir-mnemonic (no Shamir of our own);
- `envelope`, `commitment`: a share sealed to a card's ECDH key; a salted hash per share;
- `ports`: the narrow card port the flows need (`HolderCard`), `fake_card` for tests,
  `openpgp_card` adapting the cards layer's OpenPGP session to it;
- `roster`: the signed, versioned record of sets and members;
- `derive`: the token PIN, backup wrapping key and note key derived from a rebuilt secret;
- flows: `issue`, `quorum` (HSM activation, backup wrapping key), `retest`, `attest`,
  `membership` (replace/add/revoke), `rekey`, `notes` (sealed location hints and emergency
  contacts), `reports`; `cli` for `appliance attest [verify]`.

docs/credentials.md describes the lifecycle and lists the calls the engine makes.
"""
