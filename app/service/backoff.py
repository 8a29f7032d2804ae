"""How long to wait before trying a deployment again, and which failures are worth it."""

from __future__ import annotations

from tenacity import RetryCallState
from tenacity.wait import wait_random_exponential

from app.errors import GatewayError

MAX_RETRY_AFTER_S = 30.0
_backoff = wait_random_exponential(multiplier=0.25, max=4)


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, GatewayError) and exc.retryable


def wait(state: RetryCallState) -> float:
    """Exponential backoff with jitter, or the upstream's `Retry-After` when it gives one (a
    number of seconds, up to `MAX_RETRY_AFTER_S`; anything else, `nan` say, is no answer)."""
    error = state.outcome.exception() if state.outcome else None
    retry_after = error.headers.get("Retry-After", "") if isinstance(error, GatewayError) else ""
    try:
        seconds = float(retry_after)
    except ValueError:
        return _backoff(state)
    if not seconds >= 0:  # NaN, or below zero
        return _backoff(state)
    return min(seconds, MAX_RETRY_AFTER_S)
