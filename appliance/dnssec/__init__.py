"""DNSSEC KSK operations: KSK publication, KSR/SKR formats, KSR policy checks, SKR signing.

Entry points for other layers:
- `appliance.dnssec.publish`: DNSKEY, key tag, DS and RFC 7958 trust anchor of a KSK;
- `appliance.dnssec.formats.load_document`: parse a KSR or SKR (Knot text or IANA XML);
- `appliance.dnssec.policy`: `ZonePolicy`, `check_request`, `Overrides`;
- `appliance.dnssec.sign.sign_request`: sign a checked KSR with KSK signer(s);
- `appliance.dnssec.signer.DnssecKeySigner`: the port an HSM key satisfies.
"""
