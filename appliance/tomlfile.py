"""TOML documents that remember where each key was written.

tomllib parses but forgets line numbers; operators need "file, line" in every error about a
config or a ceremony script. This module parses with tomllib and indexes the source lines of
table headers and keys, so a path like ("acts", 2, "steps", 0, "action") maps to a line.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PathKey = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SYNTAX_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


class TomlSyntaxError(ValueError):
    """A TOML syntax error with its line (1-based) when tomllib reported one."""

    def __init__(self, path: str, line: int | None, detail: str) -> None:
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {detail}")
        self.path = path
        self.line = line
        self.detail = detail


@dataclass(frozen=True)
class TomlDocument:
    """Parsed data plus an index from key paths to source lines."""

    path: str
    data: dict[str, Any]
    lines: Mapping[PathKey, int] = field(default_factory=dict)

    def line(self, key: Iterable[str | int]) -> int | None:
        """The line of `key`, or of its nearest ancestor written in the file."""
        parts = tuple(key)
        while parts:
            if parts in self.lines:
                return self.lines[parts]
            parts = parts[:-1]
        return None

    def where(self, key: Iterable[str | int]) -> str:
        line = self.line(key)
        return f"{self.path}, line {line}" if line else self.path


def load(path: Path) -> TomlDocument:
    text = path.read_text(encoding="utf-8")
    return loads(text, str(path))


def loads(text: str, path: str = "<string>") -> TomlDocument:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = _SYNTAX_POS.search(msg)
        line = int(m.group(1)) if m else None
        detail = _SYNTAX_POS.sub("", msg).strip()
        raise TomlSyntaxError(path, line, f"TOML syntax error: {detail}") from None
    return TomlDocument(path=path, data=data, lines=_index_lines(text))


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The closest valid key to a mistyped one, for 'did you mean ...?'."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _split_key(text: str) -> tuple[list[str], str] | None:
    """Parse a dotted key at the start of `text`; return (parts, rest) or None."""
    parts: list[str] = []
    rest = text.lstrip()
    while True:
        if rest.startswith('"') or rest.startswith("'"):
            quote = rest[0]
            end = rest.find(quote, 1)
            if end < 0:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            m = _BARE.match(rest)
            if not m:
                return None
            parts.append(m.group(0))
            rest = rest[m.end() :].lstrip()
        if rest.startswith("."):
            rest = rest[1:].lstrip()
            continue
        return parts, rest


def _strip_strings(text: str) -> str:
    """Drop string literals and comments so bracket counting sees only structure."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "#":
            break
        if ch in "\"'":
            end = text.find(ch, i + 1)
            while ch == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(ch, end + 1)
            i = len(text) if end < 0 else end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _index_lines(text: str) -> dict[PathKey, int]:
    lines: dict[PathKey, int] = {}
    aot_index: dict[PathKey, int] = {}
    aot_paths: set[tuple[str, ...]] = set()
    current: PathKey = ()
    depth = 0
    in_multiline: str | None = None

    def resolve(names: list[str]) -> PathKey:
        resolved: list[str | int] = []
        plain: list[str] = []
        for name in names:
            resolved.append(name)
            plain.append(name)
            if tuple(plain) in aot_paths:
                resolved.append(aot_index.get(tuple(resolved), 0))
        return tuple(resolved)

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if in_multiline is not None:
            if in_multiline in line:
                in_multiline = None
            continue
        if depth > 0:
            stripped = _strip_strings(line)
            depth += stripped.count("[") + stripped.count("{")
            depth -= stripped.count("]") + stripped.count("}")
            continue
        if not line or line.startswith("#"):
            continue
        if line.startswith("[["):
            parsed = _split_key(line[2:])
            if parsed:
                names = parsed[0]
                base = resolve(names[:-1]) + (names[-1],)
                aot_paths.add(tuple(names))
                count = aot_index.get(base, -1) + 1
                aot_index[base] = count
                current = base + (count,)
                lines.setdefault(base, number)
                lines[current] = number
            continue
        if line.startswith("["):
            parsed = _split_key(line[1:])
            if parsed:
                current = resolve(parsed[0])
                lines[current] = number
            continue
        parsed = _split_key(line)
        if not parsed or not parsed[1].startswith("="):
            continue
        keys, rest = parsed
        lines.setdefault(current + tuple(keys), number)
        value = rest[1:].strip()
        for quote in ('"""', "'''"):
            if value.startswith(quote) and value.count(quote) == 1:
                in_multiline = quote
        if in_multiline is None:
            stripped = _strip_strings(value)
            depth = stripped.count("[") + stripped.count("{")
            depth -= stripped.count("]") + stripped.count("}")
            depth = max(depth, 0)
    return lines
