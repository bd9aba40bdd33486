"""Reports on the roster: what is getting old or thin, each finding with the action to take.

- attestations older than 12 months (or never made);
- cards older than N years (default 5), or not retested within N years;
- sets whose live members are within one of the threshold (one more loss and the set is
  dead) or already below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.sharing.envelope import Purpose
from appliance.sharing.roster import Roster, now_utc, parse_stamp

HOLDER_PURPOSES = (Purpose.HSM_ACTIVATION, Purpose.BACKUP_KEY)


@dataclass(frozen=True)
class Finding:
    kind: str  # attestation-stale | card-old | retest-overdue | set-thin | set-dead
    set_id: str
    card_serial: str  # "" for set-wide findings
    message: str
    action: str


def _years(n: int) -> timedelta:
    return timedelta(days=round(365.25 * n))


def report(
    roster: Roster,
    *,
    now: datetime | None = None,
    card_max_years: int = 5,
    retest_max_years: int = 5,
    attestation_max_months: int = 12,
) -> list[Finding]:
    today = now or now_utc()
    out: list[Finding] = []
    att_limit = today - timedelta(days=round(30.44 * attestation_max_months))
    for cset in roster.active_sets():
        live = cset.live_members
        spare = cset.spare()
        shape = (
            f"threshold of {cset.threshold}"
            if cset.group_count == 1
            else f"threshold of {cset.threshold} per group, {cset.group_threshold} of "
            f"{cset.group_count} groups"
        )
        if spare < 0:
            out.append(
                Finding(
                    "set-dead",
                    cset.set_id,
                    "",
                    f"set {cset.set_id} ({cset.subject}) has {len(live)} live members for a "
                    f"{shape}: it can no longer be opened",
                    "If this is a backup key, make a new backup under a new set now, while "
                    "the HSM still holds the keys.",
                )
            )
        elif spare <= 1:
            out.append(
                Finding(
                    "set-thin",
                    cset.set_id,
                    "",
                    f"set {cset.set_id} ({cset.subject}) has {len(live)} live members for a "
                    f"{shape}: "
                    + (
                        "one more loss leaves no margin"
                        if spare == 1
                        else "one more loss leaves it unopenable"
                    ),
                    "Add holders with a quorum (appliance: replace/add holder) or rekey to "
                    "more holders.",
                )
            )
        if cset.purpose not in HOLDER_PURPOSES:
            continue
        for m in live:
            last_att = m.last_attestation
            if last_att is None or parse_stamp(last_att) < att_limit:
                out.append(
                    Finding(
                        "attestation-stale",
                        cset.set_id,
                        m.card_serial,
                        f"{m.label}: "
                        + (f"last attestation {last_att[:10]}" if last_att else "never attested")
                        + f", older than {attestation_max_months} months",
                        f"Ask {m.holder} to run `appliance attest` and send the file.",
                    )
                )
            provisioned = parse_stamp(m.card_provisioned_at)
            if provisioned < today - _years(card_max_years):
                out.append(
                    Finding(
                        "card-old",
                        cset.set_id,
                        m.card_serial,
                        f"{m.label}: card provisioned {m.card_provisioned_at[:10]}, older than "
                        f"{card_max_years} years",
                        "Replace the card with a quorum (new card, new share index) and "
                        "revoke the old one; rekey when several are replaced.",
                    )
                )
            last_test = parse_stamp(m.last_retest or m.issued_at)
            if last_test < today - _years(retest_max_years):
                out.append(
                    Finding(
                        "retest-overdue",
                        cset.set_id,
                        m.card_serial,
                        f"{m.label}: "
                        + (
                            f"last retest {m.last_retest[:10]}"
                            if m.last_retest
                            else "never retested"
                        )
                        + f", more than {retest_max_years} years ago",
                        f"Retest the card with {m.holder} at the next ceremony.",
                    )
                )
    return out
