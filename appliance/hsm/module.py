"""Loading a PKCS#11 module and listing its tokens (the one place that imports pkcs11 for that)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.errors import HsmError


class ModuleLoadError(HsmError):
    """The configured PKCS#11 module cannot be loaded."""


@dataclass(frozen=True)
class TokenSummary:
    label: str
    serial: str
    manufacturer: str
    model: str
    initialized: bool


def survey(module: Path) -> list[TokenSummary]:
    """Load `module` and list the tokens it offers."""
    if not module.exists():
        raise ModuleLoadError(
            f"PKCS#11 module {module} does not exist.",
            hint="Set [hsm] module to the vendor's library (SoftHSM: "
            "/usr/lib/softhsm/libsofthsm2.so; install softhsm2).",
            module=str(module),
        )
    import pkcs11
    from pkcs11.exceptions import PKCS11Error

    try:
        lib = pkcs11.lib(str(module))
        tokens = list(lib.get_tokens())
    except (RuntimeError, OSError, PKCS11Error) as exc:
        raise ModuleLoadError(
            f"PKCS#11 module {module} failed to load: {type(exc).__name__} {exc}",
            hint="Check the module path and its configuration (SoftHSM: SOFTHSM2_CONF).",
            module=str(module),
        ) from None
    out: list[TokenSummary] = []
    for token in tokens:
        flags = int(getattr(token, "flags", 0))
        out.append(
            TokenSummary(
                label=str(token.label).strip(),
                serial=_text(token.serial),
                manufacturer=str(token.manufacturer_id).strip(),
                model=str(token.model).strip(),
                initialized=bool(flags & 0x400),  # CKF_TOKEN_INITIALIZED
            )
        )
    return out


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value).strip()
