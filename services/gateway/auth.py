"""Bearer tokens: an operator token for every change, an optional read token for reads.

Comparison is constant-time (``hmac.compare_digest``); tokens are never logged. An operator is
named in commands as ``operator:<name>`` when the client sends ``X-Helm-Operator``, else by a
short fingerprint of its token, so incidents say who acted without revealing the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from pydantic import SecretStr

from services.gateway.errors import ApiError
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings

NO_OPERATOR_TOKEN = (
    "changes are disabled: no operator token is configured. Set HELM_GATEWAY_OPERATOR_TOKEN "
    "(helmctl up generates one and prints the dashboard URL with it)"
)
_NAME = re.compile(r"[^A-Za-z0-9_.@-]")


def fingerprint(token: str) -> str:
    """A short, non-reversible id of a token, safe for logs and incident actors."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _matches(given: str, expected: SecretStr | None) -> bool:
    if expected is None:
        return False
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


class Guard:
    """Checks tokens against the settings and counts refusals."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self.settings, self.metrics = settings, metrics

    def _refuse(self, status: int, reason: str, message: str) -> ApiError:
        self.metrics.auth_failures.labels(reason).inc()
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return ApiError(status, message, headers)

    def operator(self, token: str | None, name: str | None = None) -> str:
        """The actor for a change made with ``token``; raises 401/403 when not allowed."""
        if self.settings.operator_token is None:
            raise self._refuse(401, "no_operator_token", NO_OPERATOR_TOKEN)
        if not token:
            raise self._refuse(
                401,
                "missing",
                "this call changes state: send the operator "
                "token as 'Authorization: Bearer <token>'",
            )
        if not _matches(token, self.settings.operator_token):
            raise self._refuse(403, "wrong", "the token given is not the operator token")
        clean = _NAME.sub("", name or "")[:40]
        return f"operator:{clean or fingerprint(token)}"

    @property
    def reads_open(self) -> bool:
        return self.settings.open_reads and self.settings.read_token is None

    def reader(self, token: str | None) -> None:
        """Allow a read, or raise 401/403 when reads need a token."""
        if self.reads_open:
            return
        if not token:
            raise self._refuse(
                401,
                "missing",
                "reads need a token: send the read or operator "
                "token as 'Authorization: Bearer <token>'",
            )
        if not (
            _matches(token, self.settings.read_token)
            or _matches(token, self.settings.operator_token)
        ):
            raise self._refuse(
                403, "wrong", "the token given is neither the read nor the operator token"
            )
