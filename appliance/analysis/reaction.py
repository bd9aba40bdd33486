"""The reaction window: how long a registry has between losing its signing keys and the
first signature in its zone expiring (after which validating resolvers see the zone bogus).

OpenDNSSEC (kasp.xml, Signatures): the signer runs every `Resign`; at a run at time t it keeps
a signature whose expiration is at least t + `Refresh` and makes new ones otherwise, expiring
at t + Validity + r with r uniform in [-Jitter, +Jitter] (Validity `Default`, or `Denial` for
NSEC/NSEC3). `InceptionOffset` backdates the inception and does not move the expiration.
Keys lost at time L: the last good run t0 lies in (L - Resign, L], and at t0 every signature
expires at or after t0 + min(Refresh, Validity_min - Jitter). Hence

    nominal window  = Refresh - Resign                              (the rule of thumb)
    exact worst     = min(Refresh, min(Default, Denial) - Jitter) - Resign
    best case       = min(Refresh, min(Default, Denial) - Jitter)  (lost just after a run)

(Refresh 0 means "refresh at every run": then only Validity_min - Jitter counts.)

Knot DNS (policy section): signing is event-driven; the next re-sign event is due when the
earliest signature reaches `rrsig-refresh` before its expiration, and `rrsig-pre-refresh`
only refreshes others earlier in the same batch. There is no periodic run and no jitter, so
the worst case is min(rrsig-refresh, rrsig-lifetime). Default rrsig-refresh (Knot 3.2):
propagation-delay (default 1h) + zone-max-ttl.

A signed zone file answers the same question for today: its earliest RRSIG expiration is
the moment validation starts failing if the keys were lost now.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.analysis import durations
from appliance.analysis.errors import InputFormatError, ModelError

DEFAULT_TARGET = timedelta(days=7)


@dataclass(frozen=True)
class SigningPolicy:
    """The signing timers that bound the reaction window."""

    signer: str  # "OpenDNSSEC" or "Knot"
    name: str
    source: str
    resign: timedelta  # interval between signer runs (0: event-driven signer)
    refresh: timedelta
    validity_default: timedelta
    validity_denial: timedelta
    jitter: timedelta
    inception_offset: timedelta
    pre_refresh: timedelta = timedelta(0)


@dataclass(frozen=True)
class ReactionWindow:
    policy: SigningPolicy
    nominal: timedelta
    worst: timedelta
    best: timedelta
    limited_by: str
    target: timedelta

    @property
    def ok(self) -> bool:
        return self.worst >= self.target

    def lines(self) -> list[str]:
        p, h = self.policy, durations.human
        out = [f"{p.signer} policy {p.name!r} ({p.source})"]
        if p.signer == "Knot":
            out += [
                f"  rrsig-lifetime {h(p.validity_default)}, rrsig-refresh {h(p.refresh)}, "
                f"rrsig-pre-refresh {h(p.pre_refresh)} (event-driven: no re-sign period, "
                "no jitter)",
                f"  window (rrsig-refresh): {h(self.nominal)}",
                f"  exact worst case: {h(self.worst)} (limited by {self.limited_by})",
            ]
            fix = "raise rrsig-refresh (and rrsig-lifetime)"
        else:
            out += [
                f"  resign {h(p.resign)}, refresh {h(p.refresh)}, validity "
                f"{h(p.validity_default)} (denial {h(p.validity_denial)}), jitter {h(p.jitter)},"
                f" inception offset {h(p.inception_offset)}",
                f"  nominal window (refresh - resign): {h(self.nominal)}",
                f"  exact worst case: {h(self.worst)} (limited by {self.limited_by})",
                f"  best case (keys lost just after a signing run): {h(self.best)}",
            ]
            fix = "raise Refresh (and Validity)"
        if self.ok:
            out.append(f"  OK: at least the target of {h(self.target)}")
        else:
            out += textwrap.wrap(
                f"WARNING: below the target of {h(self.target)}. If the signing keys are lost,"
                f" the zone goes bogus after {h(self.worst)} in the worst case: {fix}"
                " or keep a restorable backup that can be brought online faster than that.",
                width=92,
                initial_indent="  ",
                subsequent_indent="  ",
            )
        return out


def window(policy: SigningPolicy, target: timedelta = DEFAULT_TARGET) -> ReactionWindow:
    """The reaction window of a policy (formulas in the module docstring)."""
    validity_min = min(policy.validity_default, policy.validity_denial)
    fresh_min = validity_min - policy.jitter
    if policy.refresh <= timedelta(0) or fresh_min < policy.refresh:
        kept_min = fresh_min
        limited_by = "rrsig-lifetime" if policy.signer == "Knot" else "validity - jitter"
    else:
        kept_min = policy.refresh
        limited_by = "rrsig-refresh" if policy.signer == "Knot" else "refresh"
    return ReactionWindow(
        policy=policy,
        nominal=policy.refresh - policy.resign,
        worst=kept_min - policy.resign,
        best=kept_min,
        limited_by=limited_by,
        target=target,
    )


# --- OpenDNSSEC kasp.xml -------------------------------------------------------------------

_KASP_FIELDS = (
    ("resign", "Signatures/Resign"),
    ("refresh", "Signatures/Refresh"),
    ("validity_default", "Signatures/Validity/Default"),
    ("validity_denial", "Signatures/Validity/Denial"),
    ("jitter", "Signatures/Jitter"),
    ("inception_offset", "Signatures/InceptionOffset"),
)


def kasp_policies(path: Path) -> list[SigningPolicy]:
    """Every policy in an OpenDNSSEC kasp.xml, strictly: a missing or bad element is an error
    naming it (and the policy)."""
    from defusedxml import ElementTree
    from defusedxml.ElementTree import ParseError

    try:
        root = ElementTree.parse(str(path)).getroot()
    except ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise InputFormatError(
            f"{path}, line {line}, column {col}: not well-formed XML ({exc})",
            hint="Fix the XML syntax of kasp.xml (ods-kaspcheck validates it).",
            path=str(path),
            line=line,
        ) from None
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc.strerror}", hint="Check the path.", path=str(path)
        ) from None
    except Exception as exc:  # defusedxml refuses entities and DTD tricks
        raise InputFormatError(
            f"{path}: refused XML ({type(exc).__name__})",
            hint="kasp.xml must not use entities or DTDs.",
        ) from None
    if root.tag != "KASP":
        raise InputFormatError(
            f"{path}: root element is <{root.tag}>, expected <KASP>",
            hint="Give OpenDNSSEC's kasp.xml (usually /etc/opendnssec/kasp.xml).",
            path=str(path),
            element=root.tag,
        )
    policies = root.findall("Policy")
    if not policies:
        raise InputFormatError(
            f"{path}: <KASP> holds no <Policy> element",
            hint="A kasp.xml defines at least one policy.",
            path=str(path),
            element="KASP/Policy",
        )
    return [_kasp_policy(path, p) for p in policies]


def _kasp_policy(path: Path, el: Any) -> SigningPolicy:
    name = el.get("name")
    if not name:
        raise InputFormatError(
            f"{path}: a <Policy> element has no name attribute",
            hint='Write <Policy name="...">.',
            path=str(path),
            element="KASP/Policy@name",
        )
    values: dict[str, timedelta] = {}
    for attr, rel in _KASP_FIELDS:
        where = f"KASP/Policy[@name='{name}']/{rel}"
        child = el.find(rel)
        if child is None:
            raise InputFormatError(
                f"{path}: policy {name!r} has no <{rel.split('/')[-1]}> element ({where})",
                hint="Every policy needs Signatures with Resign, Refresh, Validity/Default, "
                "Validity/Denial, Jitter and InceptionOffset.",
                path=str(path),
                element=where,
            )
        text = (child.text or "").strip()
        value = durations.parse_iso8601(text)
        if value is None:
            raise InputFormatError(
                f"{path}: {where} is {text!r}, not an ISO 8601 duration",
                hint="Write durations like PT2H, P3D, P14D or PT3600S.",
                path=str(path),
                element=where,
                value=text,
            )
        values[attr] = value
    return SigningPolicy(signer="OpenDNSSEC", name=name, source=str(path), **values)


def kasp_policy(path: Path, name: str | None = None) -> SigningPolicy:
    """One policy by name; without a name the only one, or the one named 'default'."""
    policies = kasp_policies(path)
    return _pick(policies, name, str(path))


def _pick(policies: list[SigningPolicy], name: str | None, source: str) -> SigningPolicy:
    names = [p.name for p in policies]
    if name is None:
        if len(policies) == 1:
            return policies[0]
        if "default" in names:
            return policies[names.index("default")]
        raise ModelError(
            f"{source} defines policies {names}: say which one", hint="Pass --policy NAME."
        )
    if name not in names:
        raise ModelError(
            f"{source} has no policy {name!r}; it defines {names}",
            hint="Pass one of the names listed.",
        )
    return policies[names.index(name)]


# --- Knot DNS knot.conf ----------------------------------------------------------------------

_KNOT_DEFAULTS = {"rrsig-lifetime": "14d", "rrsig-pre-refresh": "1h", "propagation-delay": "1h"}


def _knot_sections(path: Path) -> list[tuple[int, dict[str, tuple[int, str]]]]:
    """The items of the top-level `policy:` section: [(line, {key: (line, value)})]."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc.strerror}", hint="Check the path.", path=str(path)
        ) from None
    items: list[tuple[int, dict[str, tuple[int, str]]]] = []
    in_policy = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            in_policy = line.strip() == "policy:"
            continue
        if not in_policy:
            continue
        body = line.strip()
        if body.startswith("- "):
            items.append((number, {}))
            body = body[2:].strip()
        if not items:
            raise InputFormatError(
                f"{path}, line {number}: expected '- id: NAME' in policy:",
                hint="Each policy starts with '- id: NAME'.",
                path=str(path),
                line=number,
            )
        key, sep, value = body.partition(":")
        if not sep:
            raise InputFormatError(
                f"{path}, line {number}: expected 'key: value', got {body!r}",
                hint="Knot configuration items are 'key: value'.",
                path=str(path),
                line=number,
            )
        items[-1][1][key.strip()] = (number, value.strip().strip('"'))
    return items


def knot_policy(
    path: Path, name: str | None = None, zone_max_ttl: timedelta | None = None
) -> SigningPolicy:
    """A Knot policy's signing timers, defaults filled as knot.conf(5) documents them."""
    found: list[SigningPolicy] = []
    for line, items in _knot_sections(path):
        if "id" not in items:
            raise InputFormatError(
                f"{path}, line {line}: a policy without 'id'",
                hint="Start each policy with '- id: NAME'.",
                path=str(path),
                line=line,
            )
        pid = items["id"][1]

        def time(
            key: str,
            policy: str = pid,
            entries: dict[str, tuple[int, str]] = items,
            default: str | None = None,
        ) -> timedelta | None:
            if key in entries:
                at, text = entries[key]
            elif default is not None:
                at, text = 0, default
            else:
                return None
            value = durations.parse_knot_time(text)
            if value is None:
                raise InputFormatError(
                    f"{path}, line {at}: policy {policy!r}: {key} is {text!r}, not a Knot TIME",
                    hint="Write a number of seconds with an optional suffix: 3600, 90m, 7d.",
                    path=str(path),
                    line=at,
                    element=key,
                )
            return value

        lifetime = time("rrsig-lifetime", default=_KNOT_DEFAULTS["rrsig-lifetime"])
        pre = time("rrsig-pre-refresh", default=_KNOT_DEFAULTS["rrsig-pre-refresh"])
        refresh = time("rrsig-refresh")
        assert lifetime is not None and pre is not None  # noqa: S101 - defaults given
        if refresh is None and (name is None or name == pid):
            delay = time("propagation-delay", default=_KNOT_DEFAULTS["propagation-delay"])
            max_ttl = time("zone-max-ttl") or zone_max_ttl
            if max_ttl is None:
                raise ModelError(
                    f"{path}: policy {pid!r} sets no rrsig-refresh, whose default is "
                    "propagation-delay + zone-max-ttl, and the zone's maximal TTL is unknown",
                    hint="Pass --zone-max-ttl (e.g. 1d) or set rrsig-refresh in the policy.",
                )
            assert delay is not None  # noqa: S101 - default given
            refresh = delay + max_ttl
        if refresh is None:
            continue  # not the policy asked for; its default needs data we do not have
        found.append(
            SigningPolicy(
                signer="Knot",
                name=pid,
                source=str(path),
                resign=timedelta(0),
                refresh=refresh,
                validity_default=lifetime,
                validity_denial=lifetime,
                jitter=timedelta(0),
                inception_offset=timedelta(minutes=90),
                pre_refresh=pre,
            )
        )
    if not found and name is None:
        raise InputFormatError(
            f"{path}: no 'policy:' section with a policy",
            hint="Point to the knot.conf that defines the signing policy.",
            path=str(path),
        )
    return _pick(found, name, str(path))


# --- a signed zone file ----------------------------------------------------------------------


def _soa_owner(text: str) -> str | None:
    """The owner of the SOA in a file written with absolute names and no $ORIGIN (as signers
    and dnspython write them): the first token of the line whose record type is SOA."""
    for raw in text.splitlines():
        tokens = raw.split(";", 1)[0].split()
        if "SOA" in (tok.upper() for tok in tokens[1:5]) and tokens[0].endswith("."):
            return tokens[0]
    return None


@dataclass(frozen=True)
class ZoneDeadline:
    """The earliest RRSIG expiration of a signed zone, compared with now."""

    origin: str
    signatures: int
    earliest: datetime
    owner: str
    covered: str
    key_tag: int
    now: datetime
    target: timedelta

    @property
    def remaining(self) -> timedelta:
        return self.earliest - self.now

    @property
    def ok(self) -> bool:
        return self.remaining >= self.target

    def lines(self) -> list[str]:
        when = self.earliest.strftime("%Y-%m-%d %H:%M:%S UTC")
        now = self.now.strftime("%Y-%m-%d %H:%M:%S UTC")
        out = [
            f"zone {self.origin}: {self.signatures} RRSIGs; earliest expiration {when}",
            f"  ({self.owner} {self.covered}, key tag {self.key_tag})",
            f"If the keys were lost now ({now}), validation fails at {when}"
            f" (in {durations.human(self.remaining)}).",
        ]
        if self.remaining <= timedelta(0):
            out.append("  EXPIRED: this zone is already bogus for validating resolvers.")
        elif not self.ok:
            out.append(f"  WARNING: less than the target of {durations.human(self.target)}.")
        return out


def zone_deadline(
    path: Path,
    *,
    origin: str | None = None,
    now: datetime | None = None,
    target: timedelta = DEFAULT_TARGET,
) -> ZoneDeadline:
    """Read a signed zone (master-file format) and find its earliest RRSIG expiration."""
    import dns.exception
    import dns.name
    import dns.rdatatype
    import dns.zone
    from dns.rdtypes.ANY.RRSIG import RRSIG

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc.strerror}", hint="Check the path.", path=str(path)
        ) from None
    try:
        if origin is None and "$ORIGIN" not in text:
            origin = _soa_owner(text)
        zone = dns.zone.from_text(
            text, origin=origin, relativize=False, check_origin=False, filename=str(path)
        )
    except dns.zone.UnknownOrigin:
        raise InputFormatError(
            f"{path}: the zone has no $ORIGIN", hint="Pass --origin NAME.", path=str(path)
        ) from None
    except dns.exception.DNSException as exc:
        raise InputFormatError(
            f"{path}: not a valid zone file: {exc}",
            hint="Give the signed zone in master-file format.",
            path=str(path),
        ) from None
    best: tuple[int, str, str, int] | None = None
    count = 0
    for name, _ttl, rdata in zone.iterate_rdatas():  # RRSIG sets are keyed by "covers"
        if not isinstance(rdata, RRSIG):
            continue
        count += 1
        key = (
            int(rdata.expiration),
            name.to_text(),
            dns.rdatatype.to_text(rdata.type_covered),
            int(rdata.key_tag),
        )
        if best is None or key < best:
            best = key
    if best is None:
        raise InputFormatError(
            f"{path}: no RRSIG records: is this the signed zone?",
            hint="Give the zone as the signer wrote it.",
            path=str(path),
        )
    moment = now or datetime.now(UTC)
    return ZoneDeadline(
        origin=zone.origin.to_text() if zone.origin else "?",
        signatures=count,
        earliest=datetime.fromtimestamp(best[0], UTC),
        owner=best[1],
        covered=best[2],
        key_tag=best[3],
        now=moment,
        target=target,
    )
