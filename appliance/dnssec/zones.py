"""The zones file: one `[zone."name."]` table per zone, keys named like `ZonePolicy` fields.

    [zone."example."]
    ksk = ["ksk-example-2026"]      # HSM key label(s) of the zone's KSK
    algorithms = [13]
    rrsig_lifetime = "14d"
    [zone."."]
    preset = "root"                  # start from ZonePolicy.root()

Durations are strings ("14d", "90m", "P21D"); times are TOML datetimes. Unknown keys are
errors with the file, the line and the key probably meant.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance import tomlfile
from appliance.dnssec.model import canonical_domain
from appliance.dnssec.policy import ZonePolicy
from appliance.dnssec.sign import Ksk
from appliance.dnssec.signer import DnssecKeySigner
from appliance.dnssec.times import parse_duration
from appliance.errors import ConfigError

_EXTRA = {"ksk", "preset", "ksk_schedule"}
_SCHEDULE_TIMES = ("publish_from", "publish_until", "sign_from", "sign_until")
_SCHEDULE_FLAGS = ("revoked", "publish_only")


@dataclass(frozen=True)
class KskRole:
    """One KSK's part in the zone's SKRs: when it is published and when it signs."""

    label: str
    revoked: bool = False
    publish_only: bool = False
    publish_from: datetime | None = None
    publish_until: datetime | None = None
    sign_from: datetime | None = None
    sign_until: datetime | None = None


@dataclass(frozen=True)
class ZoneEntry:
    policy: ZonePolicy
    ksks: tuple[KskRole, ...]

    @property
    def ksk_labels(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.label for k in self.ksks))

    def bind(self, signer_for: Callable[[str], DnssecKeySigner | None]) -> list[Ksk]:
        """The zone's KSKs with their rollover roles; `signer_for(label)` gives the key
        (the HSM's, through the port), or None when it is not available."""
        out: list[Ksk] = []
        for role in self.ksks:
            signer = signer_for(role.label)
            if signer is not None:
                out.append(
                    Ksk(
                        signer,
                        role.label,
                        revoked=role.revoked,
                        publish_only=role.publish_only,
                        publish_from=role.publish_from,
                        publish_until=role.publish_until,
                        sign_from=role.sign_from,
                        sign_until=role.sign_until,
                    )
                )
        return out


def load_zones(path: Path) -> dict[str, ZoneEntry]:
    try:
        doc = tomlfile.load(path)
    except tomlfile.TomlSyntaxError as exc:
        raise ConfigError(str(exc), hint="Fix the TOML syntax at that line.") from None
    except OSError as exc:
        raise ConfigError(
            f"Cannot read zones file {path}: {exc.strerror}",
            hint="Pass --zones PATH to an existing file.",
        ) from None
    return parse_zones(doc)


def parse_zones(doc: tomlfile.TomlDocument) -> dict[str, ZoneEntry]:
    for key, value in doc.data.items():
        if key != "zone":
            where: tomlfile.PathKey = (key,)
            if isinstance(value, dict) and value:
                where = (key, next(iter(value)))
            raise _err(doc, where, f"unknown table '{key}'; only [zone.\"name.\"] tables")
    zones = doc.data.get("zone", {})
    if not isinstance(zones, dict) or not zones:
        raise ConfigError(
            f'{doc.path}: no [zone."name."] table.',
            hint='Add [zone."example."] with ksk = ["label"].',
        )
    hints = typing.get_type_hints(ZonePolicy)
    fields = {f.name for f in dataclasses.fields(ZonePolicy)} - {"zone"}
    out: dict[str, ZoneEntry] = {}
    for name, table in zones.items():
        path: tomlfile.PathKey = ("zone", name)
        if not isinstance(table, dict):
            raise _err(doc, path, "must be a table")
        try:
            zone = canonical_domain(name)
        except Exception:
            raise _err(doc, path, f"{name!r} is not a domain name") from None
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key in _EXTRA:
                continue
            if key not in fields:
                guess = tomlfile.nearest(key, fields | _EXTRA)
                raise _err(
                    doc,
                    (*path, key),
                    f"unknown key '{key}'" + (f"; did you mean '{guess}'?" if guess else ""),
                )
            values[key] = _coerce(doc, (*path, key), hints[key], value)
        preset = table.get("preset", "")
        if preset not in ("", "root"):
            raise _err(doc, (*path, "preset"), 'preset must be "root" or absent')
        base = ZonePolicy.root() if preset == "root" else ZonePolicy(zone=zone)
        policy = dataclasses.replace(base, zone=zone, **values)
        labels = table.get("ksk", [])
        if not isinstance(labels, list) or not all(isinstance(v, str) and v for v in labels):
            raise _err(doc, (*path, "ksk"), "ksk must be a list of HSM key labels")
        roles = [KskRole(label) for label in labels]
        schedule = table.get("ksk_schedule", [])
        if schedule and labels:
            raise _err(doc, (*path, "ksk_schedule"), "give either ksk or ksk_schedule")
        if not isinstance(schedule, list):
            raise _err(doc, (*path, "ksk_schedule"), "ksk_schedule must be a list of tables")
        for item in schedule:
            roles.append(_role(doc, (*path, "ksk_schedule"), item))
        out[zone] = ZoneEntry(policy, tuple(roles))
    return out


def _role(doc: tomlfile.TomlDocument, key: tomlfile.PathKey, item: Any) -> KskRole:
    if not isinstance(item, dict) or not isinstance(item.get("label"), str):
        raise _err(doc, key, 'each ksk_schedule entry needs label = "HSM label"')
    values: dict[str, Any] = {"label": item["label"]}
    for name, value in item.items():
        if name == "label":
            continue
        if name in _SCHEDULE_TIMES:
            if not isinstance(value, datetime):
                raise _err(doc, key, f"{name} must be a TOML date-time")
            values[name] = value if value.tzinfo else value.replace(tzinfo=UTC)
        elif name in _SCHEDULE_FLAGS:
            if not isinstance(value, bool):
                raise _err(doc, key, f"{name} must be true or false")
            values[name] = value
        else:
            guess = tomlfile.nearest(name, (*_SCHEDULE_TIMES, *_SCHEDULE_FLAGS, "label"))
            raise _err(
                doc,
                key,
                f"unknown key '{name}' in ksk_schedule"
                + (f"; did you mean '{guess}'?" if guess else ""),
            )
    return KskRole(**values)


def _err(doc: tomlfile.TomlDocument, key: tomlfile.PathKey, problem: str) -> ConfigError:
    return ConfigError(
        f"{doc.where(key)}: {problem}",
        hint="Correct the zones file.",
        path=doc.path,
        line=doc.line(key),
    )


def _coerce(doc: tomlfile.TomlDocument, key: tomlfile.PathKey, tp: Any, value: Any) -> Any:
    args = typing.get_args(tp)
    optional = type(None) in args
    inner = next((a for a in args if a is not type(None)), tp) if optional else tp
    if optional and value == "":
        return None
    name = ".".join(str(k) for k in key)
    if inner is timedelta:
        if isinstance(value, int) and not isinstance(value, bool):
            return timedelta(seconds=value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            raise _err(doc, key, f"{name}: {exc}") from None
    if inner is datetime:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        raise _err(doc, key, f"{name} must be a TOML date-time like 2027-01-01T00:00:00Z")
    if inner is bool:
        if not isinstance(value, bool):
            raise _err(doc, key, f"{name} must be true or false")
        return value
    if inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _err(doc, key, f"{name} must be a whole number")
        return value
    if typing.get_origin(inner) is tuple:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise _err(doc, key, f"{name} must be a list of whole numbers")
        return tuple(value)
    raise _err(doc, key, f"{name} cannot be set here")  # pragma: no cover
