"""The engine: a state machine over a script's steps, journaled, resumable after a power cut.

Per step: begin (the CA reads the words) -> [typed confirmation if destructive] -> action
(only when its preconditions hold) -> witness checks -> confirmation by the named role ->
done. Every transition is a journal entry written before the engine moves on, so after a
power cut the journal says exactly where to resume, and each action either is idempotent or
detects (from the journal and the world) that it already happened.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import airgap, buildinfo, signing
from appliance.ceremony import journal
from appliance.ceremony.context import ActionContext, History, Services
from appliance.ceremony.errors import (
    CeremonyAborted,
    RefusedToStart,
    StepRefused,
)
from appliance.ceremony.journal import JournalState, JournalWriter
from appliance.ceremony.model import ActionCall, Script, Step, seat_matches
from appliance.ceremony.operator import Choice, Confirmation, Operator, StepView, TypedConfirmation
from appliance.ceremony.registry import ActionResult, ActionSpec, Registry
from appliance.ceremony.workspace import Workspace
from appliance.config import Config
from appliance.errors import ApplianceError, InternalError


@dataclass(frozen=True)
class Outcome:
    status: str  # "ended" or "aborted"
    journal: Path
    head: str
    resumed: bool
    exceptions: int
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Missing:
    step: str
    line: int | None
    action: str
    reason: str


def unimplemented(script: Script, registry: Registry) -> list[Missing]:
    """Actions the script uses that this appliance cannot run (their layer is missing)."""
    out = []
    for step, call in script.actions():
        reason = registry.why_unavailable(call.name)
        if reason is not None:
            out.append(Missing(step.id, step.line, call.name, reason))
    return out


class Engine:
    def __init__(
        self,
        script: Script,
        registry: Registry,
        operator: Operator,
        workspace: Path | Workspace,
        *,
        config: Config | None = None,
        services: Services | None = None,
        inputs: Mapping[str, str] | None = None,
        clock: Callable[[], str] = journal.utc_now,
    ) -> None:
        self.script = script
        self.registry = registry
        self.operator = operator
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        self.config = config
        self.services = services or Services()
        self.inputs = dict(inputs or {})
        self.clock = clock
        self.session: dict[str, Any] = {}
        self._writer: JournalWriter | None = None
        self._attendance: dict[str, str] = {}
        self._exceptions = 0

    # ---- preconditions ----------------------------------------------------------------
    def check_ready(self) -> None:
        """Refuse to start a script whose actions are not all implemented here."""
        missing = unimplemented(self.script, self.registry)
        if missing:
            lines = "; ".join(
                f"step '{m.step}' (line {m.line}) uses {m.action}, which {m.reason}"
                for m in missing
            )
            raise RefusedToStart(
                f"Script {self.script.id} cannot run on this appliance: {lines}.",
                hint="Nothing was started. Use an appliance build that includes those layers, "
                "or a script without these steps.",
                missing=[m.action for m in missing],
            )

    def _airgap(self) -> dict[str, Any]:
        report = airgap.check(self.services.airgap_root)
        enforced = self.config.airgap.required if self.config else True
        data: dict[str, Any] = {**report.as_dict(), "enforced": enforced}
        if not report.ok:
            if enforced:
                raise RefusedToStart(
                    "The air-gap check failed: " + "; ".join(report.problems),
                    hint="Remove every network path, then start again. Nothing was started.",
                )
            self.operator.notify(
                None,
                "AIR GAP NOT ENFORCED (development configuration): "
                + "; ".join(report.problems)
                + ". The journal records this.",
                "warning",
            )
        return data

    def _check_seats(self, attendance: Mapping[str, str]) -> None:
        missing = [s for s in self.script.required_seats() if not attendance.get(s, "").strip()]
        if missing:
            raise RefusedToStart(
                "Required roles are not present: " + ", ".join(missing) + ".",
                hint="Every seat the script requires must be filled by a named person.",
            )
        for step in self.script.steps():
            for role in step.roles + step.confirm:
                if not any(seat_matches(seat, role) for seat in attendance):
                    raise RefusedToStart(
                        f"Step '{step.id}' (line {step.line}) needs {role}, who is not present.",
                        hint="Fill that seat, then start again.",
                    )

    # ---- run ----------------------------------------------------------------------------
    def run(self) -> Outcome:
        self.check_ready()
        self.workspace.ensure()
        state: JournalState | None = None
        if self.workspace.journal.exists():
            state = journal.read(self.workspace.journal)
        resumed = bool(state and state.entries)
        if state is not None and state.finished:
            return self._seal_finished(state)
        try:
            if state is not None and state.entries:
                self._resume(state)
            else:
                self._start(state)
            self._run_steps()
        except CeremonyAborted as exc:
            return self._abort(exc)
        return self._end(resumed)

    def _start(self, state: JournalState | None) -> None:
        air = self._airgap()
        attendance = dict(
            self.operator.attendance(self.script.required_seats(), _optional(self.script))
        )
        self._check_seats(attendance)
        self._attendance = attendance
        if state is None:
            self._writer = JournalWriter.create(self.workspace.journal, self.clock)
        else:  # a journal whose only line was torn: start over in the same file
            self._writer = JournalWriter(state, self.clock)
        s = self.script
        signer = self.services.signer
        self._writer.append(
            "start",
            {
                "script": {
                    "id": s.id,
                    "title": s.title,
                    "version": s.version,
                    "kind": s.kind,
                    "sha256": s.sha256,
                    "file": Path(s.path).name,
                },
                "appliance": buildinfo.version(),
                "image_sha256": buildinfo.image_hash(),
                "airgap": air,
                "attendance": attendance,
                "ceremony_key": signing.fingerprint(signer.public_key_der()) if signer else None,
            },
            actor="CA",
        )

    def _seal_finished(self, state: JournalState) -> Outcome:
        """A finished journal: sign its end if a power cut came before the signature
        (re-establishing the HSM session for the ceremony key when needed)."""
        self._check_same_script(state)
        if state.entries[-1].kind == "signature":
            raise RefusedToStart(
                f"The workspace {self.workspace.root} holds a finished ceremony ({state.outcome}).",
                hint="Use a fresh workspace for a new ceremony; keep this one as its record.",
            )
        self._writer = JournalWriter(state, self.clock)
        start = state.entries[0].data
        self._attendance = {str(k): str(v) for k, v in start.get("attendance", {}).items()}
        if self.services.signer is None:
            self._writer.append(
                "resume", {"at_step": None, "reason": "sign the end of the ceremony"}, actor="CA"
            )
            for step in self.script.steps():
                if step.action and self._spec(step).session:
                    self._run_action(step, reestablish=True)
        if self.services.signer is None:
            self._writer.close()
            raise RefusedToStart(
                "The ceremony ended but its end is not signed, and no ceremony key is "
                "available to sign it.",
                hint="Run again where the HSM can be activated, or keep the journal as is.",
            )
        self._checkpoint()
        self._writer.close()
        last = next(e for e in state.entries if e.kind in ("end", "abort"))
        return Outcome(
            "ended" if last.kind == "end" else "aborted",
            self._writer.path,
            self._writer.head,
            True,
            int(last.data.get("exceptions", 0)),
            dict(last.data.get("outputs", {})),
        )

    def _check_same_script(self, state: JournalState) -> None:
        script_info = state.entries[0].data.get("script", {})
        if script_info.get("sha256") != self.script.sha256:
            raise RefusedToStart(
                f"The ceremony in {self.workspace.root} ran script "
                f"{script_info.get('id')} with SHA-256 {str(script_info.get('sha256'))[:16]}..., "
                f"not this script ({self.script.id}, {self.script.sha256[:16]}...).",
                hint="Resume with the same script file, or use a fresh workspace.",
            )

    def _resume(self, state: JournalState) -> None:
        self._check_same_script(state)
        start = state.entries[0].data
        air = self._airgap()
        self._attendance = {str(k): str(v) for k, v in start.get("attendance", {}).items()}
        self._exceptions = sum(1 for e in state.entries if e.kind == "exception")
        self._writer = JournalWriter(state, self.clock)
        done = {e.step for e in state.entries if e.kind == "step_done"}
        first = next((s.id for s in self.script.steps() if s.id not in done), None)
        self._writer.append(
            "resume",
            {
                "at_step": first,
                "torn_bytes": len(state.torn),
                "appliance": buildinfo.version(),
                "airgap": air,
            },
            actor="CA",
        )
        if state.torn:
            self.operator.notify(
                None,
                f"The last journal line was cut by a power cut ({len(state.torn)} bytes); "
                "it was discarded and the step it recorded is re-checked.",
                "warning",
            )

    @property
    def writer(self) -> JournalWriter:
        if self._writer is None:
            raise InternalError("the journal is not open")
        return self._writer

    def _history(self) -> History:
        return History(self.writer.entries)

    def _run_steps(self) -> None:
        steps = list(self.script.steps())
        history = self._history()
        done = {e.step for e in history.entries if e.kind == "step_done"}
        started = {e.step for e in history.entries if e.kind == "step_start"}
        # Session actions of finished steps built in-memory state the power cut erased.
        for step in steps:
            if step.id in done and step.action and self._spec(step).session:
                self._run_action(step, reestablish=True)
        for index, step in enumerate(steps):
            if step.id in done:
                continue
            self._run_step(step, index, len(steps), resumed=step.id in started)
            if _last_in_act(self.script, step):
                self._checkpoint()

    def _spec(self, step: Step) -> ActionSpec:
        spec = self.registry.spec(_call(step).name)
        if spec is None:  # the loader checked it
            raise InternalError(f"action of step {step.id} is not declared")
        return spec

    def _run_step(self, step: Step, index: int, total: int, *, resumed: bool) -> None:
        w = self.writer
        act = next(a for a in self.script.acts if a.id == step.act)
        for role in step.roles:
            if not self._seats(role):
                raise StepRefused(f"Step '{step.id}' needs {role}, who is not present.")
        self.operator.begin_step(
            StepView(
                step.id,
                act.title,
                step.title,
                step.roles,
                step.say,
                step.witness,
                step.action.name if step.action else None,
                index + 1,
                total,
                resumed,
            )
        )
        if not resumed:
            w.append(
                "step_start",
                {"act": act.id, "title": step.title, "position": index + 1},
                step=step.id,
                actor=self._seats(step.roles[0])[0] if step.roles else "CA",
            )
        history = self._history()
        action_done = step.action is not None and history.result(step.id) is not None
        if step.action is not None and (not action_done or self._spec(step).session):
            if step.destructive and not action_done:
                self._typed_confirmation(step)
            # A session action recorded before the interruption is re-established, not redone.
            self._run_action(step, reestablish=action_done)
        recorded = {
            str(e.data.get("check"))
            for e in history.entries
            if e.kind == "exception" and e.step == step.id
        }
        for check in step.witness:
            if check in recorded:
                continue
            ok = self.operator.confirm(Confirmation(step.id, "IW", check, "witness"))
            if not ok:
                self._exception(step, "IW", check)
        confirmed: list[str] = []
        for role in step.confirmers:
            seat = self._seats(role)[0]
            prompt = f"{seat}, confirm that step '{step.title}' is complete."
            if not self.operator.confirm(Confirmation(step.id, seat, prompt, "step")):
                self._exception(step, seat, f"{seat} did not confirm the step")
            else:
                confirmed.append(seat)
        w.append(
            "step_done",
            {
                "confirmed_by": confirmed,
                "names": [self._attendance.get(s, "") for s in confirmed],
                "witness_checks": len(step.witness),
            },
            step=step.id,
            actor=confirmed[0] if confirmed else None,
        )

    def _seats(self, role: str) -> list[str]:
        return [seat for seat in self._attendance if seat_matches(seat, role)]

    def _typed_confirmation(self, step: Step) -> None:
        spec = self._spec(step)
        params = _call(step).params
        consequence = str(params.get("consequence") or spec.consequence or step.title)
        phrase = str(params.get("phrase") or step.id.upper())
        seat = self._seats(step.confirmers[0])[0]
        while not self.operator.confirm_typed(
            TypedConfirmation(step.id, seat, consequence, phrase)
        ):
            self._exception(step, seat, f"typed confirmation for: {consequence}")

    def _run_action(self, step: Step, *, reestablish: bool = False) -> ActionResult:
        w = self.writer
        call = _call(step)
        fn = self.registry.implementation(call.name)
        if fn is None:  # check_ready refused scripts with unbound actions
            raise InternalError(f"action {call.name} is not bound")
        performer = self._seats(step.roles[0])[0] if step.roles else "CA"
        while True:
            ctx = ActionContext(
                script=self.script,
                step=step,
                workspace=self.workspace,
                operator=self.operator,
                services=self.services,
                history=self._history(),
                attendance=self._attendance,
                config=self.config,
                session=self.session,
                inputs=self.inputs,
            )
            try:
                result = fn(ctx, call.params)
            except CeremonyAborted:
                raise
            except ApplianceError as exc:
                w.append(
                    "action",
                    {
                        "action": call.name,
                        "ok": False,
                        "error": exc.message,
                        "error_type": type(exc).__name__,
                    },
                    step=step.id,
                    actor=performer,
                )
                self.operator.notify(step.id, exc.operator_text(), "error")
                choice = self.operator.choose(
                    Choice(
                        step.id,
                        "CA",
                        f"{call.name} failed: {exc.message}",
                        ("retry", "abort"),
                        topic="action-failed",
                    )
                )
                if choice == "retry":
                    continue
                raise CeremonyAborted(
                    f"{call.name} failed at step '{step.id}': {exc.message}"
                ) from None
            data: dict[str, Any] = {
                "action": call.name,
                "params": dict(call.params),
                "ok": True,
                "already": result.already,
                "summary": result.summary,
                "result": dict(result.data),
            }
            if reestablish:
                data["reestablished"] = True
            w.append("action", data, step=step.id, actor=performer)
            self.operator.notify(step.id, result.summary)
            if result.reveal:
                self.operator.notify(step.id, result.reveal)
            return result

    def _exception(self, step: Step, role: str, about: str) -> None:
        w = self.writer
        text = self.operator.exception_text(step.id, "IW", about).strip() or "(no text given)"
        w.append(
            "exception", {"check": about, "text": text, "raised_by": role}, step=step.id, actor="IW"
        )
        self._exceptions += 1
        choice = self.operator.choose(
            Choice(
                step.id,
                "CA",
                f"Exception recorded: {text}",
                ("continue", "abort"),
                topic="exception",
            )
        )
        if choice == "abort":
            raise CeremonyAborted(f"aborted after an exception at step '{step.id}': {text}")

    def _checkpoint(self) -> None:
        if self._writer is None or self.services.signer is None:
            return
        try:
            self._writer.sign_head(self.services.signer)
        except ApplianceError as exc:
            # A head left unsigned is visible to `verify journal` (unsigned tail); the
            # ceremony's record stays intact, so the room is told and the run goes on.
            self.operator.notify(
                None, f"The journal head could not be signed: {exc.message}", "warning"
            )

    def _outputs(self) -> dict[str, str]:
        root = self.workspace.root / "outputs"
        found: dict[str, str] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                rel = path.relative_to(root).as_posix()
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found

    def _end(self, resumed: bool) -> Outcome:
        w = self.writer
        outputs = self._outputs()
        w.append(
            "end",
            {
                "exceptions": self._exceptions,
                "outputs": outputs,
                "steps": sum(1 for _ in self.script.steps()),
            },
            actor="CA",
        )
        self._checkpoint()
        w.close()
        return Outcome("ended", w.path, w.head, resumed, self._exceptions, outputs)

    def _abort(self, exc: CeremonyAborted) -> Outcome:
        w = self._writer
        if w is None:
            raise RefusedToStart(f"Aborted before the ceremony started: {exc.message}") from None
        w.append("abort", {"reason": exc.message, "exceptions": self._exceptions}, actor="CA")
        self._checkpoint()
        w.close()
        return Outcome("aborted", w.path, w.head, False, self._exceptions)


def _call(step: Step) -> ActionCall:
    if step.action is None:
        raise InternalError(f"step {step.id} has no action")
    return step.action


def _last_in_act(script: Script, step: Step) -> bool:
    return any(act.steps and act.steps[-1] is step for act in script.acts)


def _optional(script: Script) -> list[str]:
    return [family for family, count in script.roles.items() if count == 0]
