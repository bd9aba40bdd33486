"""The layers hold by construction: this test reads every module's imports.

- nothing under appliance/ but appliance/tui imports textual;
- only the adapter modules import pyscard (`smartcard`) or `pkcs11`;
- the domain packages never import the engine, the CLI or the TUI.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Driver libraries and the only modules allowed to import them.
ADAPTERS: dict[str, set[str]] = {
    "smartcard": {"appliance/cards/pcsc.py"},
    "pkcs11": {"appliance/hsm/module.py", "appliance/hsm/pkcs11_adapter.py"},
}
UI_ONLY = {"textual": "appliance/tui/", "rich": "appliance/tui/"}
DOMAIN = ("dnssec", "sharing", "analysis", "outputs", "cards", "hsm")
UPPER = ("appliance.tui", "appliance.cli", "appliance.ceremony")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def violations(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted((root / "appliance").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top in UI_ONLY and not rel.startswith(UI_ONLY[top]):
                found.append(f"{rel} imports {name}: only appliance/tui may")
            if top in ADAPTERS and rel not in ADAPTERS[top]:
                found.append(f"{rel} imports {name}: only {sorted(ADAPTERS[top])} may")
            parts = rel.split("/")
            if len(parts) > 2 and parts[1] in DOMAIN and name.startswith(UPPER):
                found.append(f"{rel} imports {name}: the domain must not depend on it")
    return found


def test_tree_respects_the_layers() -> None:
    assert violations(ROOT) == []


def test_check_catches_a_planted_violation(tmp_path: Path) -> None:
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "appliance", copy / "appliance")
    planted = copy / "appliance" / "dnssec" / "planted.py"
    planted.parent.mkdir(exist_ok=True)
    planted.write_text("import textual\nfrom pkcs11 import lib\nimport appliance.tui.app\n")
    found = violations(copy)
    assert "appliance/dnssec/planted.py imports textual: only appliance/tui may" in found
    assert any(v.startswith("appliance/dnssec/planted.py imports pkcs11") for v in found)
    assert any("appliance.tui.app: the domain" in v for v in found)


def test_domain_imports_pull_in_no_ui_or_driver() -> None:
    """At run time too: importing the domain and the engine loads no Textual."""
    present = [
        f"appliance.{p}"
        for p in ("config", "errors", "doctor", "signing", *DOMAIN, "ceremony")
        if (ROOT / "appliance" / p).exists() or (ROOT / "appliance" / f"{p}.py").exists()
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {present!r}: importlib.import_module(m)\n"
        "bad = [m for m in ('textual',) if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
