"""A verified journal as text for people: who did what, when, and every exception."""

from __future__ import annotations

from appliance import pgpwords
from appliance.ceremony.journal import Verification


def summarize(v: Verification) -> list[str]:
    state = v.state
    entries = state.entries
    out: list[str] = []
    status = {
        "ended": "ceremony ENDED",
        "aborted": "ceremony ABORTED",
        "unfinished": "ceremony UNFINISHED (resumable)",
        "empty": "EMPTY",
    }[state.outcome]
    out.append(f"Journal {state.path}: chain intact, {len(entries)} entries, {status}.")
    if state.torn:
        out.append(
            f"Torn last line: {len(state.torn)} bytes of seq {len(entries)} were cut by a power "
            "cut while being written. This is not tampering; resuming the ceremony discards "
            "them and re-checks that step."
        )
    if not entries:
        return out
    start = entries[0].data
    script = start.get("script", {})
    air = start.get("airgap", {})
    out.append(
        f"Script: {script.get('id')} version {script.get('version')} "
        f"(SHA-256 {script.get('sha256')})"
    )
    out.append(
        f"Started {entries[0].time} on appliance {start.get('appliance')}"
        + (f", image {start.get('image_sha256')}" if start.get("image_sha256") else "")
        + "; air gap: "
        + ("ok" if air.get("ok") else "FAILED")
        + ("" if air.get("enforced", True) else " (NOT ENFORCED: development)")
    )
    people = start.get("attendance", {})
    out.append("Present: " + ", ".join(f"{seat} {name}" for seat, name in people.items()))
    for e in entries[1:]:
        if e.kind == "step_done":
            seats = e.data.get("confirmed_by", [])
            who = ", ".join(f"{s} ({people.get(s, '?')})" for s in seats) or "nobody"
            out.append(f"{e.time}  {e.step}: done, confirmed by {who}")
        elif e.kind == "action":
            if e.data.get("ok"):
                flag = " [already done: not repeated]" if e.data.get("already") else ""
                flag += " [re-established after resume]" if e.data.get("reestablished") else ""
                out.append(
                    f"{e.time}  {e.step}: {e.data.get('action')}: {e.data.get('summary')}{flag}"
                )
            else:
                out.append(
                    f"{e.time}  {e.step}: {e.data.get('action')} FAILED: {e.data.get('error')}"
                )
        elif e.kind == "exception":
            out.append(
                f"{e.time}  {e.step}: EXCEPTION by {e.actor}: {e.data.get('text')} "
                f"(about: {e.data.get('check')})"
            )
        elif e.kind == "resume":
            out.append(
                f"{e.time}  RESUMED at step {e.data.get('at_step')}"
                + (
                    f" (discarded {e.data.get('torn_bytes')} torn bytes)"
                    if e.data.get("torn_bytes")
                    else ""
                )
            )
        elif e.kind == "abort":
            out.append(f"{e.time}  ABORTED: {e.data.get('reason')}")
        elif e.kind == "end":
            out.append(f"{e.time}  END: {e.data.get('exceptions')} exception(s)")
            for path, digest in e.data.get("outputs", {}).items():
                out.append(f"    output {path}  SHA-256 {digest}")
    exceptions = sum(1 for e in entries if e.kind == "exception")
    out.append(f"Exceptions: {exceptions}")
    if v.signatures:
        keys = sorted({s.key_fingerprint for s in v.signatures})
        out.append(
            f"Signatures: {len(v.signatures)} valid, by ceremony key "
            + ", ".join(keys)
            + f"; last covers seq {v.signatures[-1].head_seq}"
        )
    else:
        out.append("Signatures: NONE (no ceremony key was available)")
    if v.unsigned_tail:
        out.append(f"Not covered by a signature: the last {v.unsigned_tail} entries.")
    head = entries[-1].digest
    out.append(f"Head: {head}")
    out.append("Head words (first 8 bytes): " + pgpwords.phrase(bytes.fromhex(head)[:8]))
    return out
