"""A QR code drawn with half-block characters, for a preview on the console.

Two modules per character cell (upper and lower half), so a version-3 code fits in about 16
rows. The block characters exist in the Linux console's default font; no colour is needed.
"""

from __future__ import annotations


def qr_text(data: str, border: int = 1) -> str:
    import qrcode

    code = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(data)
    code.make(fit=True)
    matrix = code.get_matrix()
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyph = {
        (True, True): "\u2588",
        (True, False): "\u2580",
        (False, True): "\u2584",
        (False, False): " ",
    }
    return "\n".join(
        "".join(glyph[(top, bottom)] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(matrix[::2], matrix[1::2], strict=True)
    )
