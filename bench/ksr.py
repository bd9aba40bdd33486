"""KSR signing benchmark: ours vs `keymgr sign-ksr`, and our RRSIG rate vs the raw HSM rate.

One run, one SoftHSM token, one 1-year Knot KSR (2-hour re-sign step: ~4,400 SKR slots),
for RSA-2048 and P-256:
  (a) seconds for our SKR (check excluded, signing + re-verification + rendering) next to
      Knot's own `keymgr sign-ksr` with its KSK in the same SoftHSM;
  (b) our RRSIGs per second against raw python-pkcs11 signs per second on the same key.
Prints one JSON line per algorithm. Run: .venv/bin/python bench/ksr.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.dnssec import formats, writer  # noqa: E402
from appliance.dnssec.policy import ZonePolicy  # noqa: E402
from appliance.dnssec.sign import Ksk, SignStats, sign_request  # noqa: E402

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"
ZONE = "bench.example."
NAMES = {8: "rsasha256", 13: "ecdsap256sha256"}


def sh(*cmd: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="ksr-bench-"))
    tokens = work / "tokens"
    tokens.mkdir()
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    sh("softhsm2-util", "--init-token", "--free", "--label", "bench", "--pin", PIN,
       "--so-pin", "5678")
    from appliance.hsm import keygen
    from appliance.hsm import keys as hsm_keys
    from appliance.hsm.pkcs11_adapter import Token

    session = Token(Path(MODULE), label="bench").open(bytearray(PIN.encode()))
    start = (int(time.time()) // 3600) * 3600
    for algorithm in (8, 13):
        root = work / str(algorithm)
        (root / "zsk").mkdir(parents=True)
        (root / "ksk").mkdir()
        policy = (
            "policy:\n  - id: p\n"
            f"    algorithm: {NAMES[algorithm]}\n    manual: on\n    offline-ksk: on\n"
            "    dnskey-ttl: 3600\n    zone-max-ttl: 3600\n    zsk-lifetime: 60d\n"
            "    rrsig-lifetime: 3h\n    rrsig-refresh: 1h\n    propagation-delay: 1h\n"
        )
        for side in ("zsk", "ksk"):
            keystore = ""
            use = ""
            if side == "ksk":
                keystore = (f"keystore:\n  - id: hsm\n    backend: pkcs11\n    config: "
                            f"\"pkcs11:token=bench;pin-value={PIN} {MODULE}\"\n")
                use = "    keystore: hsm\n"
            (root / f"{side}.conf").write_text(
                f"database:\n  storage: {root}/{side}\n{keystore}{policy}{use}"
                f"zone:\n  - domain: {ZONE}\n    dnssec-signing: on\n    dnssec-policy: p\n"
            )
        zconf, kconf = str(root / "zsk.conf"), str(root / "ksk.conf")
        sh("faketime", f"@{start}", "keymgr", "-c", zconf, ZONE, "pregenerate", "+365d")
        ksr = sh("faketime", f"@{start}", "keymgr", "-c", zconf, ZONE, "generate-ksr", "+0",
                 "+365d")
        ksr_path = root / "bench.ksr"
        ksr_path.write_text(ksr)
        sh("faketime", f"@{start}", "keymgr", "-c", kconf, ZONE, "generate", "ksk=yes",
           "zsk=no")
        t0 = time.perf_counter()
        knot_skr = sh("keymgr", "-c", kconf, ZONE, "sign-ksr", str(ksr_path))
        knot_s = time.perf_counter() - t0

        made = keygen.generate_key(session, algorithm, role="ksk", zone=ZONE,
                                   label=f"bench-ksk-{algorithm}", allow_uncoverable=True)
        key = hsm_keys.dnssec_key(session, made.key.label)
        doc, _ = formats.load_document(ksr_path)
        zp = ZonePolicy(ZONE, rrsig_lifetime=_h(3), rrsig_refresh=_h(1))
        stats = SignStats()
        t0 = time.perf_counter()
        skr = sign_request(doc, zp, [Ksk(key, key.label)], now=datetime.now(UTC), stats=stats)
        sign_s = time.perf_counter() - t0
        data = writer.render(skr)
        ours_s = time.perf_counter() - t0

        raw = session.signer(made.key.id, made.key.spec)
        from appliance.hsm import algorithms as alg

        prepare = alg.prepare(made.key.spec)
        sample = b"x" * 600
        n = stats.rrsigs
        t0 = time.perf_counter()
        for _ in range(n):
            raw(prepare(sample))
        raw_s = time.perf_counter() - t0
        print(json.dumps({
            "algorithm": algorithm,
            "ksr_slots": len(doc.bundles),
            "skr_slots": len(skr.bundles),
            "knot_skr_slots": knot_skr.count(";; SignedKeyResponse 1.0 ") - 1,
            "ours_seconds": round(ours_s, 3),
            "keymgr_sign_ksr_seconds": round(knot_s, 3),
            "ours_vs_keymgr": round(knot_s / ours_s, 2),
            "rrsigs": n,
            "our_rrsigs_per_s": round(n / sign_s),
            "raw_pkcs11_signs_per_s": round(n / raw_s),
            "ratio": round((n / sign_s) / (n / raw_s), 3),
            "skr_bytes": len(data),
        }))


def _h(hours: int):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(hours=hours)


if __name__ == "__main__":
    main()
