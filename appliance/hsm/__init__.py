"""The HSM over PKCS#11: keys, signing, backup and restore, coverage."""
