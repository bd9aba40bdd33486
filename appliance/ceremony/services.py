"""Building the engine's services for a run: signer, air-gap root, layer services, cards.

This is where the ceremony binds to the layers present on the appliance; each layer's
services are added as the layer exposes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from appliance.ceremony.answers import Answers, AnswersOperator
from appliance.ceremony.context import Services
from appliance.ceremony.virtual_cards import VirtualCardRoom
from appliance.config import Config
from appliance.errors import UsageError
from appliance.signing import SoftwareSigner


def load_software_signer(path: Path) -> SoftwareSigner:
    """A development signing key (PEM, P-256): never for a real ceremony."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise UsageError(f"Cannot load signing key {path}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise UsageError(f"{path} is not a P-256 private key.")
    return SoftwareSigner(key)


def build_services(
    config: Config | None,
    *,
    signing_key: Path | None = None,
    airgap_root: Path | None = None,
    virtual_cards: Path | None = None,
    ceremony_fingerprint: str | None = None,
) -> Services:
    """Services for a headless run. Virtual cards come from `virtual_cards`, else from the
    demo world (`[demo] state`/cards) when the configuration is a demo."""
    services = Services(ceremony_fingerprint=ceremony_fingerprint)
    if signing_key is not None:
        services.signer = load_software_signer(signing_key)
    if airgap_root is not None:
        services.airgap_root = airgap_root
    if virtual_cards is None and config is not None and config.demo.enabled:
        virtual_cards = config.demo.state / "cards"
    if virtual_cards is not None:
        room = VirtualCardRoom(virtual_cards)
        services.cards = room
        services.card_slots = room
    if config is not None:
        from appliance import demo

        demo.activate(config)
    return services


def headless_operator(
    answers: Answers, services: Services, echo: Callable[[str], None] | None
) -> AnswersOperator:
    return AnswersOperator(answers, card_slots=services.card_slots, echo=echo)
