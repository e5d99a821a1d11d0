"""When a failed request may go to another endpoint: the one place that decides it.

gorouter's rule (proxy/fails/classifier_group.go): only failures that happened before any byte
of the request reached a backend are retriable, because only then can the backend not have
acted on it. Here that is a failed dial. Nothing is retried for a client that has gone away.
"""

from __future__ import annotations

from dataclasses import dataclass

from router.errors import DialError

MAX_ATTEMPTS = 3


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """What is known about a request after one of its attempts failed."""

    error: BaseException
    attempts: int              # attempts made so far, the failed one included
    request_bytes_sent: bool
    client_gone: bool


def should_retry(attempt: Attempt, *, max_attempts: int = MAX_ATTEMPTS) -> bool:
    return (
        isinstance(attempt.error, DialError)
        and not attempt.request_bytes_sent
        and not attempt.client_gone
        and attempt.attempts < max_attempts
    )
