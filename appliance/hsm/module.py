"""Loading a PKCS#11 module and listing its tokens.

A PKCS#11 library may be initialised once per process (a second C_Initialize fails with
CRYPTOKI_ALREADY_INITIALIZED), so every user of a module goes through `load()`, which keeps
one library object per path. `reload()` re-reads the token list after a token was created or
deleted outside this process (softhsm2-util); it invalidates every open session. SoftHSM
reads SOFTHSM2_CONF only in C_Initialize: when that variable changed since the library was
initialised (the demo world, a test session), `load()` re-initialises it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.hsm.errors import ModuleLoadError

__all__ = ["ModuleLoadError", "TokenSummary", "load", "reload", "survey"]

_LOADED: dict[str, Any] = {}
_CONF: dict[str, str | None] = {}
_LOCK = threading.Lock()
_CONF_VAR = "SOFTHSM2_CONF"


@dataclass(frozen=True)
class TokenSummary:
    label: str
    serial: str
    manufacturer: str
    model: str
    initialized: bool


def load(module: Path) -> Any:
    """The `pkcs11.lib` for `module`, loaded and initialised once per process."""
    module = Path(module)
    if not module.exists():
        raise ModuleLoadError(
            f"PKCS#11 module {module} does not exist.",
            hint="Set [hsm] module to the vendor's library (SoftHSM: "
            "/usr/lib/softhsm/libsofthsm2.so; install softhsm2).",
            module=str(module),
        )
    import pkcs11
    from pkcs11.exceptions import PKCS11Error

    key = str(module.resolve())
    with _LOCK:
        lib = _LOADED.get(key)
        if lib is not None:
            if _CONF.get(key) != os.environ.get(_CONF_VAR):
                _reinitialize(lib, module)
                _CONF[key] = os.environ.get(_CONF_VAR)
            return lib
        try:
            lib = pkcs11.lib(str(module))
        except (RuntimeError, OSError, PKCS11Error) as exc:
            raise ModuleLoadError(
                f"PKCS#11 module {module} failed to load: {type(exc).__name__} {exc}",
                hint="Check that the file is a PKCS#11 library and its configuration "
                "(SoftHSM: SOFTHSM2_CONF names a readable file).",
                module=str(module),
            ) from None
        _LOADED[key] = lib
        _CONF[key] = os.environ.get(_CONF_VAR)
        return lib


def reload(module: Path) -> Any:
    """Finalize and re-initialise `module` so it sees tokens created by other processes."""
    lib = load(module)
    with _LOCK:
        _reinitialize(lib, module)
        _CONF[str(Path(module).resolve())] = os.environ.get(_CONF_VAR)
    return lib


def _reinitialize(lib: Any, module: Path) -> None:
    from pkcs11.exceptions import PKCS11Error

    try:
        lib.reinitialize()
    except PKCS11Error as exc:
        raise ModuleLoadError(
            f"PKCS#11 module {module} failed to re-initialise: {type(exc).__name__}",
            hint="Restart the appliance.",
            module=str(module),
        ) from None


def survey(module: Path) -> list[TokenSummary]:
    """Load `module` and list the tokens it offers."""
    from pkcs11.exceptions import PKCS11Error

    lib = load(module)
    try:
        tokens = list(lib.get_tokens())
    except PKCS11Error as exc:
        raise ModuleLoadError(
            f"PKCS#11 module {module} cannot list its tokens: {type(exc).__name__} {exc}",
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
