"""Holds: what the outer governors put on an agent, layered over the agent governor's control.

Pure. An agent's desired control (what its workers obey) is its *base* control, decided by the
agent governor or an operator, tightened by every *hold* on it: the service governor's limits or
pause (source ``service:<id>``), a token budget's throttle or pause (``budget:<budget id>``),
the organisation's kill switch (``killswitch``). Guarantees:

- limits only ever get stricter: each one is the lowest of the base and every hold;
- an agent is paused while its base or any hold pauses it, so an agent governor that finishes a
  recovery never resumes an agent its service or its budget still holds;
- lifting a hold restores exactly what the others and the base still ask for;
- an operator's command overrides the holds it contradicts (a resume lifts pauses, a constraint
  command replaces limits), as the worker obeys it directly.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from helm import contracts as c
from helm.state import Constraints, Control
from services.governor.machine import derived_id

KILL_SWITCH = "killswitch"


class Hold(BaseModel):
    """One outer governor's restriction on one agent, with who put it there and why."""

    model_config = ConfigDict(frozen=True)

    paused: bool = False
    constraints: Constraints = Field(default_factory=Constraints)
    actor: str = "helm"
    reason: str = ""
    cause_ids: list[str] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.paused and self.constraints == Constraints()


Holds = dict[str, Hold]


def effective(base: Control, holds: Holds, now: float) -> Control:
    """What the agent's workers must obey: the base control tightened by every hold."""
    limits = base.constraints
    for source in sorted(holds):
        limits = limits.tightened(holds[source].constraints)
    pausing = [holds[s] for s in sorted(holds) if holds[s].paused]
    if pausing and not base.paused:
        h = pausing[0]
        return Control(paused=True, constraints=limits, actor=h.actor, reason=h.reason, updated=now)
    if limits == base.constraints:
        return base
    return base.model_copy(update={"constraints": limits, "updated": now})


def commands_between(
    agent: str, old: Control, new: Control, cause: str, actor: str, reason: str, causes: list[str]
) -> list[c.ControlCommand]:
    """The commands that take a worker obeying ``old`` to ``new`` (none when they agree).

    Pause first and resume last, so an agent is never running under the wrong limits; ids derive
    from ``cause`` and the agent, so the same change decided twice sends the same commands.
    """

    def fields(kind: str, **extra: Any) -> dict[str, Any]:
        event_id = derived_id(cause, f"{agent}:{kind}")
        return {
            "event_id": event_id,
            "agent_id": agent,
            "actor": actor,
            "reason": reason,
            "cause_ids": causes,
            **extra,
        }

    out: list[c.ControlCommand] = []
    if new.paused and not old.paused:
        out.append(c.PauseAgent.model_validate(fields("pause")))
    if new.constraints != old.constraints:
        limits = new.constraints.model_dump()
        out.append(c.ConstrainAgent.model_validate(fields("constrain", **limits)))
    if not new.paused and (old.paused or new.probe != old.probe):
        out.append(c.ResumeAgent.model_validate(fields("resume", probe=new.probe)))
    return out


def within(commands: list[c.ControlCommand], eff: Control) -> list[c.ControlCommand]:
    """The agent governor's commands, made to respect the holds behind ``eff``.

    Limits become the effective ones; a resume is dropped while a hold keeps the agent paused.
    """
    out: list[c.ControlCommand] = []
    for cmd in commands:
        if isinstance(cmd, c.ResumeAgent) and eff.paused:
            continue
        if isinstance(cmd, c.ConstrainAgent):
            cmd = cmd.model_copy(update=eff.constraints.model_dump())
        out.append(cmd)
    return out


def after_operator(holds: Holds, cmd: c.ControlCommand) -> Holds:
    """The holds left once an operator's command is obeyed as given."""
    if isinstance(cmd, c.ResumeAgent):
        changed = {s: h.model_copy(update={"paused": False}) for s, h in holds.items()}
    elif isinstance(cmd, c.ConstrainAgent):
        changed = {s: h.model_copy(update={"constraints": Constraints()}) for s, h in holds.items()}
    else:
        return holds
    return {s: h for s, h in changed.items() if not h.empty}
