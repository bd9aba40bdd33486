"""The demo world: SoftHSM and virtual cards in one folder, so the appliance runs without hardware.

`appliance demo` prepares the world described by the config's [demo] section, then starts the
console UI at its start screen, ready for the `ksr-sign` ceremony. Everything lives under
`[demo] state` (default .demo/): SoftHSM's configuration and tokens, the virtual cards, Knot's
zone-side keys, the media and workspace folders. Nothing outside it is touched, so `make clean`
(or deleting the folder) resets the demo.

The world holds what earlier ceremonies would have left: three crypto officers' cards with
their shares of the token's user PIN (any 3 activate it), the token with the ceremony key and
a KSK for the demo zone, the signed roster, the zones file (signing policy) and a KSR from
Knot's keymgr on the media. A second run finds it all in place and only checks it; a KSR
whose first slot is more than a few days old is made again (its slots must lie ahead).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from appliance import atomic
from appliance.config import Config, load_config
from appliance.errors import ApplianceError, ConfigError

ZONE = "example."
KSK_LABEL = "demo-example-ksk"
#: The demo's people: seat -> name (the attendance the console proposes).
PEOPLE = {
    "CA": "Alice Admin",
    "IW": "Ian Witness",
    "SSC1": "Sam Controller",
    "SSC2": "Sue Controller",
    "CO1": "Carol Officer",
    "CO2": "Chris Officer",
    "CO3": "Cleo Officer",
}


@dataclass(frozen=True)
class DemoCard:
    """A virtual card of the demo: its file name, serial, holder seat and (demo-only) PINs."""

    name: str
    serial: str
    seat: str
    pin: str
    admin_pin: str

    @property
    def holder(self) -> str:
        return PEOPLE[self.seat]


#: Demo PINs are printed on the card tray: this is a demo, there is nothing to protect.
CARDS = (
    DemoCard("co1", "0000C001", "CO1", "111111", "11111111"),
    DemoCard("co2", "0000C002", "CO2", "222222", "22222222"),
    DemoCard("co3", "0000C003", "CO3", "333333", "33333333"),
)
# The SO PIN of the demo token (a real token's SO PIN is in a safe; nobody needs it here).
_SO_PIN = b"demo-so-pin"
_KNOT_POLICY = (
    "policy:\n  - id: offline\n    algorithm: ecdsap256sha256\n    manual: on\n"
    "    offline-ksk: on\n    dnskey-ttl: 3600\n    zone-max-ttl: 3600\n"
    "    zsk-lifetime: 40d\n    rrsig-lifetime: 30d\n    rrsig-refresh: 10d\n"
    "    propagation-delay: 1h\n"
)
_ZONE_TEXT = (
    "$ORIGIN example.\n$TTL 3600\n@ IN SOA ns1 hostmaster 1 3600 900 604800 3600\n"
    "@ IN NS ns1\nns1 IN A 192.0.2.1\nwww IN A 192.0.2.2\n"
)
#: A demo KSR whose first slot began longer ago than this is made again (its slots must lie
#: ahead: signatures for past slots would soon be refused as expired).
KSR_FRESH = timedelta(days=3)
SAMPLE_KSR = Path(__file__).resolve().parents[1] / "tests" / "data" / "demo" / "example.ksr"


@dataclass(frozen=True)
class DemoWorld:
    """Where the demo keeps things (all under config.demo.state and the media folder)."""

    config: Config

    @property
    def state(self) -> Path:
        return self.config.demo.state

    @property
    def cards_dir(self) -> Path:
        return self.state / "cards"

    @property
    def marker(self) -> Path:
        return self.state / "world.json"

    @property
    def roster(self) -> Path:
        return self.config.paths.media / "roster.json"

    @property
    def zones(self) -> Path:
        return self.config.paths.media / "zones.toml"

    @property
    def ksr(self) -> Path:
        return self.config.paths.media / "example.ksr"

    def inputs(self) -> dict[str, str]:
        """The ceremony inputs on the media, by name (what the CA would pick)."""
        return {"roster": str(self.roster), "zones": str(self.zones), "ksr": str(self.ksr)}

    def card_path(self, card: DemoCard) -> Path:
        return self.cards_dir / f"{card.name}.json"


def softhsm_conf_path(config: Config) -> Path:
    return config.demo.state / "softhsm2.conf"


def activate(config: Config) -> None:
    """Point this process at the demo's SoftHSM (must run before the PKCS#11 module loads)."""
    if config.demo.enabled and softhsm_conf_path(config).exists():
        os.environ["SOFTHSM2_CONF"] = str(softhsm_conf_path(config))


def prepare(config: Config) -> None:
    """Create the demo world's folders and SoftHSM configuration (idempotent)."""
    if not config.demo.enabled:
        raise ConfigError(
            f"{config.source}: [demo] enabled is false; this configuration is not a demo.",
            hint="Use appliance.example.toml, or set [demo] enabled = true.",
        )
    state = config.demo.state
    tokens = state / "softhsm-tokens"
    for folder in (state, tokens, config.paths.media, config.paths.workspace):
        folder.mkdir(parents=True, exist_ok=True)
    conf = softhsm_conf_path(config)
    text = f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    if not conf.exists() or conf.read_text(encoding="utf-8") != text:
        atomic.write_text(conf, text)
    activate(config)


def build_world(config: Config, say: Callable[[str], None] = lambda _line: None) -> DemoWorld:
    """Everything the ksr-sign demo needs, made once; later calls only check it (quick)."""
    prepare(config)
    world = DemoWorld(config)
    if _world_intact(world):
        _refresh_stale_ksr(world, say)
        say(f"Demo world in {world.state} is ready (cards, token, roster, KSR).")
        return world
    say("Building the demo world: crypto officers' cards, HSM token, keys, roster, KSR...")
    _reset(world)
    _credentials_and_token(world)
    _zones_file(world)
    _ksr(world, say)
    atomic.write_text(
        world.marker,
        json.dumps({"token": config.hsm.token, "ksk": KSK_LABEL, "zone": ZONE}, indent=1) + "\n",
    )
    say(f"Demo world ready in {world.state}.")
    return world


def _world_intact(world: DemoWorld) -> bool:
    if not world.marker.exists():
        return False
    needed = [world.roster, world.zones, world.ksr, *(world.card_path(c) for c in CARDS)]
    if not all(p.exists() for p in needed):
        return False
    from appliance.hsm import module as hsm_module

    try:
        labels = {t.label for t in hsm_module.survey(world.config.hsm.module)}
    except ApplianceError:
        return False
    return world.config.hsm.token in labels


def _reset(world: DemoWorld) -> None:
    """A half-built world is rebuilt from scratch (the demo's own folders only)."""
    for path in (world.cards_dir, world.state / "softhsm-tokens", world.state / "knot"):
        if path.exists():
            shutil.rmtree(path)
    for path in (world.roster, world.zones, world.ksr, world.marker):
        path.unlink(missing_ok=True)
    (world.state / "softhsm-tokens").mkdir(parents=True)
    world.cards_dir.mkdir(parents=True)
    from appliance.hsm import module as hsm_module

    hsm_module.reload(world.config.hsm.module)


def _credentials_and_token(world: DemoWorld) -> None:
    """What hsm-init would leave: CO cards holding shares of the token PIN, the token with the
    ceremony key, and a KSK (what ksk-generate would leave), the roster signed by the key."""
    from vcard.card import VirtualCard
    from vcard.direct import DirectTransport

    from appliance.hsm import keygen, token_init
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing import roster as rosters
    from appliance.sharing.issue import HolderPins, HolderSpec, issue_activation_set
    from appliance.sharing.openpgp_card import OpenPgpHolderCard
    from appliance.sharing.quorum import QuorumSession, activate_hsm

    config = world.config
    label = config.hsm.token
    virtual = {c.serial: VirtualCard.open(world.card_path(c), c.serial) for c in CARDS}
    holders = {c.serial: OpenPgpHolderCard.open(DirectTransport(virtual[c.serial])) for c in CARDS}
    by_serial = {c.serial: c for c in CARDS}

    def choose_pins(spec: HolderSpec) -> HolderPins:
        card = by_serial[spec.card.serial]
        return HolderPins(bytearray(card.pin.encode()), bytearray(card.admin_pin.encode()))

    def init_token(pin: bytearray) -> None:
        token_init.init_softhsm_token(
            config.hsm.module, label, so_pin=bytearray(_SO_PIN), user_pin=pin
        )

    issued = issue_activation_set(
        rosters.Roster(),
        token_label=label,
        threshold=3,
        holders=[HolderSpec("CO", c.holder, holders[c.serial], login=c.seat) for c in CARDS],
        choose_pins=choose_pins,
        set_user_pin=init_token,
    )
    today = datetime.now(UTC).date()
    quorum = QuorumSession(issued.roster, issued.set_id)
    try:
        for c in CARDS:
            quorum.present(holders[c.serial], bytearray(c.pin.encode()))

        def keys_and_roster(pin: bytearray) -> None:
            with Token(config.hsm.module, label=label).open(pin) as session:
                key = keygen.generate_ceremony_key(session, today=today)
                keygen.generate_key(
                    session, 13, role="ksk", zone=ZONE, label=KSK_LABEL, today=today
                )
                rosters.save(world.roster, issued.roster, key)

        activate_hsm(quorum, keys_and_roster)
    finally:
        quorum.close()
    for card in virtual.values():
        card.save()


def _zones_file(world: DemoWorld) -> None:
    atomic.write_text(
        world.zones,
        "# Signing policy of the demo zone (the zones file of the ksr-sign ceremony).\n"
        f'[zone."{ZONE}"]\nksk = ["{KSK_LABEL}"]\nalgorithms = [13]\n'
        'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\n',
    )


def _ksr(world: DemoWorld, say: Callable[[str], None]) -> None:
    """A KSR for the demo zone from Knot's keymgr (the zone operator's side), or the sample."""
    keymgr = find_keymgr()
    if keymgr is not None:
        try:
            atomic.write_bytes(world.ksr, _keymgr_ksr(world.state / "knot", keymgr))
            return
        except (OSError, subprocess.SubprocessError) as exc:
            say(f"keymgr could not make a KSR ({exc}); using the shipped sample.")
    # The sample's slots start on the day it was made: past its first weeks the KSR policy
    # check refuses it (stale), which is why keymgr is preferred.
    if not SAMPLE_KSR.exists():
        raise ConfigError(
            "No KSR for the demo: Knot's keymgr is missing and the sample is not in this tree.",
            hint="Install knot-dnssecutils (deps/apt-packages.txt), then run the demo again.",
        )
    atomic.write_bytes(world.ksr, SAMPLE_KSR.read_bytes())


def ksr_age(path: Path, now: datetime | None = None) -> timedelta | None:
    """How long ago the KSR's first slot began (None: unreadable, so not worth keeping)."""
    from appliance.dnssec import formats
    from appliance.errors import DnssecError

    try:
        doc, _ = formats.load_document(path)
    except DnssecError:
        return None
    if not doc.bundles:
        return None
    return (now or datetime.now(UTC)) - doc.bundles[0].inception


def _refresh_stale_ksr(world: DemoWorld, say: Callable[[str], None]) -> None:
    """A world built weeks ago keeps its KSR, whose first slots are then in the past and
    soon refused by the policy check: the zone side makes a fresh one (everything else
    stays, so a second run on the same day changes nothing)."""
    age = ksr_age(world.ksr)
    if age is not None and age <= KSR_FRESH:
        return
    when = "unreadable" if age is None else f"{age.days} days old"
    if find_keymgr() is None:
        say(
            f"The demo KSR on the media is {when} and Knot's keymgr is missing, so no fresh "
            "one can be made: the ceremony's policy check may refuse it. Install "
            "knot-dnssecutils (deps/apt-packages.txt) and run the demo again."
        )
        return
    say(f"The demo KSR on the media is {when}; the zone side makes a fresh one.")
    shutil.rmtree(world.state / "knot", ignore_errors=True)
    _ksr(world, say)


def find_keymgr() -> str | None:
    """Knot's keymgr (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("keymgr")
    if found is None and Path("/usr/sbin/keymgr").exists():
        found = "/usr/sbin/keymgr"
    return found


def _keymgr_ksr(root: Path, keymgr: str) -> bytes:
    (root / "db").mkdir(parents=True, exist_ok=True)
    conf = root / "knot.conf"
    conf.write_text(
        f"database:\n  storage: {root}/db\n{_KNOT_POLICY}"
        f"zone:\n  - domain: {ZONE}\n    storage: {root}\n    file: {ZONE}zone\n"
        "    dnssec-signing: on\n    dnssec-policy: offline\n",
        encoding="utf-8",
    )
    (root / f"{ZONE}zone").write_text(_ZONE_TEXT, encoding="utf-8")
    base = [keymgr, "-c", str(conf), ZONE]
    for args in (["pregenerate", "+60d"], ["generate-ksr", "+0", "+60d"]):
        proc = subprocess.run(  # noqa: S603 - fixed argv, our own files
            [*base, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if proc.returncode != 0:
            raise subprocess.SubprocessError(proc.stderr.strip() or f"exit {proc.returncode}")
    return proc.stdout.encode()


def demo_day() -> date:
    return datetime.now(UTC).date()


def command(args: argparse.Namespace) -> int:
    from appliance.tui.command import start_tui

    config = load_config(args.config)
    build_world(config, say=print)
    if args.no_tui:
        from appliance import doctor

        return doctor.report(config, as_json=False)
    return start_tui(config, console=args.console)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="set up the demo world (SoftHSM + virtual cards) and start the console on it",
    )
    p.add_argument("--no-tui", action="store_true", help="set up, print the checks, and stop")
    p.add_argument(
        "--console", action="store_true", help="16-colour Linux console palette (TERM=linux: auto)"
    )
    p.set_defaults(handler=command)
