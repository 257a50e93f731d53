"""Issue 5 acceptance: an organisation budget crossing 80 %, 95 % and 100 % produces one warning,
the throttle and the pause, and the reset resumes the agents. Also the kill switch.

Usage is recorded through Helix's budget manager on Helm's prefix, as a shared gateway would; the
governor's clock is a manual one, moved past the end of the hour for the reset.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from helix import BudgetScope, TokenPeriod
from helix.clock import ManualClock
from helm import contracts as c
from helm.budgets import budget_manager
from helm.state import Constraints, Control, ScopeState
from tests.integration.governor.conftest import Governed, Harness
from tests.waiting import eventually

CONFIG = """
[org]
id = "acme"

[[services]]
id = "risk"

[governor.org.throttle]
rate_limit_per_min = 6
"""
AGENTS = {"a": "risk", "b": "risk"}
THROTTLE = Constraints(rate_limit_per_min=6)


async def test_an_org_budget_warns_throttles_pauses_and_its_reset_resumes_the_agents(
    governed: Governed,
) -> None:
    clock = ManualClock(datetime(2025, 3, 4, 10, 30, tzinfo=UTC).timestamp())
    async with governed(CONFIG, AGENTS, clock=clock, budget_check_s=0.05) as h:
        budgets = budget_manager(h.store, clock)
        await budgets.set_budget(1000, TokenPeriod.HOURLY, BudgetScope.ORGANIZATION, "acme")

        await budgets.record_usage(820, org_id="acme", agent_id="a", service_id="risk")
        await eventually(lambda: _kinds(h, "budget_warning"), 10, what="the warning")
        await budgets.record_usage(140, org_id="acme", agent_id="b", service_id="risk")
        await eventually(lambda: _all(h, lambda ctl: ctl.constraints == THROTTLE), 10)
        for agent in AGENTS:
            throttle = await h.tap.some(c.ConstrainAgent, agent_id=agent, actor="governor.org")
            assert throttle[0].rate_limit_per_min == 6
        assert not (await h.store.get_control("a")).paused

        await budgets.record_usage(60, org_id="acme", agent_id="a", service_id="risk")
        await eventually(lambda: _all(h, lambda ctl: ctl.paused), 10, what="both paused")
        paused = await h.store.get_control("b")
        assert paused.actor == "governor.org" and "org:acme:hourly" in paused.reason

        clock.advance(1800)  # 11:00: a new hourly period
        await eventually(
            lambda: _all(h, lambda ctl: not ctl.paused and ctl.constraints == Constraints()),
            10,
            what="both resumed without limits",
        )
        for agent in AGENTS:
            assert await h.tap.some(c.ResumeAgent, agent_id=agent, actor="governor.org")
        log = [i for i in await h.incidents() if i.kind.startswith("budget_")]
    assert [(i.kind, i.severity, i.scope, i.scope_id) for i in log] == [
        ("budget_warning", "warning", "org", "acme"),
        ("budget_throttled", "warning", "org", "acme"),
        ("budget_exceeded", "critical", "org", "acme"),
        ("budget_reset", "info", "org", "acme"),
    ]
    assert [i.cause_ids for i in log[1:]] == [
        [log[0].event_id],
        [log[1].event_id],
        [log[2].event_id],
    ]
    assert "2 agents (a, b)" in log[2].message


async def test_the_kill_switch_pauses_every_agent_and_its_release_resumes_them(
    governed: Governed,
) -> None:
    async with governed(CONFIG, AGENTS) as h:
        engage = c.PauseAgent(agent_id=c.EVERY_AGENT, actor="operator:ana", reason="leak")
        await h.bus.publish(c.CONTROL, engage)
        await eventually(lambda: _all(h, lambda ctl: ctl.paused), 10, what="every agent paused")
        org = await h.store.get_scope_status("org", "acme")
        assert org.state == ScopeState.PAUSED and org.actor == "operator:ana"
        assert "leak" in (await h.store.get_control("a")).reason

        await h.bus.publish(c.CONTROL, c.ResumeAgent(agent_id=c.EVERY_AGENT, actor="operator:ana"))
        await eventually(lambda: _all(h, lambda ctl: not ctl.paused), 10, what="resumed")
        log = [(i.kind, i.actor, i.cause_ids) for i in await h.incidents()]
    assert log[0] == ("kill_switch_engaged", "operator:ana", [engage.event_id])
    assert [k for k, _, _ in log] == ["kill_switch_engaged", "kill_switch_released"]


async def _kinds(h: Harness, kind: str) -> bool:
    return any(i.kind == kind for i in await h.incidents())


async def _all(h: Harness, ok: Callable[[Control], bool]) -> bool:
    return all([ok(await h.store.get_control(a)) for a in AGENTS])
