"""Token initialisation for SoftHSM, through softhsm2-util (python-pkcs11 has no C_InitToken).

The PINs never appear on a command line (where /proc/<pid>/cmdline shows them): softhsm2-util
reads them from its terminal, so we give it a pseudo-terminal and type them in. Vendor HSMs
are initialised with the vendor's tools; the appliance then only needs the token's label.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

from appliance.hsm import module as hsm_module
from appliance.hsm.errors import TokenInitError

_TIMEOUT_S = 30.0


def _tool() -> str:
    path = shutil.which("softhsm2-util")
    if path is None:
        raise TokenInitError(
            "softhsm2-util is not installed.",
            hint="Install the Debian package softhsm2.",
        )
    return path


def init_softhsm_token(module: Path, label: str, *, so_pin: bytearray, user_pin: bytearray) -> str:
    """Initialise a free SoftHSM slot as token `label`; return its serial.

    SOFTHSM2_CONF in the environment decides which token directory is used. The module is
    re-initialised afterwards so this process sees the new token (open sessions end).
    """
    for name, pin in (("SO PIN", so_pin), ("user PIN", user_pin)):
        if not 4 <= len(pin) <= 255 or b"\n" in pin or b"\r" in pin:
            raise TokenInitError(
                f"The {name} must be 4 to 255 characters on one line.",
                hint=f"Choose another {name}.",
            )
    before = {t.serial for t in hsm_module.survey(module) if t.label == label}
    answers = [so_pin, so_pin, user_pin, user_pin]
    output = _run_with_terminal([_tool(), "--init-token", "--free", "--label", label], answers)
    if "has been initialized" not in output:
        raise TokenInitError(
            f"softhsm2-util could not initialise token '{label}': {_last_line(output)}",
            hint="Check SOFTHSM2_CONF and that its token directory is writable.",
            label=label,
        )
    hsm_module.reload(module)
    for token in hsm_module.survey(module):
        if token.label == label and token.serial not in before:
            return token.serial
    raise TokenInitError(  # pragma: no cover - softhsm2-util said it worked
        f"Token '{label}' was initialised but the module does not list it.",
        hint="Check that SOFTHSM2_CONF is the same for softhsm2-util and the appliance.",
    )


def delete_softhsm_token(module: Path, label: str, *, serial: str | None = None) -> None:
    """Delete SoftHSM token `label` (or the one with `serial`) and every key on it."""
    which = ["--serial", serial] if serial else ["--token", label]
    proc = subprocess.run(  # noqa: S603 - fixed tool, no shell
        [_tool(), "--delete-token", *which],
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise TokenInitError(
            f"softhsm2-util could not delete token '{label}': "
            f"{_last_line(proc.stdout + proc.stderr)}",
            hint="Check the label (appliance doctor lists the tokens).",
            label=label,
        )
    hsm_module.reload(module)


def _run_with_terminal(argv: list[str], answers: list[bytearray]) -> str:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(  # noqa: S603 - fixed tool, no shell
            argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True
        )
    finally:
        os.close(slave)
    seen = bytearray()
    pending = list(answers)
    deadline = time.monotonic() + _TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith(b":"):
                os.write(master, pending.pop(0))  # the caller's buffer, no copy
                os.write(master, b"\n")
                seen += b"\n"
        else:
            proc.kill()
            raise TokenInitError("softhsm2-util did not finish in time.", hint="Try again.")
        proc.wait(timeout=_TIMEOUT_S)
    finally:
        with contextlib.suppress(OSError):
            os.close(master)
    return seen.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
