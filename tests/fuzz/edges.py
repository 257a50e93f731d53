"""Valid but odd events: every field at an edge its contract still allows, ids that matter.

Where ``strategies.event`` draws any valid value, ``edge_event`` draws the values handlers are
least ready for (the smallest positive float, 10**30 tokens, a timestamp of 0 or 1e300, a
128-character id, an id nobody knows, the organisation-wide ``*``) and aims ids at the agents
and services that really run, so the handlers' deeper paths run too. Every candidate value is
checked against its field with pydantic, so each event decodes: what goes wrong with it is the
handlers' fault, not the contract's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from helm import contracts as c
from tests.fuzz.strategies import Payload, models_of, value_for

FLOATS = (0.0, -0.0, 5e-324, 1e-300, 0.001, 0.5, 0.55, 1.0, 3600.0, 1e300, 1.7976931348623157e308)
INTS = (0, 1, -1, 2, 100, 2**31, 2**53 + 1, 2**63, 10**30, -(10**30))
TEXTS = ("", "x", "\x00", "é" * 64, "\u202e" + "rtl", "line\nbreak", '"quoted"', "<b>&amp;</b>")
IDS = {
    "agent_id": ("classifier", "processor", c.EVERY_AGENT, "ghost-agent", "a" * 128),
    "service_id": ("risk-ops", "default", "ghost-service", "s" * 128),
    "org_id": ("acme", "default", "ghost-org", "o" * 128),
    "instance_id": ("classifier-0", "ghost-instance", "i" * 128),
    "actor": ("operator:fuzz", "operator:" + "o" * 119, "operator", "helm", "governor.agent"),
    "request_id": ("r", "r" * 1000),
}


def _fits(info: FieldInfo, value: Any) -> bool:
    kind: Any = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    try:
        adapter.validate_python(value, strict=False)
    except ValidationError:
        return False
    return True


def edge_value(name: str, info: FieldInfo) -> st.SearchStrategy[Any]:
    """Edge values the field accepts, or any value it accepts when it has no edges."""
    text = str(info.annotation)
    candidates: tuple[Any, ...] = IDS.get(name, ())
    if not candidates and "float" in text:
        candidates = FLOATS
    elif not candidates and "int" in text and "list" not in text:
        candidates = INTS
    elif not candidates and "str" in text and "list" not in text:
        max_length = next((m.max_length for m in info.metadata if hasattr(m, "max_length")), None)
        candidates = (*TEXTS, "z" * max_length) if max_length else TEXTS
    fitting = [v for v in candidates if _fits(info, v)]
    if "None" in text:
        fitting.append(None)
    return st.sampled_from(fitting) if fitting else value_for(info.annotation, info.metadata)


def edge_event(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    fields = {name: edge_value(name, info) for name, info in model.model_fields.items()}
    fields["event_id"] = st.uuids().map(lambda u: u.hex)  # one event, one id: dedupe stays out
    return st.fixed_dictionaries(fields)


def edge_payloads(base: str) -> st.SearchStrategy[Payload]:
    """Valid, odd events of ``base``'s contract."""
    return (
        st.sampled_from(models_of(base))
        .flatmap(edge_event)
        .map(lambda d: Payload(json.dumps(d).encode(), "edge"))
    )
