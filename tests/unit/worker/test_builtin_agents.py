"""The classifier and processor on the offline provider: real parsing, validation and retries."""

from __future__ import annotations

from helm.config import AgentConfig, HelmConfig, ServiceConfig
from services.worker.builtin import Classifier, Processor
from services.worker.control import ControlState
from services.worker.data import Generator
from services.worker.handlers import Identity, execute, plan
from services.worker.llm.offline import OfflineProvider

CONFIG = HelmConfig(
    services=[ServiceConfig(id="s")],
    agents=[AgentConfig(id="classifier", service="s", batch_size=5)],
)
IDENT = Identity("classifier", "s", "classifier-0")


async def run_classifier(state: ControlState, seed: int = 7) -> tuple[str, object]:
    provider = OfflineProvider(delay_ms=0)
    ctx = plan(CONFIG.agents[0], state, IDENT, provider, None)
    out = await execute(Classifier(Generator(seed)).run, ctx, IDENT, CONFIG, provider.name)
    return out.output, out.event


async def test_a_normal_classifier_run_is_clean_and_confident() -> None:
    _, ev = await run_classifier(ControlState("classifier"))
    assert ev.outcome == "ok" and ev.retries == 0 and ev.malformed == 0  # type: ignore[attr-defined]
    assert ev.batch_size == 5 and ev.provider == "offline"  # type: ignore[attr-defined]
    assert ev.cost == 0.0  # type: ignore[attr-defined]  # nobody is billed for the offline provider
    assert 0.7 <= ev.confidence <= 1.0  # type: ignore[attr-defined]
    assert ev.input_tokens > 100 and ev.output_tokens > 20  # type: ignore[attr-defined]


async def test_an_injected_anomaly_grows_batches_and_malformed_records_are_rejected_after_retries() -> (
    None
):
    from helm import contracts as c

    state = ControlState("classifier")
    state.apply(
        c.InjectAnomaly(
            agent_id="classifier", duration_s=60, batch_multiplier=8, malformed_ratio=0.3
        )
    )
    _, normal = await run_classifier(ControlState("classifier"), seed=3)
    _, ev = await run_classifier(state, seed=3)
    assert ev.batch_size == 40  # type: ignore[attr-defined]
    assert ev.malformed > 0 and ev.retries == 2  # type: ignore[attr-defined]
    assert ev.confidence < normal.confidence  # type: ignore[attr-defined]
    assert ev.total_tokens > 5 * normal.total_tokens  # type: ignore[attr-defined]


async def test_the_offline_provider_is_deterministic() -> None:
    one, _ = await run_classifier(ControlState("classifier"), seed=11)
    two, _ = await run_classifier(ControlState("classifier"), seed=11)
    assert one == two


async def test_the_processor_summarises_and_rejects_garbled_reports() -> None:
    from helm import contracts as c

    agent = AgentConfig(id="processor", service="s", batch_size=1)
    cfg = HelmConfig(services=[ServiceConfig(id="s")], agents=[agent])
    ident = Identity("processor", "s", "p-0")
    state = ControlState("processor")
    state.apply(
        c.InjectAnomaly(
            agent_id="processor", duration_s=60, batch_multiplier=10, malformed_ratio=1.0
        )
    )
    provider = OfflineProvider(delay_ms=0)
    ctx = plan(agent, state, ident, provider, None)
    out = await execute(Processor(Generator(5)).run, ctx, ident, cfg, provider.name)
    assert out.event.malformed == 10 and out.event.retries == 20
    assert out.event.outcome == "invalid_output"
