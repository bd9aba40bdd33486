"""Mask selection on bitsets: the re-masked symbols are exactly the library's, and valid."""

from __future__ import annotations

import pytest
import qrcode
from qrcode.util import MODE_ALPHA_NUM, QRData

from appliance.outputs import qr, qrmask


def _code(text: str, version: int) -> qrcode.QRCode:  # type: ignore[type-arg]
    code = qrcode.QRCode(version=version, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(QRData(text, mode=MODE_ALPHA_NUM), optimize=0)
    return code


@pytest.mark.parametrize(("text", "version"), [("CB1:AAAA:0:1:1:BB8:0", 3), ("X" * 900, 25)])
def test_remasking_equals_building_with_that_mask(text: str, version: int) -> None:
    code = _code(text, version)
    code.makeImpl(True, 0)
    rows0 = qrmask.rows_of(code.modules)
    n = len(rows0)
    data = qr._data_rows(version)
    for k in range(8):
        code.makeImpl(True, k)
        assert qrmask.masked(rows0, data, k, n) == qrmask.rows_of(code.modules), k


def test_penalty_of_an_all_dark_symbol() -> None:
    n = 21
    rows = [(1 << n) - 1] * n
    # N1: 42 lines, one run of 21 each: 3 + 16. N2: 20 x 20 blocks x 3. N3: none. N4: 100 %.
    assert qrmask.penalty(rows, n) == 42 * 19 + 400 * 3 + 100


def test_penalty_counts_finder_like_patterns() -> None:
    line = int("1011101"[::-1], 2)  # modules 0..6 = 1011101, modules 7..20 light
    # Light on both sides (the quiet zone on the left, 14 modules on the right): both N3
    # patterns match, 2 x 40; plus N1 for the light run of 14: 3 + 9.
    assert qrmask._line_penalty(line, 21) == 80 + 12
    shifted = line << 1  # one light module on the left, still the quiet zone beyond
    assert qrmask._line_penalty(shifted, 21) == 80 + 11
    broken = int("1011001"[::-1], 2)
    assert qrmask._line_penalty(broken, 21) == 12


def test_chosen_symbol_decodes() -> None:
    import zxingcpp
    from PIL import Image

    text = "CB1:7QX2:1:3:12:" + "%69 VD92EX0" * 100
    modules = qr.matrix(text, 25, "M")
    scale, border = 4, 4
    size = (len(modules) + 2 * border) * scale
    img = Image.new("L", (size, size), 255)
    for r, row in enumerate(modules):
        for c, dark in enumerate(row):
            if dark:
                x, y = (c + border) * scale, (r + border) * scale
                img.paste(0, (x, y, x + scale, y + scale))
    (found,) = zxingcpp.read_barcodes(img)
    assert found.text == text
