"""Helm's LLM retry policy: classification of every failure, back-off with full jitter."""

from __future__ import annotations

import email.utils
import json

import anthropic
import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.worker.llm.base import FailureKind
from services.worker.llm.retry import (
    Failure,
    IncompleteResponse,
    backoff_delay,
    classify,
    classify_status,
    is_retryable,
    parse_retry_after,
    retry_delay,
)

NOW = 1_900_000_000.0
REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(
    code: int, error_type: str, headers: dict[str, str] | None = None
) -> anthropic.APIStatusError:
    """The exception the SDK raises for ``code``, built the way the SDK builds it."""
    body = {"type": "error", "error": {"type": error_type, "message": f"{error_type}!"}}
    response = httpx2.Response(code, headers=headers, json=body, request=REQUEST)
    return anthropic.APIStatusError(f"Error code: {code}", response=response, body=body)


@pytest.mark.parametrize(
    ("code", "error_type", "kind", "retryable"),
    [
        (429, "rate_limit_error", "rate_limited", True),
        (529, "overloaded_error", "overloaded", True),
        (500, "overloaded_error", "overloaded", True),
        (400, "invalid_request_error", "bad_request", False),
        (413, "request_too_large", "bad_request", False),
        (422, "invalid_request_error", "bad_request", False),
        (500, "api_error", "error", True),
        (503, "api_error", "error", True),
        (504, "timeout_error", "timeout", True),
        (408, "timeout_error", "timeout", True),
        (401, "authentication_error", "error", False),
        (404, "not_found_error", "error", False),
        # an `error` event inside a 200 stream carries no useful status
        (200, "overloaded_error", "overloaded", True),
        (200, "api_error", "error", True),
    ],
)
def test_status_errors_are_classified(
    code: int, error_type: str, kind: FailureKind, retryable: bool
) -> None:
    failure = classify(status_error(code, error_type), now=NOW)

    assert failure is not None
    assert (failure.kind, failure.retryable) == (kind, retryable)
    assert f"{error_type}!" in failure.message


@pytest.mark.parametrize(
    ("exc", "kind", "retryable"),
    [
        (TimeoutError(), "timeout", True),
        (anthropic.APITimeoutError(request=REQUEST), "timeout", True),
        (httpx2.ReadTimeout("slow", request=REQUEST), "timeout", True),
        (anthropic.APIConnectionError(request=REQUEST), "error", True),
        (httpx2.RemoteProtocolError("peer closed", request=REQUEST), "error", True),
        (IncompleteResponse("no message_stop"), "error", True),
        (json.JSONDecodeError("bad", "{", 0), "error", False),
        (anthropic.CredentialsError("no key"), "error", False),
    ],
)
def test_transport_failures_are_classified(
    exc: Exception, kind: FailureKind, retryable: bool
) -> None:
    failure = classify(exc, now=NOW)

    assert failure is not None and (failure.kind, failure.retryable) == (kind, retryable)


def test_what_is_not_a_call_failure_is_left_to_propagate() -> None:
    assert classify(KeyError("bug"), now=NOW) is None


def test_classification_by_status_wins_over_error_type_and_defaults_to_error() -> None:
    assert classify_status(529, "api_error") == "overloaded"
    assert classify_status(None, None) == "error"
    assert classify_status(418, "teapot_error") == "error"
    assert not is_retryable("error", 403) and is_retryable("error", None)


def test_retry_after_is_read_from_the_failed_response() -> None:
    failure = classify(status_error(429, "rate_limit_error", {"retry-after": "3"}), now=NOW)

    assert failure is not None and failure.retry_after_s == 3.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after": email.utils.formatdate(NOW + 4, usegmt=True)}, 4.0),
        ({"retry-after": email.utils.formatdate(NOW - 60, usegmt=True)}, 0.0),
        ({"retry-after": "-1"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers_parse(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


def test_backoff_doubles_then_stops_at_the_cap() -> None:
    top = [backoff_delay(n, base_s=0.5, cap_s=8.0, rng=lambda: 1.0) for n in range(7)]

    assert top == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_delay(3, base_s=0.5, cap_s=8.0, rng=lambda: 0.0) == 0.0


@given(
    retry=st.integers(min_value=0, max_value=10_000),
    draw=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_full_jitter_stays_inside_its_window(retry: int, draw: float) -> None:
    delay = backoff_delay(retry, base_s=0.5, cap_s=8.0, rng=lambda: draw)

    window = min(8.0, 0.5 * 2.0 ** min(retry, 10))  # 2**10 is already far past the cap
    assert 0.0 <= delay <= window


def test_a_servers_retry_after_is_honoured_but_capped() -> None:
    def wait(retry_after: float | None) -> float:
        failure = Failure("rate_limited", True, "429", retry_after)
        return retry_delay(failure, 0, base_s=0.5, cap_s=8.0, rng=lambda: 0.5)

    assert (wait(0.0), wait(3.0), wait(120.0), wait(None)) == (0.0, 3.0, 8.0, 0.25)
