"""Near-valid messages: a valid event of the topic's contract with one thing wrong.

Each mutation says what it broke (``Payload.kind``) and where (``Payload.field``). Some mutations
can leave a message valid (a string where a number is expected may still parse, a duplicate key
may repeat a good value); the tests judge every payload with the contract itself, not by how it
was made.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from tests.fuzz.strategies import JSON, JSON_SCALARS, Payload, bounds, event, models_of

Draw = st.DrawFn
Mutation = Callable[[Draw, type[BaseModel], dict[str, Any]], Payload]
HOLE = "\x00HOLE\x00"
WRONG_VALUES: tuple[Any, ...] = (
    [],
    {},
    "text",
    "",
    12345,
    -1,
    1.5,
    True,
    None,
    [1, "a"],
    {"a": {"b": []}},
)
BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xe2\x82")
EMPTY = (None, b"", b" ", b"null", b"{}", b"[]", b"\x00", b'""', b"0", b"\n")
TYPE_NAMES = (
    "RunCompleted",
    "PauseAgent",
    "TaskAnswered",
    "DeadLettered",
    "Nope",
    "",
    "pauseagent",
)


def _dumps(d: dict[str, Any]) -> bytes:
    return json.dumps(d).encode()


def _field(draw: Draw, model: type[BaseModel], where: Callable[[Any], bool] = bool) -> str:
    names = sorted(n for n, info in model.model_fields.items() if where(info))
    return str(draw(st.sampled_from(names or sorted(model.model_fields))))


def _fill(d: dict[str, Any], name: str, raw: bytes) -> bytes:
    """``d`` serialised with the JSON text ``raw`` as the value of ``name``."""
    return _dumps({**d, name: HOLE}).replace(json.dumps(HOLE).encode(), raw)


def wrong_type(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model)
    return Payload(_dumps({**d, name: draw(st.sampled_from(WRONG_VALUES))}), "wrong_type", name)


def out_of_range(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model, lambda info: bool(bounds(info.metadata)))
    b = bounds(model.model_fields[name].metadata)
    options: list[Any] = []
    if "ge" in b:
        options += [b["ge"] - 1, b["ge"] - 1e-9, -(10**30)]
    if "gt" in b:
        options += [b["gt"], b["gt"] - 1]
    for high in (b.get("le"), b.get("lt")):
        if high is not None:
            options += [high + 1, high + 1e-9, 10**30]
    if "max_length" in b:
        options.append("y" * (b["max_length"] + 1))
    if b.get("min_length"):
        options.append("")
    return Payload(_dumps({**d, name: draw(st.sampled_from(options))}), "out_of_range", name)


def missing_required(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    required = [n for n, info in model.model_fields.items() if info.is_required()] + ["type"]
    name = str(draw(st.sampled_from(sorted(required))))
    return Payload(_dumps({k: v for k, v in d.items() if k != name}), "missing_required", name)


def huge_string(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model)
    size = draw(st.integers(min_value=2_001, max_value=300_000))
    return Payload(_dumps({**d, name: "h" * size}), "huge_string", name)


def wrong_discriminator(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    kind = draw(st.sampled_from(TYPE_NAMES) | JSON_SCALARS)
    return Payload(_dumps({**d, "type": kind}), "wrong_discriminator", "type")


def nested_garbage(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model)
    depth = draw(st.integers(min_value=1, max_value=5_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = draw(JSON)
    raw = (opener * depth + json.dumps(inner) + closer * depth).encode()
    return Payload(_fill(d, name, raw), "nested_garbage", name)


def non_finite(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model, lambda info: "float" in str(info.annotation))
    number = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    return Payload(_dumps({**d, name: number}), "non_finite", name)


def invalid_utf8(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model, lambda info: "str" in str(info.annotation))
    raw = b'"ok' + draw(st.sampled_from(BAD_UTF8)) + b'"'
    return Payload(_fill(d, name, raw), "invalid_utf8", name)


def empty(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    return Payload(draw(st.sampled_from(EMPTY)), "empty")


def duplicate_keys(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    name = _field(draw, model)
    again = json.dumps(draw(JSON_SCALARS | st.sampled_from(WRONG_VALUES)))
    text = _dumps(d)[:-1] + (", " if d else "").encode() + f'"{name}": {again}}}'.encode()
    return Payload(text, "duplicate_keys", name)


def truncated(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    text = _dumps(d)
    return Payload(text[: draw(st.integers(0, len(text) - 1))], "truncated")


def other_encoding(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    codec = draw(st.sampled_from(["utf-16", "utf-32", "utf-8-sig", "utf-16-be"]))
    return Payload(json.dumps(d).encode(codec), f"encoding:{codec}")


def unknown_fields(draw: Draw, model: type[BaseModel], d: dict[str, Any]) -> Payload:
    keys = st.text(max_size=10).filter(lambda k: k not in model.model_fields)
    extra = draw(st.dictionaries(keys, JSON, max_size=3))
    return Payload(_dumps({**extra, **d}), "unknown_fields")


MUTATIONS: tuple[Mutation, ...] = (
    wrong_type,
    out_of_range,
    missing_required,
    huge_string,
    wrong_discriminator,
    nested_garbage,
    non_finite,
    invalid_utf8,
    empty,
    duplicate_keys,
    truncated,
    other_encoding,
    unknown_fields,
)


@st.composite
def mutated(draw: Draw, base: str) -> Payload:
    """A valid event of ``base``'s contract with one mutation applied."""
    model = draw(st.sampled_from(models_of(base)))
    how: Mutation = draw(st.sampled_from(MUTATIONS))
    return how(draw, model, draw(event(model)))
