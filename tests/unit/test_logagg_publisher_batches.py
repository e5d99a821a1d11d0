"""LogPublisher.emit_many: the same backlog, drops and counts as emit() of each line."""

from __future__ import annotations

from typing import cast

import pytest

from lattice.store import Etcd
from logagg import Envelope, LogPublisher
from logagg.envelope import MAX_MESSAGE_BYTES
from logagg.publisher import MAX_MESSAGE_CHARS, TRUNCATED_SUFFIX

TS = 1_700_000_000_000_000_000


def publisher(backlog: int) -> LogPublisher:
    # run() is never started: the etcd client is not used, the lines stay in the backlog.
    return LogPublisher(cast(Etcd, None), backlog=backlog)


def lines() -> list[Envelope]:
    made = [Envelope("web" if n % 3 else "worker", "APP", str(n % 2), "OUT", TS + n,
                     f"line {n}") for n in range(20)]
    made.insert(5, Envelope("web", "APP", "0", "ERR", TS, "a" * (MAX_MESSAGE_BYTES + 1)))
    made.insert(9, Envelope("web", "RTR", "1", "OUT", TS, "é" * 1500))      # 3000 bytes
    made.insert(12, Envelope("worker", "APP", "0", "OUT", TS, "é" * 3000))  # 6000 bytes
    made.insert(15, Envelope("web", "APP", "0", "OUT", TS, "x" * (MAX_MESSAGE_CHARS + 9)))
    return made


def state(p: LogPublisher) -> tuple[object, ...]:
    return (list(p._backlog), dict(p._dropped), p.dropped_total, p._emitted)


@pytest.mark.parametrize("backlog", [1, 7, 40, 10_000])
def test_emit_many_leaves_what_emit_of_each_leaves(backlog: int) -> None:
    one_by_one, batched, in_chunks = publisher(backlog), publisher(backlog), publisher(backlog)
    sent = lines()
    for envelope in sent:
        one_by_one.emit(envelope)
    batched.emit_many(sent)
    for start in range(0, len(sent), 6):
        in_chunks.emit_many(iter(sent[start:start + 6]))      # any iterable will do
    assert state(batched) == state(one_by_one)
    assert state(in_chunks) == state(one_by_one)


def test_long_lines_are_split_and_truncated_in_a_batch_too() -> None:
    p = publisher(10_000)
    p.emit_many([Envelope("web", "APP", "0", "OUT", TS, "é" * 3000),
                 Envelope("web", "APP", "0", "OUT", TS, "b" * (MAX_MESSAGE_CHARS + 1))])
    pieces = list(p._backlog)
    assert all(len(e.message.encode()) <= MAX_MESSAGE_BYTES for e in pieces)
    assert pieces[0].message + pieces[1].message == "é" * 3000
    assert "".join(e.message for e in pieces[2:]) == "b" * MAX_MESSAGE_CHARS + TRUNCATED_SUFFIX
    assert p._emitted == len(pieces)


def test_the_newest_are_kept_and_the_drops_counted_per_app() -> None:
    p = publisher(3)
    p.emit_many([Envelope("web" if n < 4 else "worker", "APP", "0", "OUT", TS, str(n))
                 for n in range(6)])
    assert [e.message for e in p._backlog] == ["3", "4", "5"]
    assert (dict(p._dropped), p.dropped_total) == ({"web": 3}, 3)


def test_an_empty_batch_changes_nothing() -> None:
    p = publisher(5)
    p.emit_many([])
    assert state(p) == ([], {}, 0, 0)
