"""Hypothesis strategies for what can arrive on a Helm topic, derived from the contracts.

``event(model)`` draws a valid message as a JSON object straight from the model's fields (types,
bounds, lengths, literals), so a new field is fuzzed without touching this file. ``payloads(base)``
mixes valid events, near-valid ones (one field mutated: see ``mutations.py``) and raw garbage.
``collect`` runs hypothesis's own engine to draw many distinct examples at once, for tests that
publish them to a real broker in one batch.
"""

from __future__ import annotations

import json
import os
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from helm import contracts as c

T = TypeVar("T")
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
CONSUMED = (
    c.TELEMETRY,
    c.HEARTBEATS,
    c.DRIFT,
    c.CONTROL,
    c.ESCALATIONS,
    c.tasks_topic("fuzz-agent"),
    c.REPLIES,
)


@dataclass(frozen=True)
class Payload:
    """One record value to publish (None is a tombstone), how it was made, and its key."""

    value: bytes | None
    kind: str
    field: str | None = None
    key: bytes | None = None


def models_of(base: str) -> list[type[BaseModel]]:
    """The contract classes a topic carries (a discriminated union gives several)."""
    if base.startswith(c.TASKS_PREFIX):
        return [c.TaskRequested]
    spec = c.TOPIC_MESSAGES[base]
    if get_origin(spec) is Annotated:
        spec = get_args(spec)[0]
    return list(get_args(spec)) if get_origin(spec) in (Union, types.UnionType) else [spec]


_BOUND = {Ge: "ge", Gt: "gt", Le: "le", Lt: "lt", MinLen: "min_length", MaxLen: "max_length"}


def bounds(metadata: list[Any]) -> dict[str, Any]:
    """A field's bounds as ``{"ge": 0, "max_length": 128, ...}``."""
    return {_BOUND[type(m)]: getattr(m, _BOUND[type(m)]) for m in metadata if type(m) in _BOUND}


def value_for(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any]:
    """A strategy for JSON values a field of this type and these bounds accepts."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return st.one_of(*[st.none() if a is type(None) else value_for(a, metadata) for a in args])
    if origin is Literal:
        return st.sampled_from(args)
    if origin is list:
        return st.lists(value_for(args[0], []), max_size=4)
    b = bounds(metadata)
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        low = b.get("ge", b["gt"] + 1 if "gt" in b else None)
        high = b.get("le", b["lt"] - 1 if "lt" in b else None)
        return st.integers(min_value=low, max_value=high)
    if annotation is float:
        return st.floats(
            min_value=b.get("ge", b.get("gt")),
            max_value=b.get("le", b.get("lt")),
            exclude_min="gt" in b,
            exclude_max="lt" in b,
            allow_nan=False,
            allow_infinity=False,
        )
    if annotation is str:
        low, high = b.get("min_length", 0), b.get("max_length")
        text = st.text(min_size=low, max_size=max(low, min(high or 40, 40)))
        if high is None:
            return text
        # the longest allowed value now and then (rarely when it is long: 200 kB is valid, slow)
        odds = 7 if high <= 4096 else 63
        return st.integers(0, odds).flatmap(lambda i: st.just("x" * high) if i == 0 else text)
    raise TypeError(f"no strategy for {annotation!r}")


def event(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid message of ``model`` as a JSON object: required fields always, others sometimes."""
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in model.model_fields.items():
        strategy = value_for(info.annotation, info.metadata)
        (required if info.is_required() or name == "type" else optional)[name] = strategy
    return st.fixed_dictionaries(required, optional=optional)


def valid_payloads(base: str) -> st.SearchStrategy[Payload]:
    return st.one_of(*[event(m) for m in models_of(base)]).map(
        lambda d: Payload(json.dumps(d).encode(), "valid")
    )


def garbage() -> st.SearchStrategy[Payload]:
    """Bytes and JSON with no relation to any contract."""
    return st.one_of(
        st.tuples(st.binary(max_size=300), st.binary(min_size=1, max_size=300)).map(
            lambda bk: Payload(bk[0], "bytes", key=bk[1])
        ),
        st.text(max_size=200).map(lambda t: Payload(t.encode(), "text")),
        JSON.map(lambda v: Payload(json.dumps(v).encode(), "json")),
    )


def payloads(base: str) -> st.SearchStrategy[Payload]:
    """What a consumer of ``base`` may be sent: 20 % valid, 60 % near-valid, 20 % garbage."""
    from tests.fuzz.mutations import mutated

    branches = (valid_payloads(base), mutated(base), mutated(base), mutated(base), garbage())
    # one_of would flatten a union topic's models into branches of their own and skew the mix
    return st.integers(0, len(branches) - 1).flatmap(lambda i: branches[i])


def examples_wanted() -> int:
    """Examples per topic: 1,000 in CI; ``HELM_FUZZ_EXAMPLES`` for a longer local hunt."""
    return int(os.environ.get("HELM_FUZZ_EXAMPLES", "1000"))


def collect(strategy: st.SearchStrategy[T], n: int) -> list[T]:
    """``n`` distinct examples drawn by hypothesis's engine (edge cases first, then random),
    seeded by ``HELM_FUZZ_SEED`` so CI is reproducible and a local run can explore further."""
    out: dict[str, T] = {}

    @seed(int(os.environ.get("HELM_FUZZ_SEED", "20240607")))
    @settings(
        max_examples=n * 3 // 2,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def draw(example: T) -> None:
        if len(out) < n:
            out.setdefault(repr(example), example)

    draw()
    return list(out.values())
