"""The demo world: SoftHSM and virtual cards in one folder, so the appliance runs without hardware.

`appliance demo` prepares the world described by the config's [demo] section, then shows
the appliance check. Everything lives under `[demo] state` (default .demo/): SoftHSM's own
configuration and token directory, the media and workspace folders. Nothing outside it is
touched, so `make clean` (or deleting the folder) resets the demo.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from appliance import atomic
from appliance.config import Config, load_config
from appliance.errors import ConfigError


def softhsm_conf_path(config: Config) -> Path:
    return config.demo.state / "softhsm2.conf"


def activate(config: Config) -> None:
    """Point this process at the demo's SoftHSM (must run before the PKCS#11 module loads)."""
    if config.demo.enabled and softhsm_conf_path(config).exists():
        os.environ["SOFTHSM2_CONF"] = str(softhsm_conf_path(config))


def prepare(config: Config) -> None:
    """Create the demo world's folders and SoftHSM configuration (idempotent)."""
    if not config.demo.enabled:
        raise ConfigError(
            f"{config.source}: [demo] enabled is false; this configuration is not a demo.",
            hint="Use appliance.example.toml, or set [demo] enabled = true.",
        )
    state = config.demo.state
    tokens = state / "softhsm-tokens"
    for folder in (state, tokens, config.paths.media, config.paths.workspace):
        folder.mkdir(parents=True, exist_ok=True)
    conf = softhsm_conf_path(config)
    text = f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    if not conf.exists() or conf.read_text(encoding="utf-8") != text:
        atomic.write_text(conf, text)
    activate(config)


def command(args: argparse.Namespace) -> int:
    from appliance import doctor

    config = load_config(args.config)
    prepare(config)
    print(f"Demo world ready in {config.demo.state}")
    return doctor.report(config, as_json=False)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="run the appliance on its embedded default (SoftHSM + virtual cards)"
    )
    p.set_defaults(handler=command)
