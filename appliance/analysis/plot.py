"""A PNG of the frontier: P(compromise) against P(denial) for every (n, k) searched.

Drawn with Pillow alone (no matplotlib on the appliance) and a local font (DejaVu Sans when
installed, else Pillow's built-in font): nothing is fetched from a network. Both axes are
logarithmic; the targets are dashed red lines, so the pairs meeting both sit in the lower
left box. Each n is one curve over k = 1..n (the trade-off that n offers); the pairs meeting
both targets are green and labelled k-of-n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from appliance.analysis.search import Candidate

WIDTH, HEIGHT = 960, 720
LEFT, RIGHT, TOP, BOTTOM = 90, 30, 50, 70
FLOOR_EXP = -15  # values below 1e-15 are drawn on the floor
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (214, 39, 40),
]
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _font(size: int) -> Any:
    from PIL import ImageFont

    if DEJAVU.exists():
        return ImageFont.truetype(str(DEJAVU), size)
    return ImageFont.load_default(size=size)


def frontier(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Pairs not beaten on both probabilities by another pair, by rising P(compromise)."""
    ordered = sorted(candidates, key=lambda c: (c.p_compromise, c.p_denial, c.n))
    out: list[Candidate] = []
    best_denial = math.inf
    for c in ordered:
        if c.p_denial < best_denial:
            out.append(c)
            best_denial = c.p_denial
    return out


def _exp_range(values: Sequence[float]) -> tuple[int, int]:
    positive = [v for v in values if v > 0.0]
    low = math.floor(math.log10(min(positive))) if positive else -6
    return max(FLOOR_EXP, low), 0


def draw(
    candidates: Sequence[Candidate],
    target_denial: float,
    target_compromise: float,
    path: Path,
    title: str = "",
) -> Path:
    """Write the frontier PNG to `path` and return it."""
    from PIL import Image, ImageDraw

    x_lo, x_hi = _exp_range([c.p_compromise for c in candidates] + [target_compromise])
    y_lo, y_hi = _exp_range([c.p_denial for c in candidates] + [target_denial])
    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    d = ImageDraw.Draw(img)
    small, normal = _font(12), _font(15)
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def xpos(p: float) -> float:
        e = max(float(x_lo), math.log10(p)) if p > 0 else float(x_lo)
        return LEFT + (e - x_lo) / (x_hi - x_lo) * pw

    def ypos(p: float) -> float:
        e = max(float(y_lo), math.log10(p)) if p > 0 else float(y_lo)
        return TOP + ph - (e - y_lo) / (y_hi - y_lo) * ph

    for e in range(x_lo, x_hi + 1):
        x = xpos(10.0**e)
        d.line([(x, TOP), (x, TOP + ph)], fill=(232, 232, 232))
        d.text((x, TOP + ph + 6), f"1e{e}", fill="black", font=small, anchor="mt")
    for e in range(y_lo, y_hi + 1):
        y = ypos(10.0**e)
        d.line([(LEFT, y), (LEFT + pw, y)], fill=(232, 232, 232))
        d.text((LEFT - 6, y), f"1e{e}", fill="black", font=small, anchor="rm")
    d.rectangle([LEFT, TOP, LEFT + pw, TOP + ph], outline="black")
    d.text(
        (LEFT + pw / 2, HEIGHT - 22),
        "P(compromise): k or more holders collude",
        fill="black",
        font=normal,
        anchor="mm",
    )
    d.text((12, TOP - 30), "P(denial): fewer than k can come", fill="black", font=normal)
    if title:
        d.text((WIDTH - RIGHT, TOP - 30), title, fill="black", font=normal, anchor="ra")

    tx, ty = xpos(target_compromise), ypos(target_denial)
    for i in range(int(TOP), int(TOP + ph), 12):
        d.line([(tx, i), (tx, min(i + 6, TOP + ph))], fill=(200, 0, 0), width=2)
    for i in range(int(LEFT), int(LEFT + pw), 12):
        d.line([(i, ty), (min(i + 6, LEFT + pw), ty)], fill=(200, 0, 0), width=2)

    by_n: dict[int, list[Candidate]] = {}
    for c in candidates:
        by_n.setdefault(c.n, []).append(c)
    for n, row in sorted(by_n.items()):
        row.sort(key=lambda c: c.k)
        colour = PALETTE[n % len(PALETTE)]
        pts = [(xpos(c.p_compromise), ypos(c.p_denial)) for c in row]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=1)
        for c, (x, y) in zip(row, pts, strict=True):
            r = 4 if c.meets else 2
            d.ellipse([x - r, y - r, x + r, y + r], fill=(0, 150, 0) if c.meets else colour)
            if c.meets:
                d.text((x + 6, y - 4), f"{c.k}-of-{c.n}", fill=(0, 110, 0), font=small, anchor="lb")
        mid = row[len(row) // 2]
        d.text(
            (xpos(mid.p_compromise) - 6, ypos(mid.p_denial) + 4),
            f"n={n}",
            fill=colour,
            font=small,
            anchor="rt",
        )
    img.save(path, format="PNG")
    return path
