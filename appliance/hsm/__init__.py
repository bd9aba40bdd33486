"""The HSM over PKCS#11: keys, signing, backup and restore, coverage (docs/hsm.md).

Entry points for other layers (import the submodules; this package imports nothing heavy):
- `pkcs11_adapter.Token(module, label=|serial=).open(pin: bytearray) -> Session` (a context
  manager; one thread at a time);
- `keys.dnssec_key(session, label) -> HsmDnssecKey` (algorithm, dnskey_public_key, sign);
  `keys.ceremony_key(session) -> HsmCeremonyKey` (an appliance.signing.CeremonySigner);
- `keygen.generate_key / generate_ceremony_key / pregenerate`;
- `backup.create_backup / load_backup / latest_backup`, `restore.restore_backup`;
- `inventory.inventory`, `coverage.check`; `token_init.init_softhsm_token`.
"""
