"""Helm's retry policy for LLM calls: how a failure is classified and how long to wait.

The SDK's own retries are off, so this module is the single place that decides. It is pure: no
I/O, no clock, no randomness of its own (callers pass ``now`` and ``rng``). Guarantees:

- Classification is total: every exception an SDK call can raise maps to one ``FailureKind``
  (timeout, rate_limited, overloaded, bad_request, error); anything else is a bug, not a failed
  call, and ``classify`` returns ``None`` so the caller lets it propagate.
- A bad request, an auth or permission failure and any other 4xx except 408/429 is never retried:
  the same request would fail the same way. Rate limits, overload, timeouts, 5xx and lost
  connections are retried (the SDK's own default policy retries the same set).
- The wait before retry ``n`` (0-based) is full jitter, uniform in ``[0, min(cap, base * 2**n))``,
  unless the server said when to come back (``retry-after-ms`` / ``retry-after``); that is
  honoured but never beyond ``cap``, so one call's worst case stays bounded.
"""

from __future__ import annotations

import email.utils
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import anthropic
import httpx2

from services.worker.llm.base import FailureKind

# Anthropic's error JSON says which kind of error it is; a stream can fail after a 200 with an
# `error` event, and then this type is all there is to go on.
_KIND_BY_ERROR_TYPE: dict[str, FailureKind] = {
    "overloaded_error": "overloaded",
    "rate_limit_error": "rate_limited",
    "invalid_request_error": "bad_request",
    "request_too_large": "bad_request",
    "timeout_error": "timeout",
}
_KIND_BY_STATUS: dict[int, FailureKind] = {
    529: "overloaded",
    429: "rate_limited",
    400: "bad_request",
    413: "bad_request",
    422: "bad_request",
    408: "timeout",
}


class IncompleteResponse(Exception):
    """The stream ended cleanly but before ``message_stop``: the answer may be cut short."""


@dataclass(frozen=True)
class Failure:
    """One failed attempt: what kind, whether another attempt may help, and the server's hint."""

    kind: FailureKind
    retryable: bool
    message: str
    retry_after_s: float | None = None


def classify_status(status: int | None, error_type: str | None) -> FailureKind:
    """The outcome for an HTTP status (``None`` when the error came mid-stream) and error type."""
    if status is not None and status in _KIND_BY_STATUS:
        return _KIND_BY_STATUS[status]
    if error_type is not None and error_type in _KIND_BY_ERROR_TYPE:
        return _KIND_BY_ERROR_TYPE[error_type]
    return "error"


def is_retryable(kind: FailureKind, status: int | None) -> bool:
    """Whether another identical attempt could succeed."""
    if kind == "bad_request":
        return False
    if kind == "error":
        # 5xx and failures without a status (mid-stream errors) are the server's; other 4xx
        # (401, 403, 404) are ours and would fail again.
        return status is None or status >= 500
    return True


def classify(exc: BaseException, *, now: float) -> Failure | None:
    """Map an exception raised by one SDK attempt to a ``Failure``; ``None`` if it is not one.

    ``now`` is wall-clock seconds since the epoch, used only for an HTTP-date ``retry-after``.
    """
    if isinstance(exc, TimeoutError | anthropic.APITimeoutError | httpx2.TimeoutException):
        return Failure("timeout", True, _describe(exc))
    if isinstance(exc, anthropic.APIStatusError):
        return _from_status_error(exc, now=now)
    if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError | IncompleteResponse):
        return Failure("error", True, _describe(exc))
    if isinstance(exc, anthropic.AnthropicError | httpx2.HTTPError | json.JSONDecodeError):
        # Credentials problems, responses that do not parse: retrying would not change them.
        return Failure("error", False, _describe(exc))
    return None


def _from_status_error(exc: anthropic.APIStatusError, *, now: float) -> Failure:
    # A status below 400 means the error arrived as an event inside a 200 stream.
    status = exc.status_code if exc.status_code >= 400 else None
    kind = classify_status(status, exc.type)
    retry_after = parse_retry_after(exc.response.headers, now=now) if status else None
    message = f"{status or 'stream'} {exc.type or 'error'}: {exc.api_message or exc.message}"
    return Failure(kind, is_retryable(kind, status), message, retry_after)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def parse_retry_after(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, else ``retry-after`` (seconds or
    an HTTP date). ``None`` when absent or unreadable; never negative."""
    millis = _as_float(headers.get("retry-after-ms"))
    if millis is not None:
        return max(0.0, millis / 1000)
    raw = headers.get("retry-after")
    seconds = _as_float(raw)
    if seconds is not None:
        return max(0.0, seconds)
    return _seconds_until_date(raw, now=now)


def _as_float(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _seconds_until_date(raw: str | None, *, now: float) -> float | None:
    if not raw:
        return None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(retry: int, *, base_s: float, cap_s: float, rng: Callable[[], float]) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**retry))``; ``rng()`` is in ``[0, 1)``.

    Full rather than equal jitter because many workers hit the same limit at once, and spreading
    them over the whole window is what stops them retrying in lockstep.
    """
    ceiling = min(cap_s, base_s * 2.0 ** min(retry, 62))
    return ceiling * rng()


def retry_delay(
    failure: Failure, retry: int, *, base_s: float, cap_s: float, rng: Callable[[], float]
) -> float:
    """How long to wait before retry ``retry`` (0-based) after ``failure``."""
    if failure.retry_after_s is not None:
        return min(failure.retry_after_s, cap_s)
    return backoff_delay(retry, base_s=base_s, cap_s=cap_s, rng=rng)
