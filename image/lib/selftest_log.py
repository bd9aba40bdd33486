"""Judge a self-test boot from its serial log (image/boot-test calls this).

The image prints raw facts as `SELFTEST key: value` lines and a `SELFTEST RESULT` marker. The
boot test does not take the marker on trust: it re-checks every fact it needs, so an image
whose self-test script were broken into printing PASS would still fail here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

_LINE = re.compile(r"SELFTEST (?P<key>[^:]+?)(?:: (?P<value>.*))?$")
#: Doctor checks whose status must not be FAIL (WARN: pcscd answered with no reader; the
#: PKCS#11 module loaded without the ceremony token).
MUST_ANSWER = ("python", "packages", "pcscd", "pkcs11")


def facts(log: str) -> dict[str, str]:
    """The SELFTEST lines of `log` as key -> value (the last one wins)."""
    found: dict[str, str] = {}
    for raw in log.splitlines():
        pos = raw.find("SELFTEST ")
        if pos < 0:
            continue
        line = raw[pos:].rstrip("\r")
        if line.startswith("SELFTEST RESULT "):
            found["RESULT"] = line.removeprefix("SELFTEST RESULT ").strip()
            continue
        m = _LINE.match(line)
        if m:
            found[m["key"].strip()] = (m["value"] or "").strip()
    return found


def judge(log: str) -> list[str]:
    """Reasons the boot failed; empty means it passed."""
    f = facts(log)
    if "begin" not in f:
        return ["the self-test never started (no 'SELFTEST begin' on the serial console)"]
    problems: list[str] = []
    if f.get("interfaces") != "lo":
        problems.append(f"network interfaces other than lo: {f.get('interfaces', '(none listed)')}")
    cmdline = f.get("cmdline", "").split()
    for param in ("nonetworking", "nopersistence"):
        if param not in cmdline:
            problems.append(f"kernel command line lacks {param}")
    try:
        airgap = json.loads(f.get("airgap", ""))
        if not airgap.get("ok") or airgap.get("interfaces") != ["lo"]:
            problems.append(f"air-gap check failed: {airgap.get('problems')}")
    except ValueError:
        problems.append("no air-gap report")
    try:
        doctor = json.loads(f.get("doctor", ""))
        status = {c["name"]: c for c in doctor["checks"]}
    except (ValueError, KeyError, TypeError):
        problems.append("no doctor report")
        status = {}
    for name in MUST_ANSWER:
        check = status.get(name)
        if check is None:
            problems.append(f"doctor did not run the {name} check")
        elif check["status"] == "FAIL":
            problems.append(f"{name}: {check['detail']}")
    if status and status.get("airgap", {}).get("status") != "OK":
        problems.append("doctor's air-gap check is not OK")
    if f.get("console-exit") not in ("0", "1") or f.get("console-lines", "0") == "0":
        problems.append(
            f"the console command did not run ({f.get('console-command')}: "
            f"exit {f.get('console-exit')})"
        )
    rendered = f.get("console-exit") == "0" and f.get("console-last", "").startswith("TUI RENDERED")
    if "tui --check" in f.get("console-command", "") and not rendered:
        problems.append(
            f"the TUI did not render ({f.get('console-command')}: exit "
            f"{f.get('console-exit')}, last line {f.get('console-last', '')!r})"
        )
    result = f.get("RESULT")
    if result is None:
        problems.append("no result marker (the self-test did not finish)")
    elif result != "PASS":
        problems.append(f"the image's own verdict: {result}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: selftest_log.py SERIAL_LOG", file=sys.stderr)
        return 2
    try:
        text = Path(argv[0]).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        print(f"selftest: cannot read the serial log: {exc}", file=sys.stderr)
        return 2
    problems = judge(text)
    f = facts(text)
    for key in ("interfaces", "check pcscd", "check pkcs11", "check airgap", "console-exit"):
        if key in f:
            print(f"selftest: {key}: {f[key]}")
    if problems:
        for p in problems:
            print(f"selftest: FAIL: {p}", file=sys.stderr)
        return 1
    print("selftest: PASS (only lo; pcscd answers; PKCS#11 module loads; console ran)")
    if "console-last" in f:
        print(f"selftest: console: {f['console-last']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
