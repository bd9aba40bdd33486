"""`appliance doctor`: the Ceremony Administrator's first check of the laptop.

One line per check, OK / WARN / FAIL, and for anything not OK the fix. A FAIL means a
ceremony must not start; a WARN is worth reading aloud.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from appliance import airgap, buildinfo
from appliance.config import Config, load_config
from appliance.errors import ApplianceError

Status = Literal["OK", "WARN", "FAIL"]

#: Distributions whose versions the report shows (import problems are FAILs).
PACKAGES = (
    "textual",
    "pyscard",
    "cryptography",
    "qrcode",
    "dnspython",
    "python-pkcs11",
    "shamir-mnemonic",
    "defusedxml",
    "fpdf2",
)
MIN_FREE_MEDIA = 100 * 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""


def check_python() -> CheckResult:
    v = sys.version_info
    text = f"Python {v.major}.{v.minor}.{v.micro}"
    if v < (3, 11):
        return CheckResult("python", "FAIL", text, "Use Python 3.11 or newer.")
    return CheckResult("python", "OK", text)


def check_packages() -> CheckResult:
    found: list[str] = []
    missing: list[str] = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        return CheckResult(
            "packages", "FAIL", "missing: " + ", ".join(missing), "Run `make setup`."
        )
    return CheckResult("packages", "OK", ", ".join(found))


def check_pcscd(config: Config) -> CheckResult:
    from appliance.cards.pcsc import survey

    try:
        states = survey()
    except ApplianceError as exc:
        return CheckResult("pcscd", "FAIL", exc.message, exc.hint)
    allowed = config.cards.readers
    if allowed:
        states = [s for s in states if any(s.name.startswith(p) for p in allowed)]
    if not states:
        return CheckResult(
            "pcscd",
            "WARN",
            "pcscd answers but no card reader is present",
            "Plug in the card reader (the demo starts virtual readers: `make demo`).",
        )
    parts = [f"{s.name}: {'card ' + s.atr[:16] + '...' if s.atr else 'empty'}" for s in states]
    return CheckResult("pcscd", "OK", f"{len(states)} reader(s): " + "; ".join(parts))


def check_hsm(config: Config) -> CheckResult:
    from appliance.hsm.module import survey

    try:
        tokens = survey(config.hsm.module)
    except ApplianceError as exc:
        return CheckResult("pkcs11", "FAIL", exc.message, exc.hint)
    labels = [t.label for t in tokens if t.initialized]
    detail = f"{config.hsm.module.name}: {len(tokens)} slot(s); tokens: " + (
        ", ".join(labels) or "none initialised"
    )
    if config.hsm.token not in labels:
        return CheckResult(
            "pkcs11",
            "WARN",
            detail + f"; token '{config.hsm.token}' not found",
            "Initialise the token in the hsm-init ceremony, or correct [hsm] token.",
        )
    return CheckResult("pkcs11", "OK", detail)


def check_printer(config: Config) -> CheckResult:
    queue = config.printer.queue
    if not queue:
        return CheckResult(
            "printer",
            "WARN",
            "no printer configured: PDFs will be written to the media folder",
            "Set [printer] queue to the CUPS queue of the attached printer to print on paper.",
        )
    lpstat = shutil.which("lpstat")
    if lpstat is None:
        return CheckResult("printer", "FAIL", "lpstat not found", "Install cups-client.")
    proc = subprocess.run(  # noqa: S603 - fixed program, queue name as one argument
        [lpstat, "-p", queue], capture_output=True, text=True, timeout=10, check=False
    )
    if proc.returncode != 0:
        reason = (proc.stderr or proc.stdout).strip().splitlines()
        return CheckResult(
            "printer",
            "FAIL",
            f"queue '{queue}' not available ({reason[0] if reason else 'lpstat failed'})",
            "Start cupsd and check the queue with `lpstat -p`.",
        )
    return CheckResult("printer", "OK", proc.stdout.strip().splitlines()[0])


def check_airgap(config: Config) -> CheckResult:
    report = airgap.check()
    if report.ok:
        return CheckResult("airgap", "OK", "only 'lo'; no radios; no routes")
    detail = "; ".join(report.problems)
    if not config.airgap.required:
        return CheckResult(
            "airgap",
            "WARN",
            "DEVELOPMENT: air gap not enforced; " + detail,
            "Never run a real ceremony like this: boot the appliance image.",
        )
    return CheckResult(
        "airgap", "FAIL", detail, "Remove or disable all network hardware before a ceremony."
    )


def check_media(config: Config) -> CheckResult:
    media = config.paths.media
    if not media.is_dir():
        return CheckResult(
            "media",
            "FAIL",
            f"media folder {media} does not exist",
            "Insert and mount the removable media there, or correct [paths] media.",
        )
    if not os.access(media, os.W_OK):
        return CheckResult(
            "media", "FAIL", f"media folder {media} is not writable", "Mount it read-write."
        )
    free = shutil.disk_usage(media).free
    text = f"{media}: {free // (1024 * 1024)} MiB free"
    if free < MIN_FREE_MEDIA:
        return CheckResult("media", "FAIL", text, "Use media with at least 100 MiB free.")
    return CheckResult("media", "OK", text)


def check_clock() -> CheckResult:
    now = datetime.now(UTC)
    built = buildinfo.build_time()
    text = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    if now < built:
        return CheckResult(
            "clock",
            "FAIL",
            f"{text} is before this appliance was built ({built:%Y-%m-%d})",
            "Set the hardware clock to UTC from a trusted watch, then reboot.",
        )
    if time.localtime().tm_gmtoff != 0:
        return CheckResult(
            "clock", "WARN", text + f"; local time zone is {time.tzname[0]}", "Run with TZ=UTC."
        )
    return CheckResult("clock", "OK", text)


def run_checks(config: Config) -> list[CheckResult]:
    checks: list[Callable[[], CheckResult]] = [
        check_python,
        check_packages,
        lambda: check_pcscd(config),
        lambda: check_hsm(config),
        lambda: check_printer(config),
        lambda: check_airgap(config),
        lambda: check_media(config),
        check_clock,
    ]
    return [c() for c in checks]


def render(results: list[CheckResult]) -> str:
    width = max(len(r.name) for r in results)
    lines: list[str] = []
    for r in results:
        lines.append(f"{r.status:<4}  {r.name:<{width}}  {r.detail}")
        if r.fix and r.status != "OK":
            lines.append(f"{'':<4}  {'':<{width}}  -> {r.fix}")
    return "\n".join(lines)


def report(config: Config, as_json: bool) -> int:
    """Print the check; exit code 1 when anything FAILs."""
    from appliance import demo

    demo.activate(config)
    results = run_checks(config)
    if as_json:
        print(json.dumps({"config": str(config.source), "checks": [asdict(r) for r in results]}))
    else:
        print(f"Appliance check ({config.source})")
        print(render(results))
    return 1 if any(r.status == "FAIL" for r in results) else 0


def command(args: argparse.Namespace) -> int:
    return report(load_config(args.config), args.json)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check the laptop before a ceremony")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(handler=command)
