"""SoftHSM for tests: a private SOFTHSM2_CONF and token directory per test session.

`softhsm` (session scope) points this process at a fresh token directory and gives helpers
to initialise, delete and open tokens (through appliance.hsm.token_init, i.e. softhsm2-util
on a pseudo-terminal). Locally a missing softhsm2 skips; in CI it fails (services.need).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.services import need, need_tool

if TYPE_CHECKING:
    from appliance.hsm.pkcs11_adapter import Session

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
USER_PIN = b"user-1234"
SO_PIN = b"so-5678"


@dataclass
class SoftHsm:
    module: Path
    conf: Path
    tokens: Path

    def pin(self) -> bytearray:
        return bytearray(USER_PIN)

    def init_token(self, label: str, *, replace: bool = False) -> str:
        """Initialise a token; with `replace`, first delete every token with this label.

        The token directory lives for the whole test session: a test that uses a fixed
        label must replace (or delete at teardown) or it collides with the next one.
        """
        from appliance.hsm import token_init

        if replace:
            self.delete_all(label)
        return token_init.init_softhsm_token(
            self.module, label, so_pin=bytearray(SO_PIN), user_pin=bytearray(USER_PIN)
        )

    def delete_all(self, label: str) -> None:
        from appliance.hsm import module as hsm_module

        for token in hsm_module.survey(self.module):
            if token.label == label and token.serial:
                self.delete_token(label, serial=token.serial)

    def delete_token(self, label: str, serial: str | None = None) -> None:
        from appliance.hsm import token_init

        token_init.delete_softhsm_token(self.module, label, serial=serial)

    def open(self, label: str | None = None, serial: str | None = None) -> Session:
        from appliance.hsm.pkcs11_adapter import Token

        return Token(self.module, label=label, serial=serial).open(self.pin())

    def config_file(self, folder: Path, token: str) -> Path:
        """An appliance.toml for the CLI, pointing at this SoftHSM and `folder`/workspace."""
        path = folder / "appliance.toml"
        path.write_text(
            f'[hsm]\nmodule = "{self.module}"\ntoken = "{token}"\n\n'
            f'[paths]\nworkspace = "{folder / "workspace"}"\nmedia = "{folder / "media"}"\n'
            "\n[airgap]\nrequired = false\n",
            encoding="utf-8",
        )
        return path


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    need_tool("softhsm2-util", "softhsm2")
    need(MODULE.exists(), f"the SoftHSM module {MODULE}", "Install the Debian package softhsm2.")
    from appliance.hsm import module as hsm_module

    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n",
        encoding="utf-8",
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    hsm_module.reload(MODULE)  # SoftHSM reads SOFTHSM2_CONF in C_Initialize
    try:
        yield SoftHsm(MODULE, conf, tokens)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
        hsm_module.reload(MODULE)
