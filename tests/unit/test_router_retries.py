"""Which failures may be retried on another endpoint."""

from __future__ import annotations

import pytest

from router.errors import DialError
from router.pool import Endpoint
from router.retries import Attempt, should_retry

DIAL = DialError(Endpoint("127.0.0.1", 1, "app", 0, "g"), "connection refused")


@pytest.mark.parametrize(
    ("error", "attempts", "sent", "gone", "retry"),
    [
        (DIAL, 1, False, False, True),
        (DIAL, 2, False, False, True),
        (DIAL, 3, False, False, False),                   # at most 3 attempts in all
        (DIAL, 1, True, False, False),                    # bytes may have reached the backend
        (DIAL, 1, False, True, False),                    # nobody is waiting for the answer
        (ConnectionResetError(), 1, False, False, False), # not a dial failure
    ],
)
def test_should_retry(error: BaseException, attempts: int, sent: bool, gone: bool,
                      retry: bool) -> None:
    attempt = Attempt(error=error, attempts=attempts, request_bytes_sent=sent, client_gone=gone)
    assert should_retry(attempt) is retry


def test_max_attempts_is_configurable() -> None:
    attempt = Attempt(error=DIAL, attempts=3, request_bytes_sent=False, client_gone=False)
    assert should_retry(attempt, max_attempts=5)
    assert not should_retry(attempt, max_attempts=1)
