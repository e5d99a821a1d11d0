"""A box with three cells (127.0.0.1, .2, .3): spreading, placement errors, a lost cell with a
load running, a frozen cell that comes back, and a restarted cell process that adopts.

One box serves the module; each test uses its own app and leaves every cell running.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import docker
import pytest

from tests.integration.box import Box, alive, descendants, ltc, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration

CELLS = 3


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("cells"), cells=CELLS) as the_box:
        yield the_box


def cell_pid(box: Box, cell_id: str) -> int | None:
    assert box.process is not None
    for pid, cmd in descendants(box.process.pid).items():
        if "lattice.cli.server cell " in cmd and f"--cell-id {cell_id} " in cmd and alive(pid):
            return pid
    return None


def containers(app: str) -> dict[str, str]:
    """Running containers of `app`: container id -> cell id."""
    client = docker.from_env()
    try:
        found = client.containers.list(filters={"label": f"lattice.process_guid={app}"},
                                       ignore_removed=True)
        return {c.id: c.labels["lattice.cell_id"] for c in found}
    finally:
        client.close()


@dataclass
class Load:
    """Requests to an app through the router, one after another, until stopped."""

    box: Box
    app: str
    results: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = self.box.app(self.app)
            except (OSError, http.client.HTTPException):
                status = 0
            self.results.append((time.monotonic(), status))

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=30)

    def failures_after(self, moment: float) -> list[tuple[float, int]]:
        return [r for r in self.results if r[0] >= moment and r[1] != 200]

    def count_after(self, moment: float) -> int:
        return sum(1 for r in self.results if r[0] >= moment)


def test_cells_advertise_their_own_loopback_address_and_instances_spread(
    box: Box, demo_image: str
) -> None:
    status, cells = box.api("GET", "/v1/cells")
    assert status == 200
    assert sorted(c["address"] for c in cells) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    ltc_ok(box, "create", "spread", demo_image, "-i", "3")
    try:
        actuals = box.wait_running("spread", 3)
        assert len({a["cell_id"] for a in actuals}) == 3
        assert {a["address"] for a in actuals} == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
        seen = {box.app("spread")[1].strip().rsplit(" ", 1)[-1] for _ in range(12)}
        assert seen == {"0", "1", "2"}
    finally:
        ltc_ok(box, "remove", "spread")


def test_instance_that_fits_nowhere_stays_unclaimed_with_placement_error(
    box: Box, demo_image: str
) -> None:
    result = ltc(box, "create", "huge", demo_image, "-m", "1000000", "-t", "60s")
    try:
        assert result.returncode == 11, result.stdout + result.stderr
        assert "insufficient resources" in result.stderr
        actual = box.actuals("huge")[0]
        assert actual["state"] == "UNCLAIMED"
        assert actual["placement_error"] == "insufficient resources"
        status = ltc(box, "status", "huge")
        assert "insufficient resources" in status.stdout
    finally:
        ltc_ok(box, "remove", "huge")


def test_lost_cell_is_replaced_under_load_and_stops_stale_containers_when_back(
    box: Box, demo_image: str
) -> None:
    ltc_ok(box, "create", "lost", demo_image, "-i", "3")
    frozen_pid: int | None = None
    try:
        before = box.wait_running("lost", 3)
        victim = next(a for a in before if a["cell_id"] != "cell-0")
        frozen_pid = cell_pid(box, victim["cell_id"])
        assert frozen_pid is not None
        with Load(box, "lost") as load:
            wait_for(lambda: load.count_after(0) >= 5, 30, "the load to start")
            frozen_at = time.monotonic()
            os.kill(frozen_pid, signal.SIGSTOP)    # a frozen cell: its lease stops renewing

            def replaced() -> bool:
                actuals = box.actuals("lost")
                return (len(actuals) == 3
                        and all(a["state"] == "RUNNING" for a in actuals)
                        and victim["cell_id"] not in {a["cell_id"] for a in actuals})

            wait_for(replaced, 40, f"lost's instances to leave {victim['cell_id']}")
            replaced_at = time.monotonic()
            wait_for(lambda: load.count_after(replaced_at) >= 30, 30, "30 requests after")
            assert load.failures_after(frozen_at) == []
        # Frozen for at least 8 s in all: then it comes back and finds its assignment gone.
        wait_for(lambda: time.monotonic() - frozen_at >= 8, 20, "8 s frozen", every=0.2)
        os.kill(frozen_pid, signal.SIGCONT)
        frozen_pid = None
        wait_for(lambda: victim["cell_id"] not in containers("lost").values(), 30,
                 "the stale container to be stopped by its returning cell")
        assert len(containers("lost")) == 3
        wait_for(lambda: len(box.api("GET", "/v1/cells")[1]) == CELLS, 30,
                 "the cell to announce itself again")
    finally:
        if frozen_pid is not None:
            os.kill(frozen_pid, signal.SIGCONT)
        ltc_ok(box, "remove", "lost")


def test_restarted_cell_process_adopts_its_containers_under_load(
    box: Box, demo_image: str
) -> None:
    ltc_ok(box, "create", "adopt", demo_image, "-i", "3")
    try:
        before = box.wait_running("adopt", 3)
        ids_before = containers("adopt")
        victim = before[0]["cell_id"]
        pid = cell_pid(box, victim)
        assert pid is not None
        with Load(box, "adopt") as load:
            wait_for(lambda: load.count_after(0) >= 5, 30, "the load to start")
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)           # lattice up restarts the cell process
            new_pid = wait_for(lambda: (p := cell_pid(box, victim)) != pid and p, 30,
                               "the cell process to be restarted")
            assert new_pid != pid
            wait_for(lambda: len(box.api("GET", "/v1/cells")[1]) == CELLS, 30,
                     "the restarted cell to announce itself")
            settled_at = time.monotonic()
            wait_for(lambda: load.count_after(settled_at) >= 30, 30, "30 requests after")
            assert load.failures_after(killed_at) == []
        after = box.wait_running("adopt", 3)
        assert containers("adopt") == ids_before
        assert ({a["index"]: a["instance_guid"] for a in after}
                == {a["index"]: a["instance_guid"] for a in before})
    finally:
        ltc_ok(box, "remove", "adopt")
