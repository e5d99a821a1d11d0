"""`ltc test`: a smoke test of a live box, step by step, each step's outcome reported.

Create an app, reach its route, scale it to 3, see 3 distinct instances answer, read its logs,
remove it. The first failing step stops the run (the app is still removed) and the report
says which step failed and why.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from lattice.client.app_runner import route_urls
from lattice.client.app_spec import CreateFlags, parse_create_flags
from lattice.client.connection import Connection
from lattice.client.errors import ClientError
from lattice.client.logs import recent_logs
from lattice.client.resolve import LatticeResolver

SCALE_TO = 3
APP_TIMEOUT = aiohttp.ClientTimeout(total=10)
POLL_S = 0.2


@dataclass(frozen=True)
class StepResult:
    step: str
    ok: bool
    detail: str


class SmokeTestFailed(ClientError):
    def __init__(self, results: list[StepResult]) -> None:
        failed = next(r for r in results if not r.ok)
        super().__init__(f"{failed.step}: {failed.detail}")
        self.results = results


def smoke_app_name() -> str:
    return f"lattice-smoke-{uuid.uuid4().hex[:6]}"


async def _answers(session: aiohttp.ClientSession, url: str, wanted: int,
                   deadline: float) -> set[str]:
    """Distinct bodies answered at `url` (one per instance), until `wanted` or the deadline."""
    seen: set[str] = set()
    last_error = ""
    while time.monotonic() < deadline:
        try:
            async with session.get(url, timeout=APP_TIMEOUT) as response:
                body = (await response.text()).strip()
                if response.status == 200:
                    seen.add(body)
                else:
                    last_error = f"HTTP {response.status}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            last_error = str(exc) or type(exc).__name__
        if len(seen) >= wanted:
            return seen
        await asyncio.sleep(POLL_S if last_error else 0)
    raise _StepFailed(f"{len(seen)} distinct instance(s) answered at {url}, wanted {wanted}"
                      + (f" (last error: {last_error})" if last_error else ""))


class _StepFailed(Exception):
    pass


async def run_smoke_test(
    connection: Connection, *, image: str, timeout_s: float,
    on_step: Callable[[StepResult], None], app: str | None = None,
) -> list[StepResult]:
    """Run every step; SmokeTestFailed with all results when one fails."""
    name = app or smoke_app_name()
    results: list[StepResult] = []
    created = False
    url = ""
    # Requests to the app go through a session of their own: the box's credentials are for the
    # API and the logs, never for an app.
    resolver = LatticeResolver()
    app_session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver))

    async def step(label: str, work: Callable[[], Awaitable[str]]) -> bool:
        try:
            detail = await work()
        except (ClientError, _StepFailed) as exc:
            results.append(StepResult(label, False, str(exc)))
            on_step(results[-1])
            return False
        results.append(StepResult(label, True, detail))
        on_step(results[-1])
        return True

    async def create() -> str:
        nonlocal created, url
        spec, _ = parse_create_flags(CreateFlags(name=name, image=image, instances=1))
        lrp = await connection.apps.create(spec, timeout_s=timeout_s)
        created = True
        urls = route_urls(lrp, connection.target)
        if not urls:
            raise _StepFailed("the app has no route")
        url = urls[0]
        return f"{name} is running"

    async def reach() -> str:
        await _answers(app_session, url, 1, time.monotonic() + timeout_s)
        return f"{url} answered"

    async def scale() -> str:
        await connection.apps.scale(name, SCALE_TO, timeout_s=timeout_s)
        return f"{SCALE_TO} instances running"

    async def distinct() -> str:
        seen = await _answers(app_session, url, SCALE_TO, time.monotonic() + timeout_s)
        return f"{len(seen)} distinct instances answered"

    async def logs() -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            lines = await recent_logs(connection.session, connection.target, name)
            if lines:
                return f"{len(lines)} log line(s)"
            if time.monotonic() >= deadline:
                raise _StepFailed("no log lines arrived")
            await asyncio.sleep(POLL_S)

    async def remove() -> str:
        nonlocal created
        await connection.apps.remove(name)
        created = False
        return f"{name} removed"

    try:
        for label, work in (("create", create), ("reach its route", reach),
                            (f"scale to {SCALE_TO}", scale),
                            (f"{SCALE_TO} distinct instances answer", distinct),
                            ("read its logs", logs), ("remove", remove)):
            if not await step(label, work):
                break
    finally:
        await app_session.close()
        await resolver.close()
        if created:
            await step("remove", remove)
    if not all(r.ok for r in results):
        raise SmokeTestFailed(results)
    return results
