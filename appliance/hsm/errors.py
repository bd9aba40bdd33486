"""HSM errors: each says what is wrong and what the operator does next, never a secret."""

from __future__ import annotations

from appliance.errors import HsmError as HsmError


class ModuleLoadError(HsmError):
    """The configured PKCS#11 module cannot be loaded."""


class TokenNotFound(HsmError):
    """No token with the requested label or serial."""


class PinError(HsmError):
    """Login failed; `fields['state']` carries what the token reports about its PIN."""


class LabelInUse(HsmError):
    """A key with that label already exists on the token."""


class UnsupportedAlgorithm(HsmError):
    """The algorithm or its mechanism is not available on this token."""


class KeyNotFound(HsmError):
    """No key with that label or id on the token."""


class KeyNotCoverable(HsmError):
    """The backup cannot cover this key (for example Ed25519 on SoftHSM 2.6)."""


class TokenFull(HsmError):
    """The token has no room for another object."""


class SignatureCheckFailed(HsmError):
    """A signature made by the HSM did not verify with the recorded public key."""


class BackupError(HsmError):
    """A backup could not be written or read."""


class BackupTampered(BackupError):
    """The manifest signature or a blob hash does not match: nothing was restored."""


class BackupForAnotherToken(BackupError):
    """The backup was made for a different token."""


class RestoreError(HsmError):
    """A restore failed; everything it created was removed again."""


class TokenNotEmpty(RestoreError):
    """A restore needs an empty token."""


class TokenInitError(HsmError):
    """Initialising a token failed."""
