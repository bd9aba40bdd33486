"""Card latencies through the full stack: pyscard -> pcscd -> vpcd -> virtual card.

Brings up the virtual readers in a private folder (reusing a running pcscd), provisions a
virtual card, and prints one JSON object per line:
  apdu_round_trip   GET DATA C4 (7 bytes back): median and p95
  session_open      connect + SELECT + read application data (6E)
  ecdh_decipher     VERIFY 82 + PSO:DECIPHER
  ecdsa_sign        VERIFY 81 + PSO:CDS (the card forces one VERIFY per signature); the
                    virtual card fsyncs its state file for the signature counter, which
                    dominates this figure (as the EEPROM write does on a real card)
  direct_*          the same session in-process (DirectTransport), to separate the card's
                    own cost from the PC/SC path

    .venv/bin/python bench/cards.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "smartcard"))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from vcard import CardState, DirectTransport, VirtualCard, harness  # noqa: E402

from appliance.cards import pcsc  # noqa: E402
from appliance.cards.openpgp import OpenPgpSession, Pin  # noqa: E402
from appliance.cards.provision import provision  # noqa: E402
from appliance.cards.transport import Transport  # noqa: E402


def measure(name: str, rounds: int, fn: Callable[[], object]) -> None:
    fn()  # warm up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    print(
        json.dumps(
            {
                "bench": name,
                "rounds": rounds,
                "median_us": round(statistics.median(times) * 1e6, 1),
                "p95_us": round(p95 * 1e6, 1),
            }
        ),
        flush=True,
    )


def crypto_benches(prefix: str, session: OpenPgpSession, rounds: int) -> None:
    peer = ec.generate_private_key(ec.SECP256R1()).public_key()

    def decipher() -> None:
        session.verify(Pin.USER, bytearray(b"123456"))
        session.ecdh(peer)

    def sign() -> None:
        session.verify(Pin.SIGN, bytearray(b"123456"))
        session.sign(b"benchmark attestation")

    measure(f"{prefix}ecdh_decipher", rounds, decipher)
    measure(f"{prefix}ecdsa_sign", rounds, sign)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-cards-"))
    run = base / "run"
    world = harness.up(base / "cards", run)
    transports: list[pcsc.PcscTransport] = []
    try:
        world.client.create("bench", "BE0C0001")
        world.client.insert("bench", 0)
        reader = world.readers[0]
        transport = pcsc.connect(reader)
        transports.append(transport)
        session = OpenPgpSession(transport)
        provision(
            session,
            bytearray(b"12345678"),
            role="CO1",
            role_id="co1",
            holder="Bench",
            timestamp=int(time.time()),
        )

        data, sw = transport.transmit(bytes.fromhex("00CA00C400"))
        assert sw == 0x9000 and len(data) == 7, (data, sw)  # the card really answers
        measure(
            "apdu_round_trip",
            args.rounds * 5,
            lambda: transport.transmit(bytes.fromhex("00CA00C400")),
        )

        def open_session() -> None:
            t = pcsc.connect(reader)
            try:
                OpenPgpSession(t).status()
            finally:
                t.close()

        measure("session_open", args.rounds, open_session)
        crypto_benches("", session, args.rounds)

        card = VirtualCard(CardState.factory("BE0C0002"))
        direct: Transport = DirectTransport(card)
        ds = OpenPgpSession(direct)
        provision(
            ds, bytearray(b"12345678"), role="CO1", role_id="co1", holder="Bench", timestamp=1
        )
        measure(
            "direct_apdu_round_trip",
            args.rounds * 5,
            lambda: direct.transmit(bytes.fromhex("00CA00C400")),
        )
        crypto_benches("direct_", ds, args.rounds)
    finally:
        for t in transports:
            t.close()
        harness.down(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
