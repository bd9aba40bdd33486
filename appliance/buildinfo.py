"""What build of the appliance this is: version, build time, image hash.

The live image writes /etc/appliance/build-info.json at build time; a checkout has none and
falls back to the release date below, so the clock check still catches a clock in the past.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from appliance import __version__

BUILD_INFO = Path("/etc/appliance/build-info.json")
#: Release date of this source tree; a clock before it is certainly wrong.
SOURCE_DATE = datetime(2026, 12, 1, tzinfo=UTC)


def _info() -> dict[str, object]:
    try:
        data = json.loads(BUILD_INFO.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def build_time() -> datetime:
    epoch = _info().get("source_date_epoch")
    if isinstance(epoch, int):
        return datetime.fromtimestamp(epoch, UTC)
    return SOURCE_DATE


def image_hash() -> str | None:
    value = _info().get("image_sha256")
    return value if isinstance(value, str) else None


def version() -> str:
    return __version__
