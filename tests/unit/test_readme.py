"""The README stays true: every setting and every API route is in it."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.settings_doc import rows

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [var for var, *_ in rows() if f"`{var}`" not in README]
    assert missing == [], f"settings missing from README.md: {missing}"


def test_the_two_commands_come_first() -> None:
    assert README.index("make run") < README.index("## Architecture")
    assert README.index("make test") < README.index("## Architecture")


def test_every_route_is_documented() -> None:
    from services.gateway.routes import router

    paths = {re.sub(r"\{[^}]+\}", "{id}", getattr(r, "path", "")) for r in router.routes}
    missing = []
    for path in sorted(paths | {"/ws", "/healthz", "/metrics"}):
        tail = path.rsplit("/", 1)[-1]
        if path not in README and f"/{tail}`" not in README and f"`{path}`" not in README:
            missing.append(path)
    assert missing == [], f"routes missing from README.md: {missing}"
