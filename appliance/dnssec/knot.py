"""Knot DNS KSR/SKR text (`keymgr generate-ksr` / `sign-ksr`), parsed strictly, written back.

A file is a sequence of slots, each opened by `;; KeySigningRequest 1.0 <epoch> (<iso>) ====`
(or `SignedKeyResponse`) and holding zone-file records; the last line
`;; KeySigningRequest 1.0 generated at <iso> by Knot DNS <version>` closes it, so a file cut
at a slot boundary is still caught. Errors name the line.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime

import dns.dnssec
import dns.dnssectypes
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG

from appliance.dnssec import times
from appliance.dnssec.errors import DnssecInputError, InputLimitError
from appliance.dnssec.limits import InputLimits
from appliance.dnssec.model import Bundle, Document, Key, Kind, Record, Signature

_NAMES = {"request": "KeySigningRequest", "response": "SignedKeyResponse"}
_KINDS: dict[str, Kind] = {"KeySigningRequest": "request", "SignedKeyResponse": "response"}
_HEADER = re.compile(r"^;; (KeySigningRequest|SignedKeyResponse) 1\.0 (\d+) \(([^)]*)\) =+\s*$")
_TRAILER = re.compile(
    r"^;; (KeySigningRequest|SignedKeyResponse) 1\.0 generated at (\S+) by (.+?)\s*$"
)
_STATED_TAG = re.compile(r"\bid = (\d+)\s*$")


def looks_like_knot(head: bytes) -> bool:
    return head.lstrip().startswith((b";; KeySigningRequest", b";; SignedKeyResponse"))


@dataclass
class _Raw:
    line: int
    text: str
    comment: str


def parse(data: bytes, source: str, limits: InputLimits | None = None) -> Document:
    limits = limits or InputLimits()
    if len(data) > limits.max_bytes:
        raise InputLimitError(
            source,
            "",
            f"{len(data)} bytes is more than the limit of {limits.max_bytes}",
            hint="Check the file; if it is genuine, raise the max_bytes limit.",
        )
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DnssecInputError(source, f"line {line}", "a byte that is not ASCII") from None

    kind: Kind | None = None
    slots: list[tuple[int, int, list[_Raw]]] = []  # (epoch, line, records)
    closed_at = 0
    pending: list[str] = []
    pending_line = 0
    depth = 0
    items = 0

    def fail(at: int, problem: str) -> DnssecInputError:
        return DnssecInputError(source, f"line {at}", problem)

    for number, raw in enumerate(text.split("\n"), start=1):
        row: str = raw.rstrip("\r")
        if closed_at:
            if row.strip():
                raise fail(number, f"text after the closing row (row {closed_at})")
            continue
        if depth == 0 and row.startswith(";"):
            m = _HEADER.match(row)
            t = _TRAILER.match(row)
            if not m and not t:
                raise fail(number, f"unexpected comment row {row[:60]!r}")
            found = m or t
            if found is None:
                raise fail(number, "unexpected comment row")
            this = _KINDS[found.group(1)]
            if kind is None:
                kind = this
            elif this != kind:
                raise fail(number, f"a {_NAMES[this]} row inside a {_NAMES[kind]} file")
            if t:
                if not slots:
                    raise fail(number, "closing row before any slot")
                closed_at = number
                continue
            if m is None:
                raise fail(number, "bad slot header")
            epoch = int(m.group(2))
            try:
                stated_time = times.parse_datetime(m.group(3))
            except ValueError:
                raise fail(number, f"slot time {m.group(3)!r} is not an ISO time") from None
            if times.epoch(stated_time) != epoch:
                raise fail(number, f"slot time {m.group(3)} does not match epoch {epoch}")
            if slots and not slots[-1][2]:
                raise fail(slots[-1][1], "slot without any record")
            slots.append((epoch, number, []))
            if len(slots) > limits.max_bundles:
                raise InputLimitError(source, f"row {number}", "too many slots")
            continue
        body, _, comment = row.partition(";")
        if depth == 0:
            if not body.strip():
                if comment and not row.lstrip().startswith(";"):
                    raise fail(number, "comment without a record")
                continue
            if not slots:
                raise fail(number, "a record before the first slot header")
            if body[:1].isspace():
                raise fail(number, "a record row must start with its owner name")
            pending, pending_line = [], number
        pending.append(body)
        depth += body.count("(") - body.count(")")
        if depth < 0:
            raise fail(number, "')' without '('")
        if depth == 0:
            items += 1
            if items > limits.max_items:
                raise InputLimitError(source, f"row {number}", "too many records")
            slots[-1][2].append(_Raw(pending_line, " ".join(pending), comment.strip()))
    if depth:
        raise fail(pending_line, "record not closed: ')' missing (the file is cut short)")
    if kind is None:
        raise DnssecInputError(source, "line 1", "not a Knot KSR/SKR: no slot header")
    if not closed_at:
        raise DnssecInputError(
            source,
            f"line {len(text.splitlines())}",
            f"the closing ';; {_NAMES[kind]} 1.0 generated at ...' line is missing: the file "
            "is truncated",
        )
    if not slots[-1][2]:
        raise fail(slots[-1][1], "slot without any record")

    bundles: list[Bundle] = []
    domain = ""
    for index, (epoch, header_line, raws) in enumerate(slots):
        keys: list[Key] = []
        sigs: list[Signature] = []
        others: list[Record] = []
        for rec in raws:
            where = f"line {rec.line}"
            owner, ttl, rdtype, rdata = _record(rec, source)
            domain = domain or owner
            if isinstance(rdata, DNSKEY):
                stated_tag = _STATED_TAG.search(rec.comment)
                tag = int(stated_tag.group(1)) if stated_tag else dns.dnssec.key_id(rdata)
                keys.append(
                    Key(
                        owner,
                        ttl,
                        int(rdata.flags),
                        rdata.protocol,
                        int(rdata.algorithm),
                        rdata.key,
                        tag,
                        key_identifier=str(tag),
                        where=where,
                    )
                )
            elif isinstance(rdata, RRSIG) and kind == "response":
                sigs.append(Signature(owner, ttl, rdata, str(rdata.key_tag), where=where))
            else:
                others.append(Record(owner, ttl, rdtype, rdata.to_text(), where=where))
        following = slots[index + 1][0] if index + 1 < len(slots) else epoch
        bundles.append(
            Bundle(
                id=str(epoch),
                inception=times.from_epoch(epoch),
                expiration=times.from_epoch(following),
                keys=tuple(keys),
                signatures=tuple(sigs),
                records=tuple(others),
                where=f"line {header_line}",
            )
        )
    return Document(
        format="knot",
        kind=kind,
        domain=domain,
        bundles=tuple(bundles),
        id="",
        timestamp=bundles[0].inception,
        source=source,
    )


def _record(rec: _Raw, source: str) -> tuple[str, int, str, dns.rdata.Rdata]:
    tokens = rec.text.replace("(", " ").replace(")", " ").split()
    where = f"line {rec.line}"
    if len(tokens) < 3:
        raise DnssecInputError(source, where, "incomplete record")
    owner_text, ttl_text = tokens[0], tokens[1]
    rest = tokens[2:]
    if not ttl_text.isdigit():
        raise DnssecInputError(source, where, f"TTL {ttl_text!r} is not a number")
    if rest and rest[0].upper() == "IN":
        rest = rest[1:]
    elif rest and rest[0].upper() in ("CH", "HS", "ANY", "NONE"):
        raise DnssecInputError(source, where, f"class {rest[0]} (only IN is allowed)")
    if not rest:
        raise DnssecInputError(source, where, "record type missing")
    try:
        owner = dns.name.from_text(owner_text)
        rdtype = dns.rdatatype.from_text(rest[0])
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, " ".join(rest[1:]), owner, relativize=False
        )
    except (dns.exception.DNSException, ValueError) as exc:
        raise DnssecInputError(source, where, f"bad record: {exc}") from None
    return owner.canonicalize().to_text(), int(ttl_text), dns.rdatatype.to_text(rdtype), rdata


def _wrapped(data: bytes) -> str:
    b64 = base64.b64encode(data).decode()
    return "\n".join("\t\t\t\t" + b64[i : i + 40] for i in range(0, len(b64), 40))


def _key_comment(key: DNSKEY) -> str:
    role = "KSK" if key.flags & 1 else "ZSK"
    alg = dns.dnssectypes.Algorithm.to_text(key.algorithm)
    return f"{role}, {alg}, id = {dns.dnssec.key_id(key)}"


def format_record(owner: str, ttl: int, rdata: dns.rdata.Rdata) -> str:
    """One record in Knot's multi-line style (what keymgr prints)."""
    head = f"{owner}\t{ttl} {dns.rdatatype.to_text(rdata.rdtype)}"
    if isinstance(rdata, DNSKEY):
        return (
            f"{head} {rdata.flags} {rdata.protocol} {int(rdata.algorithm)} (\n"
            f"{_wrapped(rdata.key)}\n\t\t\t\t) ; {_key_comment(rdata)}"
        )
    if isinstance(rdata, RRSIG):
        exp = _sigtime(rdata.expiration)
        inc = _sigtime(rdata.inception)
        return (
            f"{head} {dns.rdatatype.to_text(rdata.type_covered)} {int(rdata.algorithm)} "
            f"{rdata.labels} {rdata.original_ttl} {exp} (\n\t\t\t\t{inc} {rdata.key_tag} "
            f"{rdata.signer}\n{_wrapped(rdata.signature)}\n\t\t\t\t)"
        )
    return f"{head} {rdata.to_text()}"


def _sigtime(value: int) -> str:
    return times.from_epoch(value).strftime("%Y%m%d%H%M%S")


def slot_header(kind: Kind, when: datetime) -> str:
    iso = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f";; {_NAMES[kind]} 1.0 {times.epoch(when)} ({iso}) ========="


def trailer(kind: Kind, generated: datetime, by: str) -> str:
    return f";; {_NAMES[kind]} 1.0 generated at {generated.strftime('%Y-%m-%dT%H:%M:%SZ')} by {by}"
