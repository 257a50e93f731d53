"""The dashboard in a real browser (Debian's chromium through Playwright) on the whole stack."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    BrowserContext,
    Dialog,
    Locator,
    Page,
    WebSocket,
    expect,
    sync_playwright,
)

from tests.e2e.stack import HELMCTL, RunningStack, start_stack

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
XSS = "<img src=x onerror=alert(1)>"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"{CHROMIUM} is missing: run `make test-deps` (installs Debian's chromium)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            yield context
        finally:
            context.close()


def _card(page: Page, agent_id: str) -> str:
    return f'.agent[data-agent="{agent_id}"]'


def _chart_moves(page: Page, agent_id: str) -> None:
    chart = page.locator(f'{_card(page, agent_id)} .chart[data-series="tokens"]')
    expect(chart).to_have_attribute("data-points", _nonzero(), timeout=60_000)
    before = chart.get_attribute("data-last")
    page.wait_for_function(
        "([sel, last]) => { const c = document.querySelector(sel);"
        " return c && c.dataset.last && c.dataset.last !== last && +c.dataset.points > 1; }",
        arg=[f'{_card(page, agent_id)} .chart[data-series="tokens"]', before],
        timeout=60_000,
    )


def _nonzero() -> re.Pattern[str]:
    return re.compile(r"^[1-9]\d*$")


def test_dashboard_live_anomaly_and_safe_chat(
    running_stack: RunningStack, browser: BrowserContext, output_dir: Path
) -> None:
    page = browser.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(running_stack.dashboard_url)
    assert "token=" not in page.url  # the token leaves the address bar for sessionStorage
    for agent_id in ("classifier", "processor"):
        expect(page.locator(_card(page, agent_id))).to_be_visible(timeout=60_000)
    expect(page.locator("#conn")).to_have_text("live")
    page.evaluate("window.__helmNoReload = true")

    for agent_id in ("classifier", "processor"):
        _chart_moves(page, agent_id)

    card = page.locator(_card(page, "classifier"))
    card.get_by_role("button", name="Simulate anomaly", exact=True).click()
    page.wait_for_selector(
        f'{_card(page, "classifier")} .state[data-state="paused"]', timeout=90_000
    )
    incident = page.locator("#incidents li", has_text="classifier").filter(has_text="paused")
    expect(incident.first).to_be_visible(timeout=30_000)
    assert page.evaluate("window.__helmNoReload") is True, "the page reloaded"
    page.screenshot(path=str(output_dir / "dashboard.png"), full_page=True)

    page.select_option("#chat-agent", "processor")
    page.fill("#chat-input", XSS)
    page.click("#chat-send")
    expect(page.locator("#chat-log .msg.you")).to_contain_text(XSS)
    expect(page.locator("#chat-log .msg.agent, #chat-log .msg.error")).to_have_count(
        1, timeout=60_000
    )
    assert page.locator("img").count() == 0, "user text was parsed as HTML"
    assert dialogs == [], f"a script ran from user text: {dialogs}"
    page.screenshot(path=str(output_dir / "dashboard-chat.png"), full_page=True)


@pytest.fixture(scope="module")
def own_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: the kill switch and a contained service govern every agent of it."""
    workdir = tmp_path_factory.mktemp("own-stack")
    stack = start_stack(workdir)
    try:
        yield stack
    finally:
        code = stack.stop()
        assert code == 0, f"helmctl up exited with {code}:\n{stack.log()[-4000:]}"


def _org_updates(page: Page) -> list[dict[str, Any]]:
    """The organisation's status as the WebSocket delivers it (``scope`` deltas for ``org``)."""
    seen: list[dict[str, Any]] = []

    def on_frame(payload: str | bytes) -> None:
        msg = json.loads(payload)
        delta = msg.get("delta") or {}
        if msg.get("type") == "delta" and delta.get("kind") == "scope" and delta["scope"] == "org":
            seen.append(delta["status"])

    def on_socket(ws: WebSocket) -> None:
        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    return seen


def _paused_badge(card: Locator) -> Locator:
    return card.locator(".agent-head .state").filter(has_text=re.compile(r"^paused$"))


def _read_only_page_cannot_use_it(browser: BrowserContext, url: str) -> None:
    page = browser.new_page()  # a new tab: no token in its sessionStorage
    page.goto(url.split("#", 1)[0])
    expect(page.locator("#org-state")).to_have_text("running", timeout=30_000)
    button = page.get_by_role("button", name="Kill switch", exact=True)
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("title", re.compile("operator token"))
    page.close()


def test_kill_switch_pauses_every_agent_and_releases_them(
    own_stack: RunningStack, browser: BrowserContext, output_dir: Path
) -> None:
    _read_only_page_cannot_use_it(browser, own_stack.dashboard_url)
    page = browser.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", on_dialog)
    updates = _org_updates(page)
    page.goto(own_stack.dashboard_url)
    for agent_id in ("classifier", "processor"):
        expect(page.locator(_card(page, agent_id))).to_be_visible(timeout=60_000)
    expect(page.locator("#conn")).to_have_text("live")
    agents = page.locator(".agent").evaluate_all("cards => cards.map(c => c.dataset.agent)")
    org_state = page.locator("#org-state")
    expect(org_state).to_have_text("running")
    page.evaluate("window.__helmNoReload = true")

    page.get_by_role("button", name="Kill switch", exact=True).click()
    # The reason and the actor are the governor's record, pushed over the WebSocket.
    expect(org_state).to_contain_text("KILL SWITCH ENGAGED", timeout=30_000)
    expect(org_state).to_contain_text("kill switch engaged by operator:")
    expect(org_state).to_contain_text("from the dashboard")
    assert len(dialogs) == 1 and "Every agent" in dialogs[0], dialogs
    assert updates and updates[-1]["state"] == "paused", updates
    for agent_id in agents:
        card = page.locator(_card(page, agent_id))
        expect(_paused_badge(card)).to_be_visible(timeout=30_000)
        expect(card.get_by_role("button", name="Pause", exact=True)).to_be_disabled()
        expect(card.locator(".instances")).to_contain_text("paused", timeout=30_000)
    page.screenshot(path=str(output_dir / "dashboard-kill-switch.png"), full_page=True)

    page.get_by_role("button", name="Release kill switch", exact=True).click()
    expect(org_state).to_have_text("running", timeout=30_000)
    assert len(dialogs) == 2 and "Release the kill switch" in dialogs[1], dialogs
    assert updates[-1]["state"] == "healthy", updates
    for agent_id in agents:
        card = page.locator(_card(page, agent_id))
        expect(_paused_badge(card)).to_have_count(0, timeout=30_000)
        expect(card.get_by_role("button", name="Pause", exact=True)).to_be_enabled()
        _chart_moves(page, agent_id)
    expect(page.get_by_role("button", name="Kill switch", exact=True)).to_be_enabled()
    assert page.evaluate("window.__helmNoReload") is True, "the page reloaded"


def _helmctl(stack: RunningStack, *args: str) -> None:
    """``helmctl ARGS`` pointed at the stack's broker, as a user publishes their own events."""
    done = subprocess.run(
        [HELMCTL, *args],
        env=stack.kafka_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_contained_service_shows_in_the_tree_until_it_is_healthy_again(
    own_stack: RunningStack, browser: BrowserContext, output_dir: Path
) -> None:
    page = browser.new_page()
    page.goto(own_stack.dashboard_url)
    node = page.locator('#hierarchy li[data-service="risk-ops"]')
    expect(node).to_contain_text("service Risk operations", timeout=60_000)
    expect(page.locator("#conn")).to_have_text("live")
    badge = node.locator("[data-service-state]")
    expect(badge).to_have_count(0)
    page.evaluate("window.__helmNoReload = true")

    # An agent governor elsewhere escalates classifier: the service governor contains risk-ops.
    _helmctl(
        own_stack,
        "publish",
        "escalate",
        "--agent",
        "classifier",
        "--service",
        "risk-ops",
        "--attempts",
        "3",
        "--reason",
        "three recoveries failed",
    )
    expect(badge).to_have_text("contained", timeout=30_000)
    expect(node.locator(".scope-reason")).to_contain_text(
        "agent classifier degraded (1 of 2 agents): service-wide limits"
    )
    expect(node.locator(".scope-reason")).to_contain_text("on processor")
    expect(badge).to_have_attribute("title", re.compile(r"\(governor\.service\)$"))
    state = httpx.get(f"{own_stack.base_url}/state", timeout=5).json()
    assert state["services"]["risk-ops"]["state"] == "contained", state["services"]
    page.screenshot(path=str(output_dir / "dashboard-service-contained.png"), full_page=True)

    # An operator resumes classifier: no agent is degraded, the containment is lifted.
    _helmctl(own_stack, "publish", "resume", "--agent", "classifier")
    expect(badge).to_have_count(0, timeout=30_000)
    expect(node.locator(".scope-reason")).to_have_count(0)
    assert page.evaluate("window.__helmNoReload") is True, "the page reloaded"
