"""HSM actions bound to appliance.hsm (PKCS#11) and appliance.sharing (quorum activation)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from appliance import atomic
from appliance.ceremony.actions.common import (
    HSM_SESSION,
    backups_dir,
    collect_quorum,
    config_of,
    hsm_session,
    journal_day,
    load_roster,
    require_script_quorum,
)
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed, OperatorCancelled
from appliance.ceremony.registry import ActionResult, Registry, require
from appliance.errors import ApplianceError

ALGORITHM_NUMBERS = {
    "RSASHA256": 8,
    "RSASHA512": 10,
    "ECDSAP256SHA256": 13,
    "ECDSAP384SHA384": 14,
    "ED25519": 15,
}


def _token(ctx: ActionContext) -> Any:
    from appliance import demo
    from appliance.hsm.pkcs11_adapter import Token

    config = config_of(ctx)
    demo.activate(config)
    return Token(config.hsm.module, label=config.hsm.token)


def activate(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.hsm import keys
    from appliance.hsm.errors import KeyNotFound
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import activate_hsm

    config = config_of(ctx)
    if config.hsm.activation == "native":
        return _activate_native(ctx, params)
    roster = load_roster(ctx)
    cset = roster.set_for(Purpose.HSM_ACTIVATION, config.hsm.token)
    quorum = int(params["quorum"])
    if quorum != cset.threshold:
        raise ActionFailed(
            f"The script asks for {quorum} cards but set {cset.set_id} of token "
            f"{config.hsm.token} needs {cset.threshold}.",
            hint="Correct the script's quorum to the roster's threshold.",
        )
    token = _token(ctx)
    qs, presented = collect_quorum(
        ctx, roster, cset.set_id, str(params["officers"]), f"activate HSM token {config.hsm.token}"
    )
    # Closing a logged-in session logs the application out: close the previous one (and
    # forget the signer bound to it) before logging in again.
    previous = ctx.session.pop(HSM_SESSION, None)
    if previous is not None:
        ctx.services.signer = None
        previous.close()
    try:
        session = activate_hsm(qs, lambda pin: token.open(pin))
    finally:
        qs.close()
    ctx.session[HSM_SESSION] = session
    fingerprint = None
    try:
        ceremony = keys.ceremony_key(session)
    except KeyNotFound:
        ceremony = None
    if ceremony is not None:
        if roster.signer_public_key and roster.signer_public_key != ceremony.public_key_der():
            raise ActionFailed(
                "The roster is not signed by this HSM's ceremony key.",
                hint="Use the roster issued with this HSM; report the mismatch.",
            )
        ctx.services.signer = ceremony
        fingerprint = ceremony.fingerprint()
    ctx.kill_point()
    info = token.info
    return ActionResult(
        f"HSM token {info.label} ({info.serial}) active with {len(presented)} cards of set "
        f"{cset.set_id}.",
        {
            "token": info.label,
            "token_serial": info.serial,
            "set_id": cset.set_id,
            "presented": [p.as_dict() for p in presented],
            "ceremony_key": fingerprint,
        },
    )


def _activate_native(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Native activation: the HSM runs its own quorum (e.g. officers' keys on its PED). The
    appliance reads the steps to the room, records which officers say they did their part,
    then logs in through the token's protected authentication path (no PIN passes here)."""
    from appliance.ceremony.operator import Confirmation
    from appliance.hsm import keys
    from appliance.hsm.errors import KeyNotFound

    family = str(params["officers"])
    quorum = int(params["quorum"])
    seats = ctx.seats_for(family)
    if len(seats) < quorum:
        raise ActionFailed(
            f"The HSM's quorum needs {quorum} officers of {family}, but only {len(seats)} "
            f"are present ({', '.join(seats) or 'none'}).",
            hint="Bring enough officers with their HSM credentials, then retry the step.",
        )
    token = _token(ctx)
    info = token.info
    step = ctx.step.id
    ctx.operator.notify(
        step,
        f"HSM token {info.label} ({info.serial}) runs its own quorum: the appliance never "
        f"sees the officers' credentials. {quorum} officers of {family} present their "
        "credential to the HSM's PED, one at a time, as the HSM asks.",
    )
    ctx.operator.notify(
        step,
        "When the HSM asks for an officer's credential, that officer presents it to the PED "
        "and enters its PIN on the PED's own keypad, then confirms here.",
    )
    confirmed: list[str] = []
    for seat in seats[:quorum]:
        prompt = (
            f"{seat}, confirm that you presented your credential to the PED of HSM token "
            f"{info.label} and the HSM accepted it."
        )
        if not ctx.operator.confirm(Confirmation(step, seat, prompt, "action")):
            raise ActionFailed(
                f"{seat} did not confirm their part of the HSM's own quorum"
                + (f" (confirmed: {', '.join(confirmed)})" if confirmed else "")
                + "; the appliance did not log in.",
                hint="Repeat the HSM's quorum with the officers present, then retry the step.",
                seat=seat,
            )
        confirmed.append(seat)
    ctx.operator.notify(
        step, f"Logging in on token {info.label}: complete the login on the PED if it asks."
    )
    # As pin-quorum: closing a logged-in session logs the application out, so close the
    # previous one (and forget its signer) before logging in again.
    previous = ctx.session.pop(HSM_SESSION, None)
    if previous is not None:
        ctx.services.signer = None
        previous.close()
    session = token.open_protected()
    ctx.session[HSM_SESSION] = session
    fingerprint = None
    try:
        ceremony = keys.ceremony_key(session)
    except KeyNotFound:
        ceremony = None
    if ceremony is not None:
        ctx.services.signer = ceremony
        fingerprint = ceremony.fingerprint()
    ctx.kill_point()
    return ActionResult(
        f"HSM token {info.label} ({info.serial}) active through its own quorum; "
        f"{', '.join(confirmed)} confirmed their part on the PED.",
        {
            "mode": "native",
            "token": info.label,
            "token_serial": info.serial,
            "officers": family,
            "confirmed": confirmed,
            "ceremony_key": fingerprint,
        },
    )


def _key_result(record: Any, purpose: str) -> dict[str, Any]:
    flags = 257 if purpose == "ksk" else 256
    return {
        "label": record.label,
        "id": record.id.hex(),
        "type": record.spec.type_name,
        "algorithm": record.algorithm,
        "key_tag": record.key_tag(flags) if purpose != "ceremony" else None,
        "public_key_sha256": hashlib.sha256(record.public_key_der).hexdigest(),
    }


def generate_key(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.hsm import keygen, keys
    from appliance.hsm.errors import KeyNotFound

    session = hsm_session(ctx)
    purpose = str(params["purpose"])
    day = date.fromisoformat(journal_day(ctx))
    if purpose == "ceremony":
        try:
            key = keys.ceremony_key(session)
            already = True
        except KeyNotFound:
            key = keygen.generate_ceremony_key(session, today=day)
            already = False
        ctx.kill_point()
        ctx.services.signer = key
        data = _key_result(key.record, purpose)
        data["fingerprint"] = key.fingerprint()
        return ActionResult(
            f"Ceremony key {key.fingerprint()}"
            + (" is on the token (not generated again)" if already else " generated"),
            data,
            already=already,
        )
    algorithm = ALGORITHM_NUMBERS[str(params["algorithm"])]
    zone = str(params.get("zone") or ".")
    label = str(params.get("label") or "") or keys.dnssec_label(zone, purpose, algorithm, day)
    try:
        record = keys.find(session, label=label)
        already = True
    except KeyNotFound:
        record = None
    if record is not None and not ctx.history.interrupted(ctx.step.id):
        # Only this step's own interrupted attempt may have made it: any other key with this
        # label belongs to another ceremony and must not be passed off as generated here.
        raise ActionFailed(
            f"A key labelled {label} is already on the token, and this ceremony did not "
            "generate it (another ceremony, or a rehearsal, made it earlier).",
            hint="Give this step's hsm.generate_key a distinct 'label' parameter, or, if the "
            "old key is a rehearsal leftover, remove it with the officers before the ceremony.",
            label=label,
        )
    if record is None:
        bits = int(params["bits"]) if algorithm in (8, 10) else None
        generated = keygen.generate_key(
            session, algorithm, role=purpose, zone=zone, label=label, bits=bits, today=day
        )
        record = generated.key
        already = False
    ctx.kill_point()
    data = _key_result(record, purpose)
    return ActionResult(
        f"{purpose.upper()} {label}: algorithm {algorithm}, key tag {data['key_tag']}"
        + (" (already generated with this step's label: not generated again)" if already else ""),
        data,
        already=already,
    )


def backup(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.hsm import keys
    from appliance.hsm.backup import create_backup, load_backup
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import with_backup_key

    session = hsm_session(ctx)
    config = config_of(ctx)
    folder = backups_dir(ctx)
    ceremony = keys.ceremony_key(session)
    # Which backups existed before this step acted, recorded before acting: after a power
    # cut, a backup not in that list is the one this step already wrote.
    marker = ctx.workspace.root / "state" / f"{ctx.step.id}.backups-before.json"
    existing = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if marker.exists():
        before = set(json.loads(marker.read_text(encoding="utf-8")))
        mine = [name for name in existing if name not in before]
        if mine:
            found = load_backup(
                folder / mine[-1], expected_ceremony_key_der=ceremony.public_key_der()
            )
            return _backup_result(found, already=True)
    else:
        atomic.write_text(marker, json.dumps(existing))
    roster = load_roster(ctx)
    cset = roster.set_for(Purpose.BACKUP_KEY, config.hsm.token)
    qs, presented = collect_quorum(
        ctx, roster, cset.set_id, str(params["holders"]), "rebuild the backup key"
    )
    try:
        result = with_backup_key(qs, lambda key: create_backup(session, key, folder))
    finally:
        qs.close()
    ctx.kill_point()
    out = _backup_result(result.backup, already=False)
    data = dict(out.data)
    data["presented"] = [p.as_dict() for p in presented]
    data["not_covered"] = [n.label for n in result.not_covered]
    return ActionResult(out.summary, data)


def _backup_result(found: Any, *, already: bool) -> ActionResult:
    manifest_sha = hashlib.sha256((found.path / "manifest.json").read_bytes()).hexdigest()
    return ActionResult(
        f"Backup {found.path.name}: {len(found.entries)} key(s), manifest SHA-256 {manifest_sha}"
        + (" (already written in this step: not repeated)" if already else ""),
        {
            "backup": found.path.name,
            "keys": [e.label for e in found.entries],
            "manifest_sha256": manifest_sha,
        },
        already=already,
    )


def coverage(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.hsm import coverage as cov

    report = cov.check(hsm_session(ctx), backups_dir(ctx))
    ctx.kill_point()
    for line in report.lines():
        ctx.operator.notify(ctx.step.id, line, "info" if report.ok else "warning")
    data = {
        "ok": report.ok,
        "backup": report.backup,
        "covered": list(report.covered),
        "uncovered": [u.label for u in report.uncovered],
    }
    if not report.ok and params.get("fail_uncovered", True):
        raise ActionFailed(
            f"{len(report.uncovered)} key(s) are not covered by any backup: "
            + ", ".join(u.label for u in report.uncovered),
            hint="Run a backup step (hsm.backup) before the HSM is sealed.",
        )
    return ActionResult(
        "Every key is covered by the latest backup."
        if report.ok
        else f"{len(report.uncovered)} key(s) uncovered (reported, not enforced here).",
        data,
    )


def init_token(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Initialise the token anew for the crypto officers' existing activation set: the
    officers' quorum rebuilds the secret, and the fresh token gets the user PIN derived from
    it, so the same cards activate it (a replacement HSM before a restore). Issuing a first
    activation set (a new appliance) is not bound here yet."""
    import secrets

    from appliance import demo
    from appliance.hsm import module as hsm_module
    from appliance.hsm import token_init
    from appliance.hsm.errors import TokenNotFound
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import activate_hsm

    config = config_of(ctx)
    demo.activate(config)
    label = config.hsm.token
    marker = ctx.workspace.root / "state" / f"{ctx.step.id}.token.json"
    if marker.exists():
        serial = json.loads(marker.read_text(encoding="utf-8"))["serial"]
        try:
            Token(config.hsm.module, label=label, serial=serial)
            return ActionResult(
                f"Token {label} ({serial}) was initialised in this step before the "
                "interruption: not initialised again.",
                {"token": label, "token_serial": serial},
                already=True,
            )
        except TokenNotFound:
            pass
    try:
        roster = load_roster(ctx)
    except OperatorCancelled:  # a new appliance: no roster yet
        from appliance.sharing.roster import Roster

        roster = Roster()
    try:
        cset = roster.set_for(Purpose.HSM_ACTIVATION, label)
    except ApplianceError:
        return _init_first_token(ctx, params, roster, marker)
    if int(params["threshold"]) != cset.threshold:
        raise ActionFailed(
            f"The script asks for {params['threshold']} cards but set {cset.set_id} needs "
            f"{cset.threshold}.",
            hint="Correct the script's threshold to the roster's.",
        )
    try:
        old = Token(config.hsm.module, label=label)
        token_init.delete_softhsm_token(config.hsm.module, label, serial=old.info.serial)
        hsm_module.reload(config.hsm.module)
        replaced: str | None = old.info.serial
    except TokenNotFound:
        replaced = None
    qs, presented = collect_quorum(
        ctx, roster, cset.set_id, str(params["officers"]), f"initialise HSM token {label}"
    )
    so_pin = bytearray(secrets.token_hex(16).encode())
    try:
        serial = activate_hsm(
            qs,
            lambda pin: token_init.init_softhsm_token(
                config.hsm.module, label, so_pin=so_pin, user_pin=pin
            ),
        )
    finally:
        qs.close()
        so_pin[:] = bytes(len(so_pin))
    atomic.write_text(marker, json.dumps({"serial": serial}))
    ctx.kill_point()
    return ActionResult(
        f"Token {label} initialised ({serial}); the officers' set {cset.set_id} activates it."
        + (f" It replaces token {replaced}." if replaced else ""),
        {
            "token": label,
            "token_serial": serial,
            "set_id": cset.set_id,
            "replaced": replaced,
            "presented": [p.as_dict() for p in presented],
        },
    )


def _init_first_token(
    ctx: ActionContext, params: Mapping[str, Any], roster: Any, marker: Path
) -> ActionResult:
    """A new appliance: the officers' set is issued (cards enrolled earlier are provisioned
    and receive their shares), the token is initialised with the user PIN derived from the
    set's secret, and, in the same breath, logged in to generate the ceremony key that signs
    the new roster; the session stays active for the next steps."""
    import secrets

    from appliance.ceremony.actions.sharing import issue_holders
    from appliance.hsm import keygen, keys, token_init
    from appliance.hsm import module as hsm_module
    from appliance.hsm.errors import KeyNotFound, TokenNotFound
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing import roster as rosters
    from appliance.sharing.issue import issue_activation_set

    config = config_of(ctx)
    label = config.hsm.token
    try:  # a token left by an interrupted first initialisation (its PIN is lost)
        old = Token(config.hsm.module, label=label)
        token_init.delete_softhsm_token(config.hsm.module, label, serial=old.info.serial)
        hsm_module.reload(config.hsm.module)
    except TokenNotFound:
        pass
    holders, reader = issue_holders(ctx, str(params["officers"]), "receive your officer's share")
    so_pin = bytearray(secrets.token_hex(16).encode())
    opened: list[Any] = []

    def set_user_pin(pin: bytearray) -> None:
        token_init.init_softhsm_token(config.hsm.module, label, so_pin=so_pin, user_pin=pin)
        opened.append(Token(config.hsm.module, label=label).open(pin))

    try:
        issued = issue_activation_set(
            roster,
            token_label=label,
            threshold=int(params["threshold"]),
            holders=holders,
            choose_pins=reader.choose_pins,
            set_user_pin=set_user_pin,
        )
    finally:
        reader.release()
        so_pin[:] = bytes(len(so_pin))
    session = opened[0]
    ctx.session[HSM_SESSION] = session
    try:
        ceremony = keys.ceremony_key(session)
    except KeyNotFound:
        ceremony = keygen.generate_ceremony_key(session, today=date.fromisoformat(journal_day(ctx)))
    ctx.services.signer = ceremony
    data, _ = rosters.dumps(issued.roster, ceremony)
    ctx.workspace.write_output("roster.json", data)
    atomic.write_bytes(config.paths.media / "roster.json", data)
    atomic.write_text(marker, json.dumps({"serial": session.info.serial}))
    ctx.kill_point()
    return ActionResult(
        f"Token {label} initialised ({session.info.serial}); officers' set {issued.set_id} "
        f"({params['threshold']} of {len(holders)}) activates it; ceremony key "
        f"{ceremony.fingerprint()} signs the new roster.",
        {
            "token": label,
            "token_serial": session.info.serial,
            "set_id": issued.set_id,
            "ceremony_key": ceremony.fingerprint(),
            "roster_sha256": hashlib.sha256(data).hexdigest(),
        },
    )


def restore(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Restore a signed backup onto the (empty) active token with the shareholders' quorum;
    the backup's ceremony key must be the one the room trusts."""
    from appliance.hsm import keys
    from appliance.hsm.errors import KeyNotFound
    from appliance.hsm.restore import restore_backup
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import with_backup_key

    session = hsm_session(ctx)
    config = config_of(ctx)
    name = str(params["input"])
    manifest = ctx.load_input(name, "the backup's manifest.json")
    source = Path(ctx.inputs.get(name) or ctx.operator.locate_input(ctx.step.id, name, "backup"))
    folder = source.parent
    if hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest() != manifest.sha256:
        raise ActionFailed(
            f"The backup folder {folder} does not hold the manifest loaded earlier.",
            hint="Insert the media with the backup whose hash was read aloud.",
        )
    try:
        ceremony = keys.ceremony_key(session)
        present = True
    except KeyNotFound:
        present = False
    if present and session.object_count() > 0:
        restored_labels = sorted(o.label for o in session.key_objects())
        ctx.services.signer = ceremony
        return ActionResult(
            f"The token already holds the restored keys ({len(restored_labels)}): not "
            "restored again.",
            {"keys": restored_labels, "ceremony_key": ceremony.fingerprint()},
            already=True,
        )
    roster = load_roster(ctx)
    cset = roster.set_for(Purpose.BACKUP_KEY, config.hsm.token)
    require_script_quorum(params, cset)
    qs, presented = collect_quorum(
        ctx, roster, cset.set_id, str(params["holders"]), "rebuild the backup key"
    )
    trusted = ctx.services.ceremony_fingerprint
    try:
        result = with_backup_key(
            qs, lambda key: restore_backup(session, folder, key, expected_fingerprint=trusted)
        )
    finally:
        qs.close()
    ctx.kill_point()
    ctx.services.signer = keys.ceremony_key(session)
    return ActionResult(
        f"Restored {len(result.keys)} key(s) from backup {result.backup.path.name}; ceremony "
        f"key {result.ceremony_key_fingerprint}.",
        {
            "backup": result.backup.path.name,
            "keys": sorted(k.label for k in result.keys),
            "ceremony_key": result.ceremony_key_fingerprint,
            "presented": [p.as_dict() for p in presented],
        },
    )


def bind(registry: Registry) -> None:
    require("appliance.hsm.keygen", "appliance.sharing.quorum")

    registry.bind("hsm.activate", activate)
    registry.bind("hsm.generate_key", generate_key)
    registry.bind("hsm.backup", backup)
    registry.bind("hsm.coverage", coverage)
    registry.bind("hsm.init", init_token)
    registry.bind("hsm.restore", restore)
