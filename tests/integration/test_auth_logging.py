"""A brain with credentials, served for real on a socket: 401 without them, and no log event
carries them, whatever a client sends."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
import structlog

from lattice.auth import Credentials
from lattice.brain.config import BrainConfig
from lattice.brain.main import serve
from lattice.etcd_server import free_port

pytestmark = pytest.mark.integration

SECRET = Credentials("admin", "very-secret-pw")


async def test_brain_refuses_without_credentials_and_never_logs_them(etcd_endpoint: str) -> None:
    port = free_port()
    ready = asyncio.Event()
    with structlog.testing.capture_logs() as events:
        server = asyncio.create_task(serve(
            BrainConfig(etcd_endpoints=etcd_endpoint, port=port, credentials=SECRET),
            ready=ready,
        ))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{base}/v1/desired_lrps") as r:
                    assert r.status == 401
                    assert r.headers["WWW-Authenticate"].startswith("Basic")
                wrong = {"Authorization": Credentials("admin", "very-secret-pw-not").header()}
                async with session.get(f"{base}/v1/desired_lrps", headers=wrong) as r:
                    assert r.status == 401
                right = {"Authorization": SECRET.header()}
                async with session.get(f"{base}/v1/desired_lrps", headers=right) as r:
                    assert r.status == 200
                # A malformed body behind valid credentials is still a 400, not a 500.
                async with session.post(f"{base}/v1/desired_lrps", headers=right,
                                        data=b"{nope") as r:
                    assert r.status == 400
                async with session.get(f"{base}/health") as r:
                    assert r.status == 200
        finally:
            server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server
    assert events, "the brain logged nothing at all: capture is broken"
    text = repr(events)
    assert "very-secret-pw" not in text
    assert SECRET.header().split()[1] not in text
