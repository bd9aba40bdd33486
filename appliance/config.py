"""The appliance's configuration file: frozen and closed.

A mistyped key in a ceremony room must stop the appliance with the file, the line and the
key it probably meant, never be silently ignored. Relative paths are taken relative to the
file that names them, so a config works wherever the checkout or the image puts it.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from appliance import tomlfile
from appliance.errors import ConfigError

ENV_VAR = "APPLIANCE_CONFIG"
SYSTEM_PATH = Path("/etc/appliance/appliance.toml")
LOCAL_NAME = "appliance.toml"

Activation = Literal["pin-quorum", "native"]


@dataclass(frozen=True)
class PathsConfig:
    """Where the appliance reads and writes."""

    media: Path = Path("/media/ceremony")
    scripts: Path = Path("/usr/share/appliance/scripts")
    workspace: Path = Path("/var/lib/appliance/workspace")


@dataclass(frozen=True)
class HsmConfig:
    module: Path
    token: str = "ceremony"  # noqa: S105 - a token label, not a secret
    activation: Activation = "pin-quorum"


@dataclass(frozen=True)
class CardsConfig:
    #: Reader names (prefixes) the appliance may use; empty means every reader.
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrinterConfig:
    #: CUPS queue; empty means no printer: PDFs go to the media folder.
    queue: str = ""


@dataclass(frozen=True)
class AirgapConfig:
    #: False only on development machines; every ceremony then records it loudly.
    required: bool = True


@dataclass(frozen=True)
class DemoConfig:
    #: Demo mode: SoftHSM and virtual cards set up by the appliance itself.
    enabled: bool = False
    #: Folder holding the demo world (SoftHSM tokens, virtual card states).
    state: Path = Path(".demo")


@dataclass(frozen=True)
class Config:
    hsm: HsmConfig
    paths: PathsConfig = field(default_factory=PathsConfig)
    cards: CardsConfig = field(default_factory=CardsConfig)
    printer: PrinterConfig = field(default_factory=PrinterConfig)
    airgap: AirgapConfig = field(default_factory=AirgapConfig)
    demo: DemoConfig = field(default_factory=DemoConfig)
    #: The file this came from (for messages and relative paths).
    source: Path = Path("<defaults>")


_SECTIONS: dict[str, type[Any]] = {
    "paths": PathsConfig,
    "hsm": HsmConfig,
    "cards": CardsConfig,
    "printer": PrinterConfig,
    "airgap": AirgapConfig,
    "demo": DemoConfig,
}


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config, else $APPLIANCE_CONFIG, else ./appliance.toml, else /etc/appliance."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    local = Path.cwd() / LOCAL_NAME
    if local.exists():
        return local
    return SYSTEM_PATH


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    path = find_config_path(explicit)
    if not path.exists():
        raise ConfigError(
            f"Configuration file {path} does not exist.",
            hint=(
                "Pass --config PATH, set APPLIANCE_CONFIG, or copy appliance.example.toml "
                "to ./appliance.toml and edit it."
            ),
            path=str(path),
        )
    try:
        doc = tomlfile.load(path)
    except tomlfile.TomlSyntaxError as exc:
        raise ConfigError(
            str(exc), hint="Fix the TOML syntax at that line.", path=exc.path, line=exc.line
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Cannot read configuration file {path}: {exc}", hint="Check the file.", path=str(path)
        ) from None
    return parse_config(doc)


def parse_config(doc: tomlfile.TomlDocument) -> Config:
    base = Path(doc.path).resolve().parent
    sections: dict[str, Any] = {}
    for name, value in doc.data.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise _unknown(doc, (name,), name, _SECTIONS)
        if not isinstance(value, dict):
            raise ConfigError(
                f"{doc.where((name,))}: [{name}] must be a table.",
                hint=f"Write it as a section header: [{name}]",
                path=doc.path,
                line=doc.line((name,)),
            )
        sections[name] = _build(doc, name, cls, value, base)
    if "hsm" not in sections:
        raise ConfigError(
            f"{doc.path}: the [hsm] section is missing.",
            hint='Add [hsm] with module = "/path/to/pkcs11-module.so" (SoftHSM: '
            "/usr/lib/softhsm/libsofthsm2.so).",
            path=doc.path,
        )
    return Config(source=Path(doc.path), **sections)


def _unknown(
    doc: tomlfile.TomlDocument, key: tomlfile.PathKey, name: str, valid: typing.Iterable[str]
) -> ConfigError:
    guess = tomlfile.nearest(name, valid)
    where = doc.where(key)
    kind = "section" if len(key) == 1 else "key"
    dotted = ".".join(str(k) for k in key)
    hint = f"did you mean '{guess}'?" if guess else f"valid: {', '.join(sorted(valid))}"
    return ConfigError(
        f"{where}: unknown {kind} '{dotted}'; {hint}",
        hint="Correct or remove it: the configuration accepts no unknown keys.",
        path=doc.path,
        line=doc.line(key),
        key=dotted,
        suggestion=guess,
    )


def _build(
    doc: tomlfile.TomlDocument, section: str, cls: type[Any], raw: dict[str, Any], base: Path
) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise _unknown(doc, (section, key), key, fields)
        values[key] = _coerce(doc, (section, key), hints[key], value, base)
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and name not in values:
            raise ConfigError(
                f"{doc.where((section,))}: [{section}] needs the key '{name}'.",
                hint=f"Add {name} = ... to [{section}].",
                path=doc.path,
                line=doc.line((section,)),
                key=f"{section}.{name}",
            )
    return cls(**values)


def _coerce(
    doc: tomlfile.TomlDocument, key: tomlfile.PathKey, tp: Any, value: Any, base: Path
) -> Any:
    dotted = ".".join(str(k) for k in key)

    def bad(expected: str) -> ConfigError:
        return ConfigError(
            f"{doc.where(key)}: '{dotted}' must be {expected}, not {value!r}.",
            hint=f"Correct the value of {dotted}.",
            path=doc.path,
            line=doc.line(key),
            key=dotted,
        )

    origin = typing.get_origin(tp)
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise bad("a non-empty path string")
        p = Path(value)
        return p if p.is_absolute() else (base / p)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise bad("one of " + ", ".join(repr(c) for c in choices))
        return value
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return tuple(value)
    if isinstance(tp, types.UnionType):  # pragma: no cover - no optional fields yet
        raise bad(str(tp))
    raise TypeError(f"unsupported config type {tp!r} for {dotted}")  # pragma: no cover
