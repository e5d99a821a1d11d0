"""HTTP, command and port health checks, the start timeout and the HEALTH/CELL log lines, with
a real cell, etcd and Docker engine; the test plays the brain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from lattice.models import ActualState
from lattice.models.desired import CommandMonitor, HttpMonitor, Monitor, PortMonitor
from lattice.store import Etcd
from tests.support_cell import (
    CellUnderTest,
    actual_in,
    actual_of,
    claim,
    desire,
    run_info,
    wait_for,
)

pytestmark = pytest.mark.integration

# Becomes ready after a moment: the marker file appears 1 s after the start.
LATE_READY = ("/bin/sh", "-c", "sleep 1; touch /ready; exec sleep 3600")


@pytest.fixture
async def cell(etcd_endpoint: str, demo_image: str) -> AsyncIterator[CellUnderTest]:
    under_test = CellUnderTest(etcd_endpoint)
    try:
        await under_test.start()
        yield under_test
    finally:
        await under_test.close()


async def start(etcd: Etcd, cell: CellUnderTest, guid: str, image: str, monitor: Monitor, *,
                command: tuple[str, ...] = (), start_timeout_s: float = 60.0) -> None:
    run = replace(run_info(guid, image, command=command), monitor=monitor,
                  start_timeout_s=start_timeout_s)
    await desire(etcd, run, instances=1)
    await claim(etcd, cell.cell_id, guid, 0)


async def test_an_http_check_passes_on_200_and_says_so_in_the_health_lines(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await start(etcd, cell, "web", demo_image, HttpMonitor(8080, "/"))
    running = await wait_for(lambda: actual_in(etcd, "web", 0, ActualState.RUNNING), "RUNNING")
    assert running.ports
    health = [(e.message, e.message_type) for e in cell.sink.of("web", "HEALTH")]
    assert ("healthcheck passed", "OUT") in health
    assert "Container became healthy" in [e.message for e in cell.sink.of("web", "CELL")]


async def test_an_http_check_that_never_answers_200_times_out_with_the_reason(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    # The demo answers 404 on /missing: the port is open, yet the check must not pass.
    await start(etcd, cell, "lost", demo_image, HttpMonitor(8080, "/missing"),
                start_timeout_s=2)
    crashed = await wait_for(lambda: actual_in(etcd, "lost", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "Timed out after 2s: health check never passed."
    health = [(e.message, e.message_type) for e in cell.sink.of("lost", "HEALTH")]
    assert health
    assert all(kind == "ERR" for _, kind in health)
    assert any("GET /missing: status 404" in message for message, _ in health), health
    # Repeated identical failures are said once, not every half second.
    assert len(health) == len(set(health))


async def test_a_command_check_runs_inside_the_container(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await start(etcd, cell, "cmd", demo_image, CommandMonitor(("test", "-e", "/ready")),
                command=LATE_READY)
    # Before the file exists the check fails: the instance waits in CLAIMED...
    await wait_for(lambda: cell.sink.of("cmd", "HEALTH"), "a failed check in the logs")
    first = cell.sink.of("cmd", "HEALTH")[0]
    assert first.message_type == "ERR"
    assert first.message.startswith("test -e /ready: exit status 1")
    # ...and once `touch` has run inside the container, it passes.
    await wait_for(lambda: actual_in(etcd, "cmd", 0, ActualState.RUNNING), "RUNNING")


async def test_a_command_check_that_fails_forever_crashes_at_the_start_timeout(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await start(etcd, cell, "never", demo_image, CommandMonitor(("false",)),
                command=LATE_READY, start_timeout_s=1.5)
    crashed = await wait_for(lambda: actual_in(etcd, "never", 0, ActualState.CRASHED),
                             "CRASHED")
    assert crashed.crash_reason == "Timed out after 1.5s: health check never passed."


async def test_a_port_check_times_out_too_and_the_cell_lines_tell_the_lifecycle(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await start(etcd, cell, "mute", demo_image, PortMonitor(8080, timeout_s=0.5),
                command=LATE_READY, start_timeout_s=1)
    crashed = await wait_for(lambda: actual_in(etcd, "mute", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "Timed out after 1s: health check never passed."
    assert [e.message for e in cell.sink.of("mute", "HEALTH")] == ["port 8080: no listener"]
    cell_lines = [e.message for e in cell.sink.of("mute", "CELL")]
    assert cell_lines[:2] == ["Creating container", "Successfully created container"]


async def test_an_exit_is_told_as_exit_status_in_the_cell_lines(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await start(etcd, cell, "brief", demo_image, PortMonitor(None),
                command=("/bin/sh", "-c", "exit 7"))
    crashed = await wait_for(lambda: actual_in(etcd, "brief", 0, ActualState.CRASHED),
                             "CRASHED")
    assert crashed.crash_reason == "Exited with status 7"
    assert "Exit status 7" in [e.message for e in cell.sink.of("brief", "CELL")]
    final = await actual_of(etcd, "brief", 0)
    assert final is not None
    assert final.crash_count == 1
