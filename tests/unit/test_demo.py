from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance import demo
from appliance.config import load_config
from appliance.errors import ConfigError


def test_prepare_builds_the_world_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOFTHSM2_CONF", raising=False)
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        '[paths]\nmedia = "w/media"\nworkspace = "w/ws"\n[hsm]\nmodule = "/x.so"\n'
        '[demo]\nenabled = true\nstate = "w"\n'
    )
    config = load_config(cfg)
    demo.prepare(config)
    conf = tmp_path / "w" / "softhsm2.conf"
    assert f"directories.tokendir = {tmp_path / 'w' / 'softhsm-tokens'}" in conf.read_text()
    assert (tmp_path / "w" / "media").is_dir() and (tmp_path / "w" / "ws").is_dir()
    assert os.environ["SOFTHSM2_CONF"] == str(conf)
    before = conf.stat().st_mtime_ns
    demo.prepare(config)
    assert conf.stat().st_mtime_ns == before


def test_prepare_refuses_a_non_demo_config(tmp_path: Path) -> None:
    cfg = tmp_path / "appliance.toml"
    cfg.write_text('[hsm]\nmodule = "/x.so"\n')
    with pytest.raises(ConfigError, match="not a demo"):
        demo.prepare(load_config(cfg))


def _media_world(tmp_path: Path) -> demo.DemoWorld:
    """A demo world with only its media folder ("m"), for the KSR's own steps."""
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        '[paths]\nmedia = "m"\n[hsm]\nmodule = "/x.so"\n[demo]\nenabled = true\nstate = "w"\n'
    )
    (tmp_path / "m").mkdir()
    return demo.DemoWorld(load_config(cfg))


def test_the_sample_ksr_is_used_without_keymgr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "find_keymgr", lambda: None)
    demo._ksr(_media_world(tmp_path), lambda _line: None)
    copied = (tmp_path / "m" / "example.ksr").read_bytes()
    assert copied == demo.SAMPLE_KSR.read_bytes()
    assert b";; KeySigningRequest" in copied


def test_ksr_age_is_measured_from_the_first_slot(tmp_path: Path) -> None:
    from datetime import timedelta

    from appliance.dnssec import formats

    doc, _ = formats.load_document(demo.SAMPLE_KSR)
    first = doc.bundles[0].inception
    assert demo.ksr_age(demo.SAMPLE_KSR, now=first + timedelta(days=10)) == timedelta(days=10)
    torn = tmp_path / "example.ksr"
    torn.write_bytes(demo.SAMPLE_KSR.read_bytes()[:200])
    assert demo.ksr_age(torn) is None
    assert demo.ksr_age(tmp_path / "missing.ksr") is None


def test_a_stale_ksr_without_keymgr_is_kept_and_the_operator_told_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    world = _media_world(tmp_path)
    world.ksr.write_bytes(demo.SAMPLE_KSR.read_bytes())
    monkeypatch.setattr(demo, "find_keymgr", lambda: None)
    monkeypatch.setattr(demo, "KSR_FRESH", timedelta(days=-1))
    said: list[str] = []
    demo._refresh_stale_ksr(world, said.append)
    assert world.ksr.read_bytes() == demo.SAMPLE_KSR.read_bytes()
    assert len(said) == 1 and "keymgr is missing" in said[0] and "knot-dnssecutils" in said[0]
