"""QR symbols for frames: alphanumeric mode only, version and error correction by measurement.

The chosen settings (docs/outputs.md has the measurements): version 25, level M, modules of
3 pixels at 150 dpi (0.508 mm, a 59.4 mm code). On rasterised A4 pages at 150 dpi both
zxing-cpp and zbar read every code, and zxing-cpp still reads every one on tilted, blurred
JPEG scans; one frame carries 948 bytes, twelve to an A4 page.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from appliance.outputs.errors import FrameError

EcLevel = Literal["L", "M", "Q", "H"]

_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


#: One pixel at 150 dpi, in mm. Module pitches are whole multiples of it, and codes sit on
#: this grid, so module edges fall on pixel edges at 150/300/600 dpi (printers and
#: pdftoppm alike) instead of being smeared into grey by anti-aliasing.
GRID_MM = 25.4 / 150


def modules(version: int) -> int:
    return 17 + 4 * version


@dataclass(frozen=True)
class QrSettings:
    version: int = 25
    ec: EcLevel = "M"
    #: Module pitch in 150-dpi pixels (3 -> 0.508 mm, a v25 code is 59.4 mm wide). Whole
    #: numbers keep module edges on pixel edges; fractions exist to measure what that buys.
    module_px: float = 3

    @property
    def module_mm(self) -> float:
        return self.module_px * GRID_MM

    @property
    def size_mm(self) -> float:
        """Printed side of a full-size symbol, without its quiet zone."""
        return modules(self.version) * self.module_mm


CHOSEN = QrSettings()


def pitch_for(n_modules: int, cell_mm: float) -> float:
    """The largest whole-pixel module pitch (mm) at which `n_modules` fit in `cell_mm`."""
    return max(1, int(cell_mm / n_modules / GRID_MM)) * GRID_MM


def _ec_constant(level: EcLevel) -> int:
    from qrcode import constants

    table: dict[str, int] = {
        "L": constants.ERROR_CORRECT_L,
        "M": constants.ERROR_CORRECT_M,
        "Q": constants.ERROR_CORRECT_Q,
        "H": constants.ERROR_CORRECT_H,
    }
    return table[level]


def capacity_chars(version: int, ec: EcLevel) -> int:
    """Alphanumeric characters one symbol holds (one segment, ISO/IEC 18004 table 7)."""
    from qrcode import util

    bits = int(util.BIT_LIMIT_TABLE[_ec_constant(ec)][version]) - 4
    bits -= int(util.length_in_bits(util.MODE_ALPHA_NUM, version))
    pairs, rest = divmod(bits, 11)
    return pairs * 2 + (1 if rest >= 6 else 0)


def matrix(text: str, version: int | None, ec: EcLevel) -> list[list[bool]]:
    """Modules (True = dark), no quiet zone. `version=None` takes the smallest that fits."""
    if not set(text) <= _ALNUM:
        raise FrameError("frame text has characters outside the QR alphanumeric set")
    import qrcode
    from qrcode.util import MODE_ALPHA_NUM, QRData

    from appliance.outputs import qrmask

    code = qrcode.QRCode(version=version, error_correction=_ec_constant(ec), border=0)
    code.add_data(QRData(text, mode=MODE_ALPHA_NUM), optimize=0)
    try:
        if version is None:
            code.best_fit()
        # Mask 0 in test mode (format areas light), then the best mask chosen on bitsets.
        code.makeImpl(True, 0)
    except qrcode.exceptions.DataOverflowError:
        raise FrameError(f"{len(text)} characters do not fit a version {version} QR") from None
    n = len(code.modules)
    mask = qrmask.best_mask(qrmask.rows_of(code.modules), _data_rows(code.version), n)
    code.makeImpl(False, mask)
    return [[bool(m) for m in row] for row in code.modules]


@functools.cache
def _data_rows(version: int) -> tuple[int, ...]:
    """Which modules carry data (and so are masked) in a symbol of `version`."""
    import qrcode

    probe = qrcode.QRCode(version=version, border=0)
    n = probe.modules_count = modules(version)
    probe.modules = [[None] * n for _ in range(n)]
    probe.setup_position_probe_pattern(0, 0)
    probe.setup_position_probe_pattern(n - 7, 0)
    probe.setup_position_probe_pattern(0, n - 7)
    probe.setup_position_adjust_pattern()
    probe.setup_timing_pattern()
    probe.setup_type_info(True, 0)
    if version >= 7:
        probe.setup_type_number(True)
    return tuple(sum(1 << c for c, m in enumerate(row) if m is None) for row in probe.modules)
