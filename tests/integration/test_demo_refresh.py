"""A demo world built long ago: its KSR is made again by the zone side (keymgr) on the next
`appliance demo`, nothing else changes; a fresh KSR is left alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from appliance import demo
from tests.support.services import need_tool
from tests.tui.demo_driver import demo_config, softhsm_env


def test_a_stale_demo_ksr_is_made_again_and_the_rest_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_tool("softhsm2-util", "softhsm2")
    if demo.find_keymgr() is None:
        need_tool("keymgr", "knot-dnssecutils")
    config = demo_config(tmp_path)
    restore = softhsm_env(config)
    try:
        world = demo.build_world(config)
        first_ksr = world.ksr.read_bytes()
        others = {p: p.read_bytes() for p in (world.roster, world.zones, world.marker)}
        said: list[str] = []
        demo.build_world(config, say=said.append)
        assert world.ksr.read_bytes() == first_ksr, "a fresh KSR is kept"
        assert not any("fresh one" in line for line in said)

        monkeypatch.setattr(demo, "KSR_FRESH", timedelta(days=-1))  # as if weeks went by
        said.clear()
        demo.build_world(config, say=said.append)
        assert any("the zone side makes a fresh one" in line for line in said), said
        fresh = world.ksr.read_bytes()
        assert fresh != first_ksr and b";; KeySigningRequest" in fresh
        age = demo.ksr_age(world.ksr)
        assert age is not None and age < timedelta(hours=1)
        assert {p: p.read_bytes() for p in others} == others, "roster, zones, marker kept"
    finally:
        restore()
