"""Delivery of a completed task to its completion_callback_url (Diego's task callback).

The task's JSON is POSTed. 503 and 504 answers and connection errors are retried, a bounded
number of times with a doubling delay; any other answer counts as delivered (Diego resolves on
every status but 503/504: the receiver has seen the task).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger("lattice.brain.task_callback")

RETRIABLE_STATUSES = frozenset({503, 504})


class Delivery(enum.Enum):
    DELIVERED = "delivered"
    GAVE_UP = "gave-up"


@dataclass(frozen=True, kw_only=True)
class CallbackPolicy:
    attempts: int = 5
    first_delay_s: float = 0.25
    max_delay_s: float = 4.0
    timeout_s: float = 10.0


def retriable_status(status: int) -> bool:
    return status in RETRIABLE_STATUSES


async def deliver(
    session: aiohttp.ClientSession, url: str, task: dict[str, Any], policy: CallbackPolicy
) -> Delivery:
    delay = policy.first_delay_s
    guid = task.get("task_guid", "")
    for attempt in range(1, policy.attempts + 1):
        try:
            async with session.post(
                url, json=task, timeout=aiohttp.ClientTimeout(total=policy.timeout_s)
            ) as response:
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("task-callback-unreachable", task_guid=guid, attempt=attempt,
                        error=str(exc) or type(exc).__name__)
        else:
            if not retriable_status(status):
                log.info("task-callback-delivered", task_guid=guid, status=status,
                         attempt=attempt)
                return Delivery.DELIVERED
            log.warning("task-callback-retry", task_guid=guid, status=status, attempt=attempt)
        if attempt < policy.attempts:
            await asyncio.sleep(delay)
            delay = min(delay * 2, policy.max_delay_s)
    log.warning("task-callback-failed", task_guid=guid, attempts=policy.attempts)
    return Delivery.GAVE_UP
