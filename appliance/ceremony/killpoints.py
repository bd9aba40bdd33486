"""Test hook: kill this process at a chosen point, to prove power-cut resume.

`APPLIANCE_KILL_AT` names one point per process run:
- `journal:N:before|torn|after`: the Nth journal write of this process that makes progress
  (the resume entry and re-established session actions are not counted); `before` dies
  before writing, `torn` writes half the line (fsync'd) then dies, `after` dies once the
  line is durable;
- `action:STEP`: inside the action of step STEP, after its side effect and before the
  journal records the result (actions call `ActionContext.kill_point()` there).
SIGKILL leaves no chance to clean up, which is the point. Unset, the hook costs nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "APPLIANCE_KILL_AT"


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def journal_phase(write_number: int) -> str | None:
    """The phase at which to die for this journal write, or None."""
    plan = os.environ.get(ENV, "")
    if not plan.startswith("journal:"):
        return None
    parts = plan.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) != write_number:
        return None
    return parts[2] if parts[2] in ("before", "torn", "after") else None


def in_action(step_id: str) -> None:
    if os.environ.get(ENV, "") == f"action:{step_id}":
        die()
