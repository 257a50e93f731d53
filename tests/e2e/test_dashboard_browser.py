"""The dashboard in a real browser (Debian's chromium through Playwright) on the whole stack."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, expect, sync_playwright

from tests.e2e.stack import RunningStack

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
