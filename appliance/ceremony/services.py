"""Building the engine's services for a run: signer, air-gap root, layer services, cards.

This is where the ceremony binds to the layers present on the appliance; each layer's
services are added as the layer exposes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from appliance.ceremony.answers import Answers, AnswersOperator
from appliance.ceremony.context import Services
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
) -> Services:
    services = Services()
    if signing_key is not None:
        services.signer = load_software_signer(signing_key)
    if airgap_root is not None:
        services.airgap_root = airgap_root
    return services


def headless_operator(
    answers: Answers, services: Services, echo: Callable[[str], None] | None
) -> AnswersOperator:
    return AnswersOperator(answers, card_slots=services.card_slots, echo=echo)
