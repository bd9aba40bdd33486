"""The ceremony appliance: offline DNSSEC key ceremonies with smart cards and an HSM."""

__version__ = "0.1.0"
