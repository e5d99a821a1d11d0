"""The end of a leader's term (brain/leader.py): every job stops, or the process must end."""

from __future__ import annotations

import asyncio

import pytest

from lattice.brain import leader
from lattice.brain.leader import LeaderElection, LeadershipStuck
from lattice.store import Etcd


def election() -> LeaderElection:
    # Nothing listens on port 1: _stop never talks to etcd.
    return LeaderElection(Etcd("127.0.0.1:1"), identity="test")


async def forever() -> None:
    await asyncio.Event().wait()


async def deaf_to_cancel(stopped: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        stopped.set()     # swallowed once: the way a job could outlive its term
    await asyncio.Event().wait()      # the next cancel (asyncio.run's clean-up) ends it


async def failing() -> None:
    raise ValueError("a bug in a job")


def run_term(*jobs: leader.Work) -> None:
    async def term() -> None:
        running = [asyncio.create_task(job()) for job in jobs]
        work = asyncio.gather(*running)
        await asyncio.sleep(0)
        await election()._stop(running, work)

    asyncio.run(term())


def test_cancelled_jobs_end_the_term_quietly() -> None:
    run_term(forever, forever)


def test_a_job_that_will_not_stop_is_reported_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(leader, "STOP_TIMEOUT_S", 0.05)
    stopped = asyncio.Event()
    with pytest.raises(LeadershipStuck, match="did not stop"):
        run_term(forever, lambda: deaf_to_cancel(stopped))
    assert stopped.is_set()


def test_a_failed_job_ends_the_process_and_the_others_are_stopped() -> None:
    others: list[asyncio.Task[None]] = []

    async def watched() -> None:
        task = asyncio.current_task()
        assert task is not None
        others.append(task)
        await forever()

    with pytest.raises(LeadershipStuck, match="failed") as caught:
        run_term(watched, failing)
    assert isinstance(caught.value.__cause__, ValueError)
    assert others[0].cancelled()
