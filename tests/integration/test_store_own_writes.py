"""Reads made together at one revision, the revision of a transaction, and an informer told of
its own process's writes (Informer.learn), against a real etcd."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from lattice.store import (
    Change,
    Delete,
    Etcd,
    Get,
    GetPrefix,
    Informer,
    ModRevisionIs,
    Put,
)
from tests.support_cell import wait_for

pytestmark = pytest.mark.integration


async def test_read_answers_each_key_and_prefix_in_order(etcd: Etcd) -> None:
    await etcd.txn([], [Put("/r/one", b"1"), Put("/r/p/a", b"a"), Put("/r/p/b", b"b"),
                        Put("/r/pp", b"not under /r/p/")])
    one, under_p, missing, empty = await etcd.read([
        Get("/r/one"), GetPrefix("/r/p/"), Get("/r/missing"), GetPrefix("/r/none/"),
    ])
    assert [(kv.key, kv.value) for kv in one] == [("/r/one", b"1")]
    assert [(kv.key, kv.value) for kv in under_p] == [("/r/p/a", b"a"), ("/r/p/b", b"b")]
    assert (missing, empty) == ([], [])
    stored = await etcd.get("/r/one")
    assert stored is not None
    assert one[0].mod_revision == stored.mod_revision


async def test_txn_revision_is_the_mod_revision_of_what_it_wrote(etcd: Etcd) -> None:
    revision = await etcd.txn_revision([ModRevisionIs("/v/a", 0)],
                                       [Put("/v/a", b"1"), Put("/v/b", b"2")])
    assert revision is not None
    for key in ("/v/a", "/v/b"):
        kv = await etcd.get(key)
        assert kv is not None
        assert kv.mod_revision == revision
    assert await etcd.txn_revision([ModRevisionIs("/v/a", 0)], [Put("/v/a", b"3")]) is None
    kept = await etcd.get("/v/a")
    assert kept is not None
    assert kept.value == b"1"
    deleted_at = await etcd.txn_revision([], [Delete("/v/a")])
    assert deleted_at is not None
    assert deleted_at > revision
    with pytest.raises(ValueError, match="without operations"):
        await etcd.txn_revision([], [])


async def running(informer: Informer) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(informer.synced.wait(), 10)
    return task


async def stopped(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def informer(etcd: Etcd) -> AsyncIterator[tuple[Informer, list[Change]]]:
    """An informer on /l/, loaded and watching; with every change it reported."""
    changes: list[Change] = []
    watching = Informer(etcd, "/l/", changes.append)
    task = await running(watching)
    yield watching, changes
    await stopped(task)


async def next_revision(etcd: Etcd) -> int:
    """The revision the next write will get: this test's etcd has no other writer."""
    _, revision = await etcd.get_prefix("/nothing/")
    return revision + 1


async def watch_passes(etcd: Etcd, informer: Informer, marker: str) -> None:
    """Write `marker` and wait until the watch brings it: it has passed every earlier write."""
    await etcd.put(marker, b"")
    await wait_for(lambda: marker in informer.items, f"the watch to bring {marker}")


def of(changes: list[Change], key: str) -> list[Change]:
    return [change for change in changes if change.key == key]


async def test_a_learnt_write_is_reported_once_and_older_changes_do_not_undo_it(
    etcd: Etcd, informer: tuple[Informer, list[Change]]
) -> None:
    watching, changes = informer
    # Learnt before the writes are made, so the watch surely brings them after: first an
    # older value of the key, then the learnt write itself, both to be ignored.
    older = await next_revision(etcd)
    assert watching.learn("/l/a", b"new", older + 1)
    assert of(changes, "/l/a") == [Change("/l/a", None, b"new", older + 1)]
    assert await etcd.put("/l/a", b"old") == older
    assert await etcd.put("/l/a", b"new") == older + 1
    await watch_passes(etcd, watching, "/l/marker")
    assert of(changes, "/l/a") == [Change("/l/a", None, b"new", older + 1)]
    assert watching.items["/l/a"].value == b"new"
    # What follows the learnt write is reported as ever.
    await etcd.txn([], [Delete("/l/a")])
    await wait_for(lambda: "/l/a" not in watching.items, "the delete")
    assert of(changes, "/l/a")[-1] == Change("/l/a", b"new", None)


async def test_a_relist_keeps_a_learnt_write_newer_than_its_list(etcd: Etcd) -> None:
    changes: list[Change] = []
    watching = Informer(etcd, "/l/", changes.append)
    await stopped(await running(watching))       # loaded once, then its watch is down
    ahead = await next_revision(etcd) + 1
    assert watching.learn("/l/b", b"1", ahead)
    watching.synced = asyncio.Event()            # so that `running` waits for the next list
    task = await running(watching)               # listed before the write is made
    try:
        assert watching.items["/l/b"].mod_revision == ahead
        await etcd.put("/l/other", b"")
        assert await etcd.put("/l/b", b"1") == ahead
        await watch_passes(etcd, watching, "/l/marker")
        assert of(changes, "/l/b") == [Change("/l/b", None, b"1", ahead)]
    finally:
        await stopped(task)


async def test_a_write_the_watch_has_passed_is_not_learnt(
    etcd: Etcd, informer: tuple[Informer, list[Change]]
) -> None:
    watching, changes = informer
    first = await etcd.put("/l/a", b"old")
    await etcd.put("/l/a", b"new")
    await watch_passes(etcd, watching, "/l/marker")
    reported = len(changes)
    assert not watching.learn("/l/a", b"old", first)
    assert watching.items["/l/a"].value == b"new"
    assert len(changes) == reported


async def test_learn_refuses_a_key_of_another_prefix(
    informer: tuple[Informer, list[Change]]
) -> None:
    watching, _ = informer
    with pytest.raises(ValueError, match="not under this informer's prefix"):
        watching.learn("/other/a", b"1", 10**9)


async def test_an_informer_not_loaded_yet_learns_nothing(etcd: Etcd) -> None:
    changes: list[Change] = []
    idle = Informer(etcd, "/l/", changes.append)
    assert not idle.learn("/l/a", b"1", 5)
    assert (idle.items, changes) == ({}, [])
