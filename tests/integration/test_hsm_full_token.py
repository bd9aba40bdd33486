"""A full token: clear errors, no half key pair, nothing half-restored.

SoftHSM has no object limit; a full disk under its token directory is how it fills up. We
mount a 64 KiB tmpfs for that (needs root with CAP_SYS_ADMIN, as `make test` runs); where the
mount is not permitted the test skips and says so.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.hsm import backup, keygen, restore
from appliance.hsm import module as hsm_module
from appliance.hsm.errors import HsmError, RestoreError
from tests.support.softhsm import SoftHsm


@pytest.fixture
def tiny_softhsm(softhsm: SoftHsm, tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({proc.stderr.strip()}): needs root")
    (mount_point / "tokens").mkdir()
    conf = tmp_path / "tiny.conf"
    conf.write_text(
        f"directories.tokendir = {mount_point / 'tokens'}\nobjectstore.backend = file\n"
        "log.level = ERROR\n",
        encoding="utf-8",
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        yield mount_point
    finally:
        os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
        hsm_module.survey(softhsm.module)  # re-initialises on the session's configuration
        subprocess.run(["umount", str(mount_point)], check=False)


def test_full_token(softhsm: SoftHsm, tiny_softhsm: Path, tmp_path: Path) -> None:
    # A backup with more keys than the tiny token holds, made on the session's SoftHSM.
    os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
    wrapping_key = bytearray(os.urandom(32))
    serial = softhsm.init_token("big")
    with softhsm.open(serial=serial) as session:
        keygen.generate_ceremony_key(session)
        for i in range(11):
            keygen.generate_key(session, 13, role="zsk", zone=f"z{i}.")
        made = backup.create_backup(session, wrapping_key, tmp_path / "backups", lock=False)
    assert len(made.covered_ids) == 12

    os.environ["SOFTHSM2_CONF"] = str(tiny_softhsm.parent / "tiny.conf")
    serial = softhsm.init_token("big")
    with softhsm.open(serial=serial) as tiny:
        with pytest.raises(RestoreError, match="Nothing was restored") as info:
            restore.restore_backup(tiny, made.backup.path, wrapping_key)
        assert "out of storage" in info.value.hint
        assert tiny.object_count() == 0

        generated = 0
        with pytest.raises(HsmError) as gen_info:  # fill the token until it fails
            for i in range(50):
                keygen.generate_key(tiny, 13, role="zsk", zone=f"fill{i}.")
                generated += 1
        assert "out of storage" in gen_info.value.hint
        assert generated > 0
        objects = tiny.key_objects()
        assert len(objects) == generated
        assert all(o.public_key_der is not None for o in objects)  # no half key pair
        assert tiny.object_count() == 2 * generated
