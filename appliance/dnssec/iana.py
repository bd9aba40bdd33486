"""IANA KSR/SKR XML (the root zone's format, schema ksr.rnc), parsed strictly, written back.

Parsing goes through defusedxml (no DTD, no entities: no XML bombs) with configurable size,
depth and element-count limits checked while parsing. Unknown or missing elements and
attributes are errors naming the element path, e.g. `KSR/Request/RequestBundle[3]/Key[2]`.
"""

from __future__ import annotations

import base64
import binascii
import io
import xml.etree.ElementTree as ET  # noqa: S405 - only to build trees and for types
from collections.abc import Callable
from datetime import datetime, timedelta
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as DET
import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
from defusedxml import DefusedXmlException
from dns.rdtypes.ANY.RRSIG import RRSIG

from appliance.dnssec import times
from appliance.dnssec.errors import DnssecInputError, InputLimitError
from appliance.dnssec.limits import InputLimits
from appliance.dnssec.model import (
    AlgorithmPolicy,
    Bundle,
    Document,
    Key,
    KeyPolicy,
    Kind,
    Signature,
    canonical_domain,
)

_POLICY_FIELDS = (
    ("PublishSafety", "publish_safety"),
    ("RetireSafety", "retire_safety"),
    ("MaxSignatureValidity", "max_signature_validity"),
    ("MinSignatureValidity", "min_signature_validity"),
    ("MaxValidityOverlap", "max_validity_overlap"),
    ("MinValidityOverlap", "min_validity_overlap"),
)
_KEY_CHILDREN = ("TTL", "Flags", "Protocol", "Algorithm", "PublicKey")
_SIG_CHILDREN = (
    "TTL",
    "TypeCovered",
    "Algorithm",
    "Labels",
    "OriginalTTL",
    "SignatureExpiration",
    "SignatureInception",
    "KeyTag",
    "SignersName",
    "SignatureData",
)


def looks_like_iana(head: bytes) -> bool:
    text = head.lstrip()
    return text.startswith(b"<?xml") or text.startswith(b"<KSR")


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> DnssecInputError:
        return DnssecInputError(self.source, f"element {where}", problem)

    def children(
        self, el: ET.Element, where: str, allowed: dict[str, tuple[int, int | None]]
    ) -> dict[str, list[tuple[ET.Element, str]]]:
        """Children grouped by tag, with (min, max) counts enforced and paths computed."""
        found: dict[str, list[tuple[ET.Element, str]]] = {tag: [] for tag in allowed}
        for child in el:
            if child.tag not in allowed:
                raise self.fail(f"{where}/{child.tag}", f"unexpected element in {el.tag}")
            group = found[child.tag]
            group.append((child, f"{where}/{child.tag}[{len(group) + 1}]"))
        for tag, (low, high) in allowed.items():
            n = len(found[tag])
            if n < low:
                raise self.fail(f"{where}/{tag}", f"missing (needed in {el.tag})")
            if high is not None and n > high:
                raise self.fail(f"{where}/{tag}", f"appears {n} times (at most {high})")
            if high == 1:
                found[tag] = [(e, p.rsplit("[", 1)[0]) for e, p in found[tag]]
        if (el.text or "").strip():
            raise self.fail(where, "unexpected text")
        for child in el:
            if (child.tail or "").strip():
                raise self.fail(where, "unexpected text between elements")
        return found

    def attrs(self, el: ET.Element, where: str, required: set[str], optional: set[str]) -> None:
        for name in el.attrib:
            if name not in required | optional:
                raise self.fail(where, f"unexpected attribute {name!r}")
        for name in required:
            if name not in el.attrib:
                raise self.fail(where, f"attribute {name!r} missing")

    def text(self, pair: tuple[ET.Element, str]) -> str:
        el, where = pair
        if len(el):
            raise self.fail(where, "must hold text, not elements")
        return (el.text or "").strip()

    def integer(self, pair: tuple[ET.Element, str], low: int = 0, high: int | None = None) -> int:
        return self._int(self.text(pair), pair[1], low, high)

    def _int(self, text: str, where: str, low: int = 0, high: int | None = None) -> int:
        if not text.isdigit():
            raise self.fail(where, f"{text!r} is not a non-negative integer")
        value = int(text)
        if value < low or (high is not None and value > high):
            raise self.fail(where, f"{value} is out of range {low}..{high}")
        return value

    def when(self, pair: tuple[ET.Element, str]) -> datetime:
        value = self.text(pair)
        try:
            return times.parse_datetime(value)
        except ValueError:
            raise self.fail(pair[1], f"{value!r} is not an xsd:dateTime") from None

    def duration(self, pair: tuple[ET.Element, str]) -> timedelta:
        value = self.text(pair)
        try:
            return times.parse_duration(value)
        except ValueError:
            raise self.fail(pair[1], f"{value!r} is not an xsd:duration") from None

    def b64(self, pair: tuple[ET.Element, str]) -> bytes:
        value = "".join(self.text(pair).split())
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(pair[1], "not valid base64") from None


def _load_tree(data: bytes, source: str, limits: InputLimits) -> ET.Element:
    if len(data) > limits.max_bytes:
        raise InputLimitError(
            source,
            "",
            f"{len(data)} bytes is more than the limit of {limits.max_bytes}",
            hint="Check the file; if it is genuine, raise the max_bytes limit.",
        )
    depth = 0
    count = 0
    root: ET.Element | None = None
    path: list[str] = []
    try:
        for event, el in DET.iterparse(
            io.BytesIO(data),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        ):
            if event == "start":
                depth += 1
                count += 1
                path.append(el.tag)
                if root is None:
                    root = el
                if depth > limits.max_depth:
                    raise InputLimitError(
                        source,
                        "element " + "/".join(path),
                        f"nesting deeper than {limits.max_depth} levels",
                    )
                if count > limits.max_items:
                    raise InputLimitError(
                        source,
                        "element " + "/".join(path),
                        f"more than {limits.max_items} elements",
                    )
            else:
                depth -= 1
                path.pop()
    except DefusedXmlException as exc:
        raise DnssecInputError(
            source,
            "",
            f"forbidden XML construct ({type(exc).__name__}): DTDs and entities are refused",
        ) from None
    except ET.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        detail = str(exc).split(":")[0]
        raise DnssecInputError(
            source,
            f"line {line}, column {column}",
            f"XML is not well formed ({detail}); a truncated file ends like this",
        ) from None
    if root is None:
        raise DnssecInputError(source, "", "empty XML document")
    return root


def parse(data: bytes, source: str, limits: InputLimits | None = None) -> Document:
    limits = limits or InputLimits()
    root = _load_tree(data, source, limits)
    r = _Reader(source)
    if root.tag != "KSR":
        raise r.fail(root.tag, "the root element must be KSR")
    r.attrs(root, "KSR", {"id", "serial", "domain"}, set())
    top = r.children(root, "KSR", {"Request": (0, 1), "Response": (0, 1)})
    if bool(top["Request"]) == bool(top["Response"]):
        raise r.fail("KSR", "needs exactly one of Request or Response")
    kind: Kind = "request" if top["Request"] else "response"
    name = "Request" if kind == "request" else "Response"
    body, body_path = top[name][0]
    r.attrs(body, body_path, set(), {"timestamp"})
    timestamp = None
    if "timestamp" in body.attrib:
        timestamp = r.when((_text_el(body.attrib["timestamp"]), body_path + "@timestamp"))
    try:
        domain = canonical_domain(root.attrib["domain"])
    except Exception:
        raise r.fail("KSR@domain", f"{root.attrib['domain']!r} is not a domain name") from None
    serial = r._int(root.attrib["serial"], "KSR@serial")
    policy_tag = f"{name}Policy"
    bundle_tag = f"{name}Bundle"
    parts = r.children(body, body_path, {policy_tag: (1, 1), bundle_tag: (1, None)})
    pol_el, pol_path = parts[policy_tag][0]
    if kind == "request":
        pol = r.children(pol_el, pol_path, {"ZSK": (1, 1)})
        zsk_policy, ksk_policy = _key_policy(r, pol["ZSK"][0]), None
    else:
        pol = r.children(pol_el, pol_path, {"KSK": (1, 1), "ZSK": (1, 1)})
        ksk_policy = _key_policy(r, pol["KSK"][0])
        zsk_policy = _key_policy(r, pol["ZSK"][0])
    if len(parts[bundle_tag]) > limits.max_bundles:
        raise InputLimitError(source, f"element {body_path}", "too many bundles")
    bundles = tuple(_bundle(r, pair, kind, domain) for pair in parts[bundle_tag])
    return Document(
        format="iana",
        kind=kind,
        domain=domain,
        bundles=bundles,
        id=root.attrib["id"],
        serial=serial,
        timestamp=timestamp,
        zsk_policy=zsk_policy,
        ksk_policy=ksk_policy,
        source=source,
    )


def _text_el(text: str) -> ET.Element:
    el = ET.Element("attr")
    el.text = text
    return el


def _key_policy(r: _Reader, pair: tuple[ET.Element, str]) -> KeyPolicy:
    el, where = pair
    allowed: dict[str, tuple[int, int | None]] = {tag: (1, 1) for tag, _ in _POLICY_FIELDS}
    allowed["SignatureAlgorithm"] = (1, None)
    parts = r.children(el, where, allowed)
    values = {attr: r.duration(parts[tag][0]) for tag, attr in _POLICY_FIELDS}
    algs: list[AlgorithmPolicy] = []
    for alg_el, alg_path in parts["SignatureAlgorithm"]:
        r.attrs(alg_el, alg_path, {"algorithm"}, set())
        algorithm = r._int(alg_el.attrib["algorithm"], alg_path + "@algorithm", 0, 255)
        inner = r.children(alg_el, alg_path, {"RSA": (0, 1), "ECDSA": (0, 1)})
        if bool(inner["RSA"]) == bool(inner["ECDSA"]):
            raise r.fail(alg_path, "needs exactly one of RSA or ECDSA")
        if inner["RSA"]:
            rsa, rsa_path = inner["RSA"][0]
            r.attrs(rsa, rsa_path, {"size", "exponent"}, set())
            r.children(rsa, rsa_path, {})
            algs.append(
                AlgorithmPolicy(
                    algorithm,
                    r._int(rsa.attrib["size"], rsa_path + "@size"),
                    r._int(rsa.attrib["exponent"], rsa_path + "@exponent"),
                )
            )
        else:
            ec, ec_path = inner["ECDSA"][0]
            r.attrs(ec, ec_path, {"size"}, set())
            r.children(ec, ec_path, {})
            algs.append(AlgorithmPolicy(algorithm, r._int(ec.attrib["size"], ec_path + "@size")))
    return KeyPolicy(algorithms=tuple(algs), **values)


def _bundle(r: _Reader, pair: tuple[ET.Element, str], kind: Kind, domain: str) -> Bundle:
    el, where = pair
    r.attrs(el, where, {"id"}, set())
    allowed: dict[str, tuple[int, int | None]] = {
        "Inception": (1, 1),
        "Expiration": (1, 1),
        "Key": (1, None),
        "Signature": (1, None),
    }
    if kind == "request":
        allowed["Signer"] = (0, None)
    parts = r.children(el, where, allowed)
    keys = tuple(_key(r, p, domain) for p in parts["Key"])
    sigs = tuple(_signature(r, p, domain) for p in parts["Signature"])
    signers: list[str] = []
    for signer, signer_path in parts.get("Signer", []):
        r.attrs(signer, signer_path, {"keyIdentifier"}, set())
        r.children(signer, signer_path, {})
        signers.append(signer.attrib["keyIdentifier"])
    return Bundle(
        id=el.attrib["id"],
        inception=r.when(parts["Inception"][0]),
        expiration=r.when(parts["Expiration"][0]),
        keys=keys,
        signatures=sigs,
        signers=tuple(signers),
        where=where,
    )


def _key(r: _Reader, pair: tuple[ET.Element, str], domain: str) -> Key:
    el, where = pair
    r.attrs(el, where, {"keyIdentifier", "keyTag"}, set())
    parts = r.children(el, where, {tag: (1, 1) for tag in _KEY_CHILDREN})
    return Key(
        owner=domain,
        ttl=r.integer(parts["TTL"][0], 0, 2**31 - 1),
        flags=r.integer(parts["Flags"][0], 0, 65535),
        protocol=r.integer(parts["Protocol"][0], 3, 3),
        algorithm=r.integer(parts["Algorithm"][0], 0, 255),
        public_key=r.b64(parts["PublicKey"][0]),
        key_tag=r._int(el.attrib["keyTag"], where + "@keyTag", 0, 65535),
        key_identifier=el.attrib["keyIdentifier"],
        where=where,
    )


def _signature(r: _Reader, pair: tuple[ET.Element, str], domain: str) -> Signature:
    el, where = pair
    r.attrs(el, where, {"keyIdentifier"}, set())
    p = r.children(el, where, {tag: (1, 1) for tag in _SIG_CHILDREN})
    covered_text = r.text(p["TypeCovered"][0])
    try:
        covered = dns.rdatatype.from_text(covered_text)
        signer = dns.name.from_text(r.text(p["SignersName"][0]))
    except Exception:
        raise r.fail(where, "TypeCovered or SignersName is not valid") from None
    rrsig = RRSIG(  # type: ignore[no-untyped-call]
        dns.rdataclass.IN,
        dns.rdatatype.RRSIG,
        covered,
        r.integer(p["Algorithm"][0], 0, 255),
        r.integer(p["Labels"][0], 0, 255),
        r.integer(p["OriginalTTL"][0], 0, 2**32 - 1),
        times.epoch(r.when(p["SignatureExpiration"][0])),
        times.epoch(r.when(p["SignatureInception"][0])),
        r.integer(p["KeyTag"][0], 0, 65535),
        signer,
        r.b64(p["SignatureData"][0]),
    )
    return Signature(
        domain, r.integer(p["TTL"][0], 0, 2**31 - 1), rrsig, el.attrib["keyIdentifier"], where=where
    )


# --- writing ---------------------------------------------------------------------------


def _policy_xml(tag: str, policy: KeyPolicy) -> list[str]:
    out = [f"<{tag}>"]
    for xml_tag, attr in _POLICY_FIELDS:
        out.append(f"<{xml_tag}>{times.format_duration(getattr(policy, attr))}</{xml_tag}>")
    for alg in policy.algorithms:
        out.append(f'<SignatureAlgorithm algorithm="{alg.algorithm}">')
        if alg.exponent is not None:
            out.append(f'<RSA size="{alg.size}" exponent="{alg.exponent}"/>')
        else:
            out.append(f'<ECDSA size="{alg.size}"/>')
        out.append("</SignatureAlgorithm>")
    out.append(f"</{tag}>")
    return out


def key_xml(key: Key) -> list[str]:
    return [
        f'<Key keyIdentifier={quoteattr(key.key_identifier)} keyTag="{key.key_tag}">',
        f"<TTL>{key.ttl}</TTL>",
        f"<Flags>{key.flags}</Flags>",
        f"<Protocol>{key.protocol}</Protocol>",
        f"<Algorithm>{key.algorithm}</Algorithm>",
        f"<PublicKey>{base64.b64encode(key.public_key).decode()}</PublicKey>",
        "</Key>",
    ]


def signature_xml(sig: Signature) -> list[str]:
    rr = sig.rrsig
    return [
        f"<Signature keyIdentifier={quoteattr(sig.key_identifier)}>",
        f"<TTL>{sig.ttl}</TTL>",
        f"<TypeCovered>{dns.rdatatype.to_text(rr.type_covered)}</TypeCovered>",
        f"<Algorithm>{int(rr.algorithm)}</Algorithm>",
        f"<Labels>{rr.labels}</Labels>",
        f"<OriginalTTL>{rr.original_ttl}</OriginalTTL>",
        f"<SignatureExpiration>{times.format_datetime(times.from_epoch(rr.expiration))}"
        "</SignatureExpiration>",
        f"<SignatureInception>{times.format_datetime(times.from_epoch(rr.inception))}"
        "</SignatureInception>",
        f"<KeyTag>{rr.key_tag}</KeyTag>",
        f"<SignersName>{escape(rr.signer.to_text())}</SignersName>",
        f"<SignatureData>{base64.b64encode(rr.signature).decode()}</SignatureData>",
        "</Signature>",
    ]


def write_response(doc: Document, emit: Callable[[str], None] | None = None) -> str:
    """The SKR XML of a response document (ResponsePolicy needs both key policies)."""
    if doc.kind != "response" or doc.ksk_policy is None or doc.zsk_policy is None:
        raise ValueError("write_response needs a response with KSK and ZSK policies")
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    out.append(f'<KSR id={quoteattr(doc.id)} domain={quoteattr(doc.domain)} serial="{doc.serial}">')
    stamp = f' timestamp="{times.format_datetime(doc.timestamp)}"' if doc.timestamp else ""
    out.append(f"<Response{stamp}>")
    out.append("<ResponsePolicy>")
    out += _policy_xml("KSK", doc.ksk_policy)
    out += _policy_xml("ZSK", doc.zsk_policy)
    out.append("</ResponsePolicy>")
    for bundle in doc.bundles:
        out.append(f"<ResponseBundle id={quoteattr(bundle.id)}>")
        out.append(f"<Inception>{times.format_datetime(bundle.inception)}</Inception>")
        out.append(f"<Expiration>{times.format_datetime(bundle.expiration)}</Expiration>")
        for key in bundle.keys:
            out += key_xml(key)
        for sig in bundle.signatures:
            out += signature_xml(sig)
        out.append("</ResponseBundle>")
    out.append("</Response>")
    out.append("</KSR>")
    return "\n".join(out) + "\n"


def key_tag(key: Key) -> int:
    return int(dns.dnssec.key_id(key.dnskey()))
