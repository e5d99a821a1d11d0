"""The router's half of scale to zero, without I/O: one hold per empty pool shared by every
request, released by the table's event or expired at the bound; one wake per app; activity
counted; a pause that catches requests in flight wakes the app."""

from __future__ import annotations

import asyncio

import pytest

from lattice.models import ActualLRP, ActualState, PortMapping
from router.activation import Activator
from router.pool import Endpoint, Pool


class Recorder(Activator):
    """An Activator whose wake call is recorded instead of sent to a brain."""

    def __init__(self, *, hold_timeout_s: float = 5.0, in_flight: int = 0) -> None:
        super().__init__(hold_timeout_s=hold_timeout_s, service_addresses=lambda _: [],
                         has_paused=lambda _: False, in_flight=lambda _: in_flight)
        self.woken: list[str] = []

    async def _post_wake(self, guid: str) -> bool:
        self.woken.append(guid)
        return True


def scalable_pool(*guids: str) -> Pool:
    pool = Pool()
    pool.scalable = guids
    return pool


async def test_requests_share_one_hold_and_one_wake_and_are_released_by_the_table() -> None:
    activator = Recorder()
    pool = scalable_pool("fn")
    held = [activator.hold(pool) for _ in range(10)]
    assert all(future is held[0] for future in held)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert activator.woken == ["fn"]
    pool.replace([Endpoint("127.0.0.1", 1234, "fn", 0, "g")])
    activator.on_pool_ready(pool)
    assert held[0].done()
    assert held[0].result() is True
    await activator.stop()


async def test_a_hold_ends_false_at_the_bound() -> None:
    activator = Recorder(hold_timeout_s=0.05)
    future = activator.hold(scalable_pool("fn"))
    assert await asyncio.wait_for(future, 2) is False
    await activator.stop()


def test_activity_counts_requests_in_flight_and_the_last_one() -> None:
    activator = Recorder()
    activator.request_started(("fn",))
    activator.request_started(("fn",))
    activator.request_ended(("fn",))
    app = activator._apps["fn"]
    assert app.in_flight == 1
    assert app.last_request_ns > 0


@pytest.mark.parametrize(("in_flight", "woken"), [(0, []), (2, ["fn"])])
async def test_a_pause_with_requests_in_flight_wakes_the_app(in_flight: int,
                                                             woken: list[str]) -> None:
    activator = Recorder(in_flight=in_flight)
    actual = ActualLRP("fn", 0, "g", ActualState.RUNNING, 1, cell_id="c", address="127.0.0.1",
                       ports=(PortMapping(8080, 1234),), paused=True)
    activator.on_instance_paused(actual)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert activator.woken == woken
    await activator.stop()
