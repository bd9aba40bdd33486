"""Declarations of every action a script may name: parameters, layer, destructiveness.

Declared here, in one place, so `appliance script check` validates every script whatever
layers this appliance has; implementations are bound separately (see actions/__init__.py).
"""

from __future__ import annotations

from appliance.ceremony.params import Param
from appliance.ceremony.registry import ActionSpec

ALGORITHMS = ("RSASHA256", "RSASHA512", "ECDSAP256SHA256", "ECDSAP384SHA384", "ED25519")

SPECS: tuple[ActionSpec, ...] = (
    # ---- implemented by the engine itself
    ActionSpec(
        "airgap.check",
        "Check that the laptop has no network path (interfaces, radios, routes).",
        {
            "required": Param(
                "bool",
                "fail the step when a path exists (false only where the config allows it)",
                required=False,
                default=True,
            )
        },
        layer="engine",
    ),
    ActionSpec(
        "operator.confirm",
        "A role confirms a statement aloud (e.g. the tamper-evident bag numbers match).",
        {
            "role": Param("role", "who confirms"),
            "prompt": Param("text", "the statement confirmed"),
        },
        layer="engine",
    ),
    ActionSpec(
        "operator.typed_confirm",
        "A role types a phrase to confirm a destructive step whose consequence is read out.",
        {
            "role": Param("role", "who confirms"),
            "consequence": Param("text", "what cannot be undone"),
            "phrase": Param("str", "the exact words to type"),
        },
        layer="engine",
        destructive=True,
    ),
    ActionSpec(
        "hash.readaloud",
        "Copy an input file into the workspace, hash it, read its SHA-256 as PGP words.",
        {
            "input": Param("input", "the input name (e.g. ksr)"),
            "description": Param("str", "what the file is, for the prompt"),
            "confirm": Param("role", "who confirms the words match", required=False, default="IW"),
        },
        layer="engine",
    ),
    # ---- HSM (appliance.hsm)
    ActionSpec(
        "hsm.init",
        "Initialise the HSM token and split its user PIN among the crypto officers' cards.",
        {
            "officers": Param("family", "the crypto officer family", required=False, default="CO"),
            "threshold": Param("int", "cards needed to activate", minimum=1, maximum=16),
        },
        layer="appliance.hsm",
        destructive=True,
        consequence="Initialising the token erases every key on it.",
    ),
    ActionSpec(
        "hsm.activate",
        "Activate the HSM with a quorum of crypto officers' cards (PIN quorum or native).",
        {
            "officers": Param("family", "the crypto officer family", required=False, default="CO"),
            "quorum": Param("int", "cards needed (the roster's threshold)", minimum=1, maximum=16),
            "roster": Param("input", "the roster input", required=False, default="roster"),
        },
        layer="appliance.hsm",
        session=True,
    ),
    ActionSpec(
        "hsm.generate_key",
        "Generate a key pair in the HSM under this label (detects one already generated).",
        {
            "label": Param(
                "label",
                "the key's label (default: <zone>-<purpose>-a<alg>-<ceremony day>)",
                required=False,
                default="",
            ),
            "algorithm": Param("enum", "DNSSEC algorithm", choices=ALGORITHMS),
            "bits": Param("int", "RSA modulus size", required=False, default=2048, minimum=2048),
            "purpose": Param("enum", "what the key is for", choices=("ksk", "zsk", "ceremony")),
            "zone": Param("str", "the zone (for ksk/zsk)", required=False, default="."),
        },
        layer="appliance.hsm",
        needs_earlier=("hsm.activate", "hsm.init"),
    ),
    ActionSpec(
        "hsm.backup",
        "Wrap the HSM's keys under the backup key and write the backup, signed.",
        {
            "holders": Param(
                "family", "holders of the backup key shares", required=False, default="RKSH"
            ),
        },
        layer="appliance.hsm",
        needs_earlier=("hsm.activate",),
    ),
    ActionSpec(
        "hsm.restore",
        "Restore keys from a backup onto the token (onto a fresh token after hsm.init).",
        {
            "input": Param("input", "the backup file input name"),
            "holders": Param(
                "family", "holders of the backup key shares", required=False, default="RKSH"
            ),
            "quorum": Param("int", "shares needed", minimum=1, maximum=16),
        },
        layer="appliance.hsm",
        destructive=True,
        consequence="Keys in the backup replace keys with the same label on the token.",
        needs_earlier=("hsm.activate",),
    ),
    ActionSpec(
        "hsm.coverage",
        "Report which keys on the token no backup covers.",
        {
            "fail_uncovered": Param(
                "bool", "fail when a key is uncovered", required=False, default=True
            )
        },
        layer="appliance.hsm",
        needs_earlier=("hsm.activate",),
    ),
    # ---- DNSSEC (appliance.dnssec)
    ActionSpec(
        "ksk.publish",
        "Write the KSK's DNSKEY, DS (SHA-256, SHA-384) and trust anchor; read the DS aloud.",
        {
            "key": Param("step", "the step that generated the KSK", actions=("hsm.generate_key",)),
            "zone": Param("str", "the zone", required=False, default="."),
        },
        layer="appliance.dnssec",
    ),
    ActionSpec(
        "ksr.load",
        "Load a Key Signing Request from the media into the workspace and read its hash aloud.",
        {
            "input": Param("input", "the KSR input name", required=False, default="ksr"),
            "format": Param(
                "enum",
                "KSR format",
                choices=("auto", "knot", "iana"),
                required=False,
                default="auto",
            ),
        },
        layer="appliance.dnssec",
    ),
    ActionSpec(
        "ksr.check",
        "Check the KSR against the signing policy; every requirement is reported.",
        {
            "ksr": Param("step", "the step that loaded the KSR", actions=("ksr.load",)),
            "zones": Param(
                "input",
                "the zones file input (policy, KSK labels)",
                required=False,
                default="zones",
            ),
        },
        layer="appliance.dnssec",
    ),
    ActionSpec(
        "ksr.sign",
        "Sign the KSR's key bundles with the KSK and write the SKR (detects one already written).",
        {
            "ksr": Param("step", "the step that loaded the KSR", actions=("ksr.load",)),
            "zones": Param(
                "input",
                "the zones file input (policy, KSK labels)",
                required=False,
                default="zones",
            ),
        },
        layer="appliance.dnssec",
        needs_earlier=("hsm.activate",),
    ),
    # ---- cards and credentials (appliance.cards, appliance.sharing)
    ActionSpec(
        "cards.enroll",
        "Enrol a holder's card: generate on-card keys, set PINs, record it in the roster.",
        {"holders": Param("family", "whose cards (e.g. CO or RKSH)")},
        layer="appliance.cards",
    ),
    ActionSpec(
        "shares.issue",
        "Split a secret with SLIP-39 and seal one share to each holder's card.",
        {
            "holders": Param("family", "the holders (e.g. RKSH)"),
            "threshold": Param("int", "shares needed to recover", minimum=1, maximum=16),
            "secret": Param("enum", "which secret", choices=("backup-key", "token-pin")),
        },
        layer="appliance.sharing",
    ),
    ActionSpec(
        "shares.retest",
        "A holder proves their card and PIN open their share; the result is attested.",
        {"holders": Param("family", "whose credentials")},
        layer="appliance.sharing",
    ),
    ActionSpec(
        "shares.replace",
        "Re-issue one holder's share with a quorum of the others (extendable SLIP-39).",
        {
            "holder": Param("role", "the holder being replaced (e.g. RKSH3)"),
            "quorum": Param("int", "shares needed", minimum=1, maximum=16),
        },
        layer="appliance.sharing",
        destructive=True,
        consequence="The replaced holder's old share stops being accepted.",
    ),
    ActionSpec(
        "shares.rekey",
        "Recover the secret with a quorum and issue a new share set (new set id).",
        {
            "holders": Param("family", "the holders"),
            "quorum": Param("int", "shares needed to recover", minimum=1, maximum=16),
            "threshold": Param("int", "threshold of the new set", minimum=1, maximum=16),
        },
        layer="appliance.sharing",
        destructive=True,
        consequence="Every share of the old set stops being accepted.",
    ),
    ActionSpec(
        "hint.seal",
        "A holder seals a location hint for their credential that only a quorum can open.",
        {
            "holder": Param("role", "the holder sealing the hint"),
            "quorum": Param("int", "holders needed to open it", minimum=1, maximum=16),
        },
        layer="appliance.sharing",
    ),
    ActionSpec(
        "hint.open",
        "A quorum opens a holder's sealed location hint.",
        {
            "holder": Param("role", "whose hint"),
            "quorum": Param("int", "holders needed", minimum=1, maximum=16),
        },
        layer="appliance.sharing",
    ),
    # ---- outputs (appliance.outputs)
    ActionSpec(
        "outputs.bundle",
        "Write the signed output bundle: artifacts with SHA-256, script hash, journal head.",
        {"name": Param("label", "bundle name")},
        layer="appliance.outputs",
    ),
    ActionSpec(
        "outputs.print",
        "Print the bundle's sheet (QR codes, hashes in PGP words), or save the PDF to media.",
        {
            "bundle": Param("step", "the step that wrote the bundle", actions=("outputs.bundle",)),
            "copies": Param("int", "copies", required=False, default=1, minimum=1, maximum=10),
        },
        layer="appliance.outputs",
    ),
)
