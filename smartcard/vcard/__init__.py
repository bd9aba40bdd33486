"""Virtual OpenPGP card."""
