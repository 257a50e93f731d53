"""The decoding path's properties, without I/O, so hypothesis can shrink any counter-example.

The integration tests push thousands of payloads through the real services; these say why
that works, for any payload: decoding either gives a message of the topic's contract or a
``DecodeError`` with a reason (never another exception), and the dead letter kept for a
refused payload always fits under the size limit, keeping the start of the payload.
"""

from __future__ import annotations

import base64
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helm import codec
from helm import contracts as c
from tests.fuzz.strategies import CONSUMED, Payload, event, models_of, payloads

LIMIT = 1_048_576


@pytest.mark.parametrize("base", CONSUMED)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_decoding_gives_a_message_or_a_reason_never_a_crash(base: str, data: st.DataObject) -> None:
    payload: Payload = data.draw(payloads(base))
    try:
        message = codec.decode(base, payload.value, LIMIT)
    except codec.DecodeError as exc:
        assert str(exc).strip(), "a refusal without a reason"
        return
    assert type(message) in models_of(base)
    assert codec.decode(base, codec.encode(message)) == message  # what is kept re-encodes


@settings(max_examples=100, deadline=None)
@given(
    value=st.one_of(st.none(), st.binary(max_size=64), st.integers(0, 3 * LIMIT).map(b"v".__mul__)),
    key=st.one_of(st.none(), st.binary(min_size=1, max_size=4096)),
    reason=st.text(max_size=5000),
)
def test_a_dead_letter_always_fits_and_keeps_the_start(
    value: bytes | None, key: bytes | None, reason: str
) -> None:
    letter = codec.dead_letter((c.TELEMETRY, 0, 7), "group", reason, value, key, LIMIT)
    assert len(codec.encode(letter)) < LIMIT
    kept = base64.b64decode(letter.payload_b64)
    assert (value or b"").startswith(kept) and len(kept) == min(len(value or b""), LIMIT // 2)
    assert letter.reason.startswith(reason[:2000])


@pytest.mark.parametrize("base", CONSUMED)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_no_number_on_the_wire_is_nan_or_infinite(base: str, data: st.DataObject) -> None:
    model = data.draw(st.sampled_from(models_of(base)))
    floats = [n for n, f in model.model_fields.items() if "float" in str(f.annotation)]
    fields = data.draw(event(model))
    name = data.draw(st.sampled_from(floats))
    fields[name] = data.draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    with pytest.raises(codec.DecodeError, match=name):
        codec.decode(base, json.dumps(fields).encode())
