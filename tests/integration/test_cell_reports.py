"""The cell's writes to ActualLRPs, against a real etcd: ownership, counts, atomicity."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lattice.cell.reports import ActualReports
from lattice.models import ActualLRP, ActualState, PortMapping
from lattice.store import Etcd, Put, keys
from tests.support_cell import actual_of, claim

pytestmark = pytest.mark.integration

NS = 1_000_000_000
MINUTE = 60 * NS


async def rewrite(etcd: Etcd, actual: ActualLRP) -> None:
    await etcd.txn([], [Put(keys.actual(actual.process_guid, actual.index),
                            json.dumps(actual.to_dict()).encode())])


async def test_started_running_and_crashed_on_our_instance(etcd: Etcd) -> None:
    now = [1_000 * MINUTE]
    reports = ActualReports(etcd, "cell-a", clock=lambda: now[0])
    assignment = await claim(etcd, "cell-a", "web", 0)

    ports = (PortMapping(8080, 32768),)
    started = await reports.started(assignment, "127.0.0.1", ports, "c0ffee", adopted=False)
    assert started is not None
    assert started.state == ActualState.CLAIMED
    assert (started.address, started.ports, started.container_id) == ("127.0.0.1", ports,
                                                                       "c0ffee")
    running = await reports.running(assignment)
    assert running is not None
    assert (running.state, running.running_since) == (ActualState.RUNNING, now[0])

    now[0] += MINUTE
    crashed = await reports.crashed(assignment, "Exited with status 1")
    assert crashed is not None
    stored = await actual_of(etcd, "web", 0)
    assert stored == crashed
    assert stored.state == ActualState.CRASHED
    assert stored.since == now[0]
    assert (stored.crash_count, stored.crash_reason) == (1, "Exited with status 1")
    assert (stored.address, stored.ports, stored.container_id) == ("", (), "")
    assert await etcd.get(keys.assignment("cell-a", "web", 0)) is None


async def test_a_crash_after_five_minutes_of_running_counts_as_the_first(etcd: Etcd) -> None:
    now = [1_000 * MINUTE]
    reports = ActualReports(etcd, "cell-a", clock=lambda: now[0])
    assignment = await claim(etcd, "cell-a", "web", 0)
    before = await actual_of(etcd, "web", 0)
    assert before is not None
    await rewrite(etcd, replace(before, crash_count=7))
    await reports.running(assignment)
    now[0] += 5 * MINUTE
    crashed = await reports.crashed(assignment, "health check failed")
    assert crashed is not None
    assert crashed.crash_count == 1


async def test_a_short_run_adds_to_the_count(etcd: Etcd) -> None:
    reports = ActualReports(etcd, "cell-a")
    assignment = await claim(etcd, "cell-a", "web", 0)
    before = await actual_of(etcd, "web", 0)
    assert before is not None
    await rewrite(etcd, replace(before, crash_count=2))
    crashed = await reports.crashed(assignment, "Exited with status 2")
    assert crashed is not None
    assert crashed.crash_count == 3


@pytest.mark.parametrize("taken", ["other-instance", "other-cell", "unclaimed", "deleted"])
async def test_nothing_is_written_once_the_instance_is_not_ours(etcd: Etcd, taken: str) -> None:
    reports = ActualReports(etcd, "cell-a")
    assignment = await claim(etcd, "cell-a", "web", 0)
    actual = await actual_of(etcd, "web", 0)
    assert actual is not None
    if taken == "deleted":
        await etcd.delete_prefix(keys.actual_prefix("web"))
    elif taken == "other-instance":
        await rewrite(etcd, replace(actual, instance_guid="someone-else"))
    elif taken == "other-cell":
        await rewrite(etcd, replace(actual, cell_id="cell-b"))
    else:
        await rewrite(etcd, replace(actual, state=ActualState.UNCLAIMED, cell_id=""))
    before = await etcd.get(keys.actual("web", 0))

    assert await reports.current(assignment) is None
    assert await reports.started(assignment, "127.0.0.1", (), "c0ffee", adopted=False) is None
    assert await reports.running(assignment) is None
    assert await reports.crashed(assignment, "Exited with status 1") is None
    after = await etcd.get(keys.actual("web", 0))
    assert (before is None and after is None) or (
        before is not None and after is not None and after.mod_revision == before.mod_revision
    )
    # The crash report did not delete the assignment either: that is the brain's call now.
    assert await etcd.get(keys.assignment("cell-a", "web", 0)) is not None


async def test_a_new_container_is_not_running_until_checked_but_an_adopted_one_is(
    etcd: Etcd,
) -> None:
    reports = ActualReports(etcd, "cell-a")
    assignment = await claim(etcd, "cell-a", "web", 0)
    ports = (PortMapping(8080, 32768),)
    await reports.started(assignment, "127.0.0.1", ports, "old", adopted=False)
    await reports.running(assignment)

    adopted = await reports.started(assignment, "127.0.0.1", ports, "old", adopted=True)
    assert adopted is not None
    assert adopted.state == ActualState.RUNNING

    fresh_ports = (PortMapping(8080, 40000),)
    fresh = await reports.started(assignment, "127.0.0.1", fresh_ports, "new", adopted=False)
    assert fresh is not None
    assert (fresh.state, fresh.ports, fresh.container_id) == (
        ActualState.CLAIMED, fresh_ports, "new"
    )


async def test_a_container_that_passed_its_check_at_once_is_running_in_one_write(
    etcd: Etcd,
) -> None:
    now = [1_000 * MINUTE]
    reports = ActualReports(etcd, "cell-a", clock=lambda: now[0])
    assignment = await claim(etcd, "cell-a", "web", 0)
    ports = (PortMapping(8080, 32768),)
    started = await reports.started(assignment, "127.0.0.1", ports, "c1", adopted=False,
                                    healthy=True)
    assert started is not None
    assert (started.state, started.running_since, started.since) == (
        ActualState.RUNNING, now[0], now[0]
    )
    assert (started.address, started.ports, started.container_id) == ("127.0.0.1", ports, "c1")
    assert await actual_of(etcd, "web", 0) == started

    # A new container over a record still RUNNING from a gone one starts its run anew.
    now[0] += MINUTE
    fresh = await reports.started(assignment, "127.0.0.1", ports, "c2", adopted=False,
                                  healthy=True)
    assert fresh is not None
    assert (fresh.state, fresh.running_since, fresh.container_id) == (
        ActualState.RUNNING, now[0], "c2"
    )


async def test_a_write_from_a_record_read_earlier_reads_again_if_it_changed(
    etcd: Etcd,
) -> None:
    reports = ActualReports(etcd, "cell-a")
    assignment = await claim(etcd, "cell-a", "web", 0)
    ports = (PortMapping(8080, 32768),)
    known = await reports.read(assignment)
    assert known is not None

    # Unchanged since: written from it.
    started = await reports.started(assignment, "127.0.0.1", ports, "c1", adopted=False,
                                    known=known)
    assert started is not None
    assert await actual_of(etcd, "web", 0) == started

    # Changed since (the write above): the stale revision fails, the record is read again.
    again = await reports.started(assignment, "127.0.0.1", ports, "c2", adopted=False,
                                  known=known)
    assert again is not None
    assert again.container_id == "c2"
    assert await actual_of(etcd, "web", 0) == again

    # No longer ours since: nothing is written.
    stale = await reports.read(assignment)
    assert stale is not None
    await rewrite(etcd, replace(stale[0], cell_id="cell-b"))
    assert await reports.started(assignment, "127.0.0.1", ports, "c3", adopted=False,
                                 known=stale) is None
    stored = await actual_of(etcd, "web", 0)
    assert stored is not None
    assert (stored.cell_id, stored.container_id) == ("cell-b", "c2")


async def test_a_gone_container_leaves_no_address_to_route_to(etcd: Etcd) -> None:
    reports = ActualReports(etcd, "cell-a")
    assignment = await claim(etcd, "cell-a", "web", 0)
    await reports.started(assignment, "127.0.0.1", (PortMapping(8080, 32768),), "c",
                          adopted=False)
    await reports.running(assignment)
    gone = await reports.container_gone(assignment)
    assert gone is not None
    assert (gone.state, gone.address, gone.ports, gone.container_id) == (
        ActualState.CLAIMED, "", (), ""
    )
    assert await actual_of(etcd, "web", 0) == gone
