"""Print every Helm setting as a Markdown table (the README's settings section comes from this)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from helm.settings import CommonSettings, KafkaSettings, RedisSettings
from services.gateway.settings import GatewaySettings
from services.governor.settings import GovernorSettings
from services.observer.settings import ObserverSettings
from services.runtime.settings import RuntimeSettings
from services.worker.settings import WorkerSettings

CLASSES: list[tuple[str, type[BaseSettings]]] = [
    ("all services", CommonSettings),
    ("all services", KafkaSettings),
    ("all services", RedisSettings),
    ("gateway", GatewaySettings),
    ("observer", ObserverSettings),
    ("governor", GovernorSettings),
    ("runtime", RuntimeSettings),
    ("worker", WorkerSettings),
]
NESTED = {"kafka", "redis"}


def rows() -> list[tuple[str, str, str, str]]:
    """(env var, used by, default, description) for every setting, each once."""
    seen: set[str] = set()
    out = []
    for who, cls in CLASSES:
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        base = (
            CommonSettings.model_fields
            if cls not in (CommonSettings, KafkaSettings, RedisSettings)
            else {}
        )
        for name, field in cls.model_fields.items():
            if name in NESTED or (name in base and cls is not CommonSettings):
                continue
            var = _env_name(prefix, name, field)
            if var in seen:
                continue
            seen.add(var)
            out.append((var, who, _default(field), field.description or ""))
    return out


def _env_name(prefix: str, name: str, field: Any) -> str:
    alias = field.validation_alias
    if alias is not None and hasattr(alias, "choices"):
        return str(alias.choices[-1])
    return prefix + name.upper()


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return "(computed)"
    value = field.default
    if isinstance(value, Path):
        return f"`{value.name}` (packaged)"
    if value is None:
        return "none"
    return f"`{value}`" if str(value) else '`""`'


def table() -> str:
    lines = ["| variable | used by | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{var}` | {who} | {default} | {text} |" for var, who, default, text in rows()]
    return "\n".join(lines)


def update(path: Path) -> None:
    """Replace the table between the settings markers of ``path``."""
    text = path.read_text()
    start = text.index("\n", text.index("<!-- settings:start")) + 1
    end = text.index("<!-- settings:end -->")
    path.write_text(text[:start] + table() + "\n" + text[end:])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--update":
        update(Path(sys.argv[2]))
    else:
        sys.stdout.write(table() + "\n")


if __name__ == "__main__":
    main()
