"""The worker service: hosts one agent instance, runs it, obeys control, reports every run.

Loops (root tasks): the run loop (built-in agents generate their own work), the task consumer
(``helm.tasks.<agent>``, shared by the agent's instances through one consumer group), the control
consumer (every instance reads every command), heartbeats, and a periodic re-read of the desired
state in Redis. On stop, the run in flight finishes and its telemetry is sent before exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import zlib
from collections.abc import Coroutine
from typing import Any

import psutil
from prometheus_client import CollectorRegistry

from helix import TokenCounter
from helm import contracts as c
from helm.base import BaseApp
from helm.budgets import budget_manager
from helm.bus import TRANSIENT, Bus, Consumer
from helm.client import AgentSpec, load_client
from helm.config import AgentConfig, ConfigError, load_config
from helm.runner import sleep_or_stop
from helm.state import AgentMeta
from helm.store import Store
from services.worker import builtin
from services.worker.budget import BudgetGate
from services.worker.control import ControlState
from services.worker.data import Generator
from services.worker.handlers import AgentFn, Identity, answer_for, execute, plan
from services.worker.llm.base import Provider
from services.worker.llm.offline import OfflineProvider
from services.worker.metrics import WorkerMetrics
from services.worker.settings import WorkerSettings

log = logging.getLogger(__name__)


def make_provider(settings: WorkerSettings) -> Provider:
    """Claude when a key is set, otherwise the offline provider (which says so everywhere)."""
    if settings.anthropic_api_key is not None:
        from services.worker.llm.anthropic_provider import AnthropicProvider

        base_url = os.environ.get("ANTHROPIC_BASE_URL") or None
        return AnthropicProvider(settings.anthropic_api_key.get_secret_value(), base_url=base_url)
    return OfflineProvider(delay_ms=settings.offline_delay_ms)


class WorkerApp(BaseApp):
    name = "worker"

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        agent_fn: AgentFn | None = None,
        chat_fn: AgentFn | None = None,
        agent_config: AgentConfig | None = None,
        bus: Bus | None = None,
        store: Store | None = None,
        provider: Provider | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(
            settings, ops_port=settings.ops_port, bus=bus, store=store, registry=registry
        )
        self.ws = settings
        self.config = load_config(settings.config_file)
        self.spec = load_client(settings.app).agents.get(settings.agent) if settings.app else None
        if settings.app and self.spec is None:
            raise ConfigError(f"{settings.app} registers no agent {settings.agent!r}")
        agent = agent_config or (
            _config_of(self.spec) if self.spec else self.config.agent(settings.agent)
        )
        if agent is None:
            raise ConfigError(f"agent {settings.agent!r} is not in {settings.config_file}")
        self.agent = agent
        self.ident = Identity(agent.id, agent.service, settings.instance_id)
        self.topics = (*c.FIXED_TOPICS, c.tasks_topic(agent.id))
        self.provider = provider or make_provider(settings)
        self.state = ControlState(agent.id)
        self.gate = BudgetGate(
            budget_manager(self.store), self.ident, self.config.org.id, TokenCounter()
        )
        self.metrics = WorkerMetrics(self.registry)
        self.agent_fn, self.chat_fn = self._functions(agent, agent_fn, chat_fn, settings)
        self.control_consumer: Consumer | None = None
        self.pending_acks: set[asyncio.Future[Any]] = set()
        self.runs_total = 0
        self.seq = 0  # numbers this instance's runs, so lost telemetry shows as a gap
        self.in_flight = 0
        self.process = psutil.Process()

    def _functions(
        self,
        agent: AgentConfig,
        agent_fn: AgentFn | None,
        chat_fn: AgentFn | None,
        s: WorkerSettings,
    ) -> tuple[AgentFn | None, AgentFn]:
        if agent_fn is not None or chat_fn is not None:
            return agent_fn, chat_fn or agent_fn  # type: ignore[return-value]
        if self.spec is not None:
            spec = self.spec

            async def user(ctx: Any) -> str:
                return await spec(str(ctx.notes.get("query", "")), ctx)

            return None, user
        seed = s.seed if s.seed is not None else zlib.crc32(s.instance_id.encode())
        work: builtin.Classifier | builtin.Processor
        if agent.kind == "classifier":
            work = builtin.Classifier(Generator(seed))
        elif agent.kind == "processor":
            work = builtin.Processor(Generator(seed))
        else:
            raise ConfigError(
                f"agent {agent.id!r} has kind {agent.kind!r}; run it with `helmctl worker APP`"
            )

        async def chat(ctx: Any) -> str:
            return await builtin.chat(ctx, ctx.notes["query"])

        return (work.run if s.autorun else None), chat

    async def start(self) -> None:
        await super().start()
        if self.spec is not None:
            await self.store.join_hierarchy(
                _meta_of(self.spec, self.agent, self.ws.app, self.provider.name, self.config.org.id)
            )
        await self.reconcile()
        log.info(
            "worker %s for agent %s (service %s) on provider %s",
            self.ident.instance_id,
            self.agent.id,
            self.agent.service,
            self.provider.name,
        )

    async def reconcile(self) -> None:
        """Read the desired state from Redis: the truth, whatever commands were missed."""
        control = await self.store.get_control(self.agent.id)
        anomaly = await self.store.get_anomaly(self.agent.id)
        self.state.load(control, anomaly)
        self.metrics.paused.labels(self.agent.id).set(1 if control.paused else 0)

    def loops(self, stop: asyncio.Event) -> list[Coroutine[Any, Any, None]]:
        control = self.control_consumer = self.bus.consumer(
            [c.CONTROL], None, self.on_command, from_latest=True
        )
        tasks = self.bus.consumer(
            [c.tasks_topic(self.agent.id)], f"worker.{self.agent.id}", self.on_task
        )
        loops = [control.run(stop), tasks.run(stop), self.heartbeats(stop), self.reconciler(stop)]
        if self.agent_fn is not None:
            loops.append(self.run_loop(stop))
        return loops

    async def on_command(self, cmd: c.ControlCommand) -> None:
        if self.state.apply(cmd):
            log.info("%s from %s: %s", type(cmd).__name__, cmd.actor, cmd.reason or "-")
            self.metrics.paused.labels(self.agent.id).set(1 if self.state.paused else 0)

    async def run_loop(self, stop: asyncio.Event) -> None:
        assert self.agent_fn is not None
        while await self.state.wait_runnable(stop):
            await self.run_once(self.agent_fn)
            if self.agent.run_interval_s:
                await sleep_or_stop(stop, self.agent.run_interval_s)

    async def run_once(self, fn: AgentFn, task: c.TaskRequested | None = None) -> c.RunCompleted:
        ctx = plan(self.agent, self.state, self.ident, self.provider, self.gate)
        if task is not None:
            ctx.notes["query"] = task.input
        self.in_flight += 1
        self.metrics.in_flight.labels(self.agent.id).inc()
        try:
            result = await execute(
                fn, ctx, self.ident, self.config, self.provider.name, task.task_id if task else None
            )
            self.seq += 1
            result.event = result.event.model_copy(update={"seq": self.seq})
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.labels(self.agent.id).dec()
        self._track_ack(await self.bus.publish_soon(c.TELEMETRY, result.event))
        self._observe(result.event)
        if task is not None and (reply := answer_for(task, result)) is not None:
            await self.bus.publish(c.REPLIES, reply)
        return result.event

    def _track_ack(self, ack: asyncio.Future[Any]) -> None:
        """Telemetry is acknowledged in the background so the next run need not wait for it;
        a failed delivery is logged with the run id, never dropped silently."""
        self.pending_acks.add(ack)
        ack.add_done_callback(self._acked)

    def _acked(self, ack: asyncio.Future[Any]) -> None:
        self.pending_acks.discard(ack)
        if not ack.cancelled() and ack.exception() is not None:
            self.metrics.telemetry_failures.labels(self.agent.id).inc()
            log.error("telemetry not delivered: %r", ack.exception())

    def _observe(self, ev: c.RunCompleted) -> None:
        self.runs_total += 1
        m, a = self.metrics, ev.agent_id
        m.runs.labels(a, ev.outcome).inc()
        m.tokens.labels(a, "input").inc(ev.input_tokens)
        m.tokens.labels(a, "output").inc(ev.output_tokens)
        m.cost.labels(a).inc(ev.cost)
        m.retries.labels(a).inc(ev.retries)
        m.duration.labels(a).observe(ev.latency_ms / 1000)
        if ev.ttft_ms is not None:
            m.ttft.labels(a).observe(ev.ttft_ms / 1000)

    async def on_task(self, task: c.TaskRequested) -> None:
        """Tasks obey pause and rate limits like any run; they wait in Kafka meanwhile."""
        if task.agent_id != self.agent.id:
            return
        never = asyncio.Event()
        await self.state.wait_runnable(never)
        await self.run_once(self.chat_fn, task)

    async def heartbeats(self, stop: asyncio.Event) -> None:
        self.process.cpu_percent(None)
        while not stop.is_set():
            await self.bus.publish(c.HEARTBEATS, self.heartbeat())
            await sleep_or_stop(stop, self.ws.heartbeat_interval_s)

    def heartbeat(self) -> c.InstanceHeartbeat:
        state = (
            "paused"
            if self.state.paused
            else ("probing" if self.state.control.probe else "running")
        )
        return c.InstanceHeartbeat(
            agent_id=self.agent.id,
            service_id=self.agent.service,
            instance_id=self.ident.instance_id,
            pid=os.getpid(),
            state=state,
            cpu_percent=self.process.cpu_percent(None),
            rss_mb=self.process.memory_info().rss / 1_048_576,
            in_flight=self.in_flight,
            runs_total=self.runs_total,
            provider=self.provider.name,
        )

    async def reconciler(self, stop: asyncio.Event) -> None:
        """Re-read the desired state; while Redis is away, keep obeying the last one known."""
        while not await sleep_or_stop(stop, self.ws.reconcile_interval_s):
            try:
                await self.reconcile()
            except TRANSIENT as exc:
                log.warning("cannot read the desired state (%r); keeping the last one", exc)

    async def stop(self) -> None:
        if self.pending_acks:
            await asyncio.wait(list(self.pending_acks), timeout=10)
        await self.provider.close()
        await super().stop()


def _config_of(spec: AgentSpec) -> AgentConfig:
    helix = spec.helix
    return AgentConfig(
        id=spec.name,
        service=spec.service,
        kind="custom",
        model=spec.model,
        max_tokens=spec.max_tokens,
        run_interval_s=0,
        min_instances=int(helix.get("min_instances", 1)),
        max_instances=int(helix.get("max_instances", max(1, int(helix.get("min_instances", 1))))),
    )


def _meta_of(spec: AgentSpec, agent: AgentConfig, app: str, provider: str, org: str) -> AgentMeta:
    return AgentMeta(
        agent_id=agent.id,
        org_id=org,
        service_id=agent.service,
        kind="custom",
        model=agent.model,
        provider=provider,
        min_instances=agent.min_instances,
        max_instances=agent.max_instances,
        app=app,
        helix=spec.helix,
    )


def build_app(settings: WorkerSettings, **kwargs: Any) -> WorkerApp:
    return WorkerApp(settings, **kwargs)
