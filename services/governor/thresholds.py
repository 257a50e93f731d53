"""The organisation governor's budget decisions, pure: a budget's status in, actions out.

Helix's alert levels decide: warning at 80 % (an incident), critical at 95 % (throttle: the
``[governor.org] throttle`` limits on every agent under the budget's scope), exceeded at 100 %
(those agents paused). A budget's hold follows its level; when the period resets, or the limit is
raised, the level falls and the throttle and the pause are lifted, so the agents resume.

Each threshold is acted on once per budget and period: incidents and commands have ids derived
from (budget id, period key, level), and the level acted on is remembered (``Mark``), so a check
that finds nothing new decides nothing, and one repeated after a crash repeats the same ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from helix import AlertLevel, BudgetStatus
from helix.periods import period_key
from helm import contracts as c
from helm.config import OrgPolicy
from services.governor.holds import Hold
from services.governor.ledger import Mark
from services.governor.machine import derived_id

ACTOR = "governor.org"
RANK = {AlertLevel.NONE: 0, AlertLevel.WARNING: 1, AlertLevel.CRITICAL: 2, AlertLevel.EXCEEDED: 3}
KINDS: dict[AlertLevel, tuple[str, c.Severity, str]] = {
    AlertLevel.WARNING: ("budget_warning", "warning", "warning (throttle at 95 %, pause at 100 %)"),
    AlertLevel.CRITICAL: ("budget_throttled", "warning", "throttled"),
    AlertLevel.EXCEEDED: ("budget_exceeded", "critical", "paused"),
}


def source(budget_id: str) -> str:
    """The name of a budget's hold on the agents under it."""
    return f"budget:{budget_id}"


@dataclass
class BudgetAction:
    """What to do about one budget now."""

    mark: Mark
    cause: str  # what the commands' ids derive from
    hold: Hold | None = None  # the budget's hold on the agents of its scope (None: no hold)
    apply: bool = False  # the hold changed: put it on (or lift it from) the agents
    reason: str = ""  # why, for the commands
    incidents: list[c.IncidentRecorded] = field(default_factory=list)


def _hold_rank(level: str) -> int:
    """0: no hold, 1: throttle, 2: throttle and pause."""
    return max(0, RANK[AlertLevel(level)] - 1)


def _incident(
    s: BudgetStatus, event_id: str, kind: str, sev: c.Severity, msg: str, causes: list[str]
) -> c.IncidentRecorded:
    return c.IncidentRecorded(
        event_id=event_id,
        severity=sev,
        scope=s.scope.value,
        scope_id=s.scope_id,
        kind=kind,
        message=msg,
        actor=ACTOR,
        cause_ids=causes,
    )


def incident_id(budget_id: str, period: str, what: str) -> str:
    """The id of a budget's incident about ``what`` in ``period``: one per budget and period."""
    return derived_id(f"{budget_id}@{period}", f"budget:{what}")


def plan(
    s: BudgetStatus, mark: Mark | None, agents: list[str], p: OrgPolicy
) -> BudgetAction | None:
    """The action for a budget whose level or period moved since ``mark``; None otherwise."""
    period = period_key(s.period, s.period_start.timestamp())
    level = s.alert_level
    if mark == Mark(period=period, level=level.value):
        return None
    act = BudgetAction(Mark(period=period, level=level.value), f"{s.budget_id}@{period}:{level}")
    usage = (
        f"token budget {s.budget_id} at {s.utilization:.0%} "
        f"({s.used} of {s.limit} tokens, period {period})"
    )
    who = f"{len(agents)} agents ({', '.join(agents) or 'none'})"
    before = AlertLevel(mark.level) if mark and mark.period == period else AlertLevel.NONE
    act.incidents = _crossed(s, period, before, usage, who)
    was, rank = (_hold_rank(mark.level) if mark else 0), _hold_rank(level)
    act.apply = rank != was
    if rank:
        act.reason = f"{usage}: {KINDS[level][2]}"
        act.hold = Hold(
            paused=level == AlertLevel.EXCEEDED,
            constraints=p.throttle,
            actor=ACTOR,
            reason=act.reason,
            cause_ids=[incident_id(s.budget_id, period, level)],
        )
    if mark is not None and rank < was:
        lifted = "pause lifted, still throttled" if rank else "throttle and pause lifted"
        why = "the period reset" if mark.period != period else "the budget has room again"
        act.reason = f"{usage}: {why}; {lifted} for {who}"
        kind = "budget_reset" if mark.period != period else "budget_relaxed"
        eid = incident_id(s.budget_id, period, f"lift:{mark.period}:{mark.level}")
        cause = incident_id(s.budget_id, mark.period, mark.level)
        act.incidents.append(_incident(s, eid, kind, "info", act.reason, [cause]))
    return act


def _crossed(
    s: BudgetStatus, period: str, before: AlertLevel, usage: str, who: str
) -> list[c.IncidentRecorded]:
    """One incident per threshold crossed since ``before``; each cites the one below it."""
    out: list[c.IncidentRecorded] = []
    prev: list[str] = []
    for lvl, (kind, sev, verb) in KINDS.items():
        eid = incident_id(s.budget_id, period, lvl)
        if RANK[before] < RANK[lvl] <= RANK[s.alert_level]:
            tail = "" if lvl == AlertLevel.WARNING else f" {who}"
            msg = f"{usage}: {verb}{tail}; resets at {s.resets_at:%Y-%m-%d %H:%M} UTC"
            out.append(_incident(s, eid, kind, sev, msg, prev))
        prev = [eid]
    return out


def plan_removed(budget_id: str, mark: Mark, agents: list[str]) -> BudgetAction:
    """A budget that was removed: lift whatever it held."""
    scope, scope_id, _ = budget_id.split(":")
    act = BudgetAction(mark, f"{budget_id}@{mark.period}:removed", apply=_hold_rank(mark.level) > 0)
    who = f"{len(agents)} agents ({', '.join(agents) or 'none'})"
    act.reason = f"token budget {budget_id} removed: throttle and pause lifted for {who}"
    if act.apply:
        act.incidents.append(
            c.IncidentRecorded(
                event_id=incident_id(budget_id, mark.period, f"removed:{mark.level}"),
                severity="info",
                scope=cast(c.Scope, scope),
                scope_id=scope_id,
                kind="budget_removed",
                message=act.reason,
                actor=ACTOR,
                cause_ids=[incident_id(budget_id, mark.period, mark.level)],
            )
        )
    return act
