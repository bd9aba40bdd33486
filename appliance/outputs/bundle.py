"""The signed bundle: what leaves the ceremony room, and the proof that it is unchanged.

A manifest names the ceremony (id, script SHA-256, journal head, appliance version, image
hash) and every artifact (file name, media type, size, SHA-256). It is encoded as canonical
JSON and signed by the ceremony key (appliance.signing: ECDSA P-256, raw r||s); the signed
manifest is one more payload that travels on media and in QR codes. Anyone holding the
pinned ceremony public key checks the signature, then each artifact's size and hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance import atomic, buildinfo, canonical, media, signing
from appliance.outputs.errors import BundleError
from appliance.outputs.frames import set_id_for

FORMAT = "ceremony-bundle/1"
MANIFEST_NAME = "manifest.json"
#: The printed form of the bundle, saved beside it (not an artifact: it carries the same data).
SHEET_NAME = "sheet.pdf"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MEDIA_TYPE = re.compile(r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name) or name == MANIFEST_NAME:
        raise BundleError(
            f"{what} {name!r} is not a safe file name",
            hint="Use letters, digits, '.', '_' and '-' only, starting with a letter or digit.",
        )
    return name


@dataclass(frozen=True)
class Artifact:
    """One output file. `label` is how people call it on paper ("SKR example.com")."""

    name: str
    data: bytes
    media_type: str = "application/octet-stream"
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ArtifactEntry:
    name: str
    label: str
    media_type: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
        }

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Manifest:
    ceremony_id: str
    created: str
    script_sha256: str
    journal_head: str
    appliance_version: str
    image_sha256: str | None
    artifacts: tuple[ArtifactEntry, ...]

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "ceremony_id": self.ceremony_id,
            "created": self.created,
            "script_sha256": self.script_sha256,
            "journal_head": self.journal_head,
            "appliance_version": self.appliance_version,
            "image_sha256": self.image_sha256,
            "artifacts": [a.as_dict() for a in self.artifacts],
        }

    def encode(self) -> bytes:
        """The exact bytes the ceremony key signs."""
        return canonical.dumps(self.body())

    @property
    def set_id(self) -> str:
        """The QR set id: derived from the manifest, so a frame cannot claim another bundle."""
        return set_id_for(self.encode())

    def entry(self, name: str) -> ArtifactEntry:
        for a in self.artifacts:
            if a.name == name:
                return a
        raise KeyError(name)


@dataclass(frozen=True)
class SignedManifest:
    manifest: Manifest
    public_key_der: bytes
    signature: bytes

    @property
    def key_fingerprint(self) -> str:
        return signing.fingerprint(self.public_key_der)

    def encode(self) -> bytes:
        return canonical.dumps(
            {
                "manifest": self.manifest.body(),
                "signature": {
                    "algorithm": signing.ALGORITHM,
                    "public_key": base64.b64encode(self.public_key_der).decode(),
                    "value": self.signature.hex(),
                },
            }
        )


@dataclass(frozen=True)
class Bundle:
    signed: SignedManifest
    artifacts: tuple[Artifact, ...]

    @property
    def manifest(self) -> Manifest:
        return self.signed.manifest

    def payloads(self) -> list[tuple[int, str, bytes]]:
        """(payload number, label, bytes): 0 is the signed manifest, then the artifacts."""
        out = [(0, "Manifest", self.signed.encode())]
        out += [(i, a.title, a.data) for i, a in enumerate(self.artifacts, start=1)]
        return out


def _created(value: datetime | str | None) -> str:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise BundleError("the bundle time needs a time zone")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def build_bundle(
    *,
    ceremony_id: str,
    script_sha256: str,
    journal_head: str,
    artifacts: Sequence[Artifact],
    signer: signing.CeremonySigner,
    created: datetime | str | None = None,
    appliance_version: str | None = None,
    image_sha256: str | None = None,
) -> Bundle:
    """Describe and sign `artifacts`. Same inputs, same bytes (canonical JSON)."""
    _check_name(ceremony_id, "ceremony id")
    for value, what in ((script_sha256, "script SHA-256"), (journal_head, "journal head")):
        if not _HEX64.match(value):
            raise BundleError(f"the {what} must be 64 lowercase hex digits, got {value!r}")
    seen: set[str] = set()
    entries = []
    for a in artifacts:
        _check_name(a.name, "artifact name")
        if a.name in seen:
            raise BundleError(f"two artifacts are named {a.name!r}")
        if not _MEDIA_TYPE.match(a.media_type):
            raise BundleError(f"artifact {a.name}: media type {a.media_type!r} is not valid")
        seen.add(a.name)
        entries.append(
            ArtifactEntry(
                a.name, a.label, a.media_type, len(a.data), hashlib.sha256(a.data).hexdigest()
            )
        )
    if image_sha256 is None:
        image_sha256 = buildinfo.image_hash()
    manifest = Manifest(
        ceremony_id=ceremony_id,
        created=_created(created),
        script_sha256=script_sha256,
        journal_head=journal_head,
        appliance_version=appliance_version or buildinfo.version(),
        image_sha256=image_sha256,
        artifacts=tuple(entries),
    )
    data = manifest.encode()
    signature = signer.sign(data)
    key = signer.public_key_der()
    signing.verify(key, data, signature)  # a signer that signs wrongly must not reach paper
    return Bundle(SignedManifest(manifest, key, signature), tuple(artifacts))


def write_bundle(bundle: Bundle, media_dir: Path) -> Path:
    """Write artifacts, then the signed manifest, into media_dir/<ceremony id>/.

    The manifest goes last: a folder with a manifest is complete."""
    folder = Path(media_dir) / bundle.manifest.ceremony_id
    atomic.remove_leftovers(folder)  # a reader refuses files the manifest does not list
    for a in bundle.artifacts:
        atomic.write_bytes(folder / a.name, a.data)
    atomic.write_bytes(folder / MANIFEST_NAME, bundle.signed.encode())
    return folder


def _field(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleError(f"{where}: field {key!r} is missing or not a {kind.__name__}")
    return value


def parse_signed_manifest(data: bytes, pinned_key_der: bytes) -> SignedManifest:
    """Parse and verify a signed manifest against the pinned ceremony key.

    Raises signing.SignatureInvalid for a bad signature or another key, BundleError for
    anything malformed."""
    import json

    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BundleError("the manifest is not JSON") from None
    if not isinstance(doc, dict) or canonical.dumps(doc) != data:
        raise BundleError("the manifest is not in canonical form")
    body = _field(doc, "manifest", dict, "manifest")
    sig = _field(doc, "signature", dict, "manifest")
    if _field(sig, "algorithm", str, "signature") != signing.ALGORITHM:
        raise BundleError(f"the manifest is signed with {sig.get('algorithm')!r}, not ours")
    try:
        key = canonical.b64_bytes(_field(sig, "public_key", str, "signature"))
        value = canonical.hex_bytes(_field(sig, "value", str, "signature"))
    except ValueError:
        raise BundleError("the manifest signature fields are not valid base64/hex") from None
    if key != pinned_key_der:
        raise signing.SignatureInvalid(
            "the manifest is signed by ceremony key "
            f"{signing.fingerprint(key)[:16]}, not by the pinned key "
            f"{signing.fingerprint(pinned_key_der)[:16]}",
            hint="Reject these outputs, or check that you pinned the right ceremony key.",
        )
    signing.verify(pinned_key_der, canonical.dumps(body), value)
    if body.get("format") != FORMAT:
        raise BundleError(f"manifest format {body.get('format')!r} is not {FORMAT}")
    entries = []
    for item in _field(body, "artifacts", list, "manifest"):
        if not isinstance(item, dict):
            raise BundleError("manifest: an artifact entry is not an object")
        entries.append(
            ArtifactEntry(
                name=_check_name(_field(item, "name", str, "artifact"), "artifact name"),
                label=_field(item, "label", str, "artifact"),
                media_type=_field(item, "media_type", str, "artifact"),
                size=_field(item, "size", int, "artifact"),
                sha256=_field(item, "sha256", str, "artifact"),
            )
        )
    image = body.get("image_sha256")
    manifest = Manifest(
        ceremony_id=_check_name(_field(body, "ceremony_id", str, "manifest"), "ceremony id"),
        created=_field(body, "created", str, "manifest"),
        script_sha256=_field(body, "script_sha256", str, "manifest"),
        journal_head=_field(body, "journal_head", str, "manifest"),
        appliance_version=_field(body, "appliance_version", str, "manifest"),
        image_sha256=image if isinstance(image, str) else None,
        artifacts=tuple(entries),
    )
    if manifest.encode() != canonical.dumps(body):
        raise BundleError("the manifest has fields this verifier does not know")
    return SignedManifest(manifest, key, value)


def check_artifact(entry: ArtifactEntry, data: bytes) -> str | None:
    """None if `data` is the artifact the manifest describes, else what differs."""
    if len(data) != entry.size:
        return f"{entry.title}: {len(data)} bytes, the manifest says {entry.size}"
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        return f"{entry.title}: SHA-256 {digest[:16]}... does not match the manifest"
    return None


#: Largest signed manifest read from the media (thousands of artifacts fit in 1 MiB).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def read_bundle_dir(folder: Path, pinned_key_der: bytes) -> Bundle:
    """Verify a bundle folder from the media: signature first, then the folder's contents
    (only the manifest, its artifacts and the printed sheet; no links), then every artifact.
    """
    folder = Path(folder)
    try:
        media.require_folder(folder)
        raw = media.read_file(folder / MANIFEST_NAME, MAX_MANIFEST_BYTES)
    except media.Refused as exc:
        raise BundleError(f"cannot read the bundle: {exc}", hint=exc.hint) from None
    signed = parse_signed_manifest(raw, pinned_key_der)
    expected = [MANIFEST_NAME, *(e.name for e in signed.manifest.artifacts)]
    try:
        media.check_folder(folder, expected, tolerate=lambda name: name == SHEET_NAME)
    except media.Refused as exc:
        raise BundleError(f"the bundle in {exc}", hint=exc.hint, problems=[exc.reason]) from None
    artifacts = []
    problems = []
    for entry in signed.manifest.artifacts:
        try:
            data = media.read_file(folder / entry.name, entry.size)
        except media.Refused as exc:
            what = "is larger than its signed size" if exc.kind == "too-large" else exc.reason
            problems.append(f"{entry.title}: file {entry.name} {what}")
            continue
        problem = check_artifact(entry, data)
        if problem:
            problems.append(problem)
        artifacts.append(Artifact(entry.name, data, entry.media_type, entry.label))
    if problems:
        raise BundleError(
            "the bundle in "
            + str(folder)
            + " does not match its signed manifest: "
            + "; ".join(problems),
            hint="Do not use these files; copy them again from the original media.",
            problems=problems,
        )
    return Bundle(signed, tuple(artifacts))
