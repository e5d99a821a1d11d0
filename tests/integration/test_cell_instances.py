"""The cell against a real etcd and a real Docker engine; the test plays the brain."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import docker
import pytest
from structlog.testing import capture_logs

from lattice.cell.healthcheck import HealthSettings, port_is_open
from lattice.models import ActualState, CellPresence
from lattice.store import Etcd, ensure_cluster_id, keys
from tests.support_cell import (
    CellUnderTest,
    actual_in,
    actual_of,
    cell_containers,
    claim,
    container_exists,
    desire,
    http_get,
    run_info,
    unassign,
    wait_for,
)

pytestmark = pytest.mark.integration

SLEEP = ("/bin/sh", "-c", "exec sleep 3600")


@pytest.fixture
async def harness(etcd_endpoint: str, demo_image: str) -> AsyncIterator[CellUnderTest]:
    """A cell not yet started; whatever it started is stopped and removed afterwards."""
    cell = CellUnderTest(etcd_endpoint)
    try:
        yield cell
    finally:
        await cell.close()


@pytest.fixture
async def cell(harness: CellUnderTest) -> CellUnderTest:
    await harness.start()
    return harness


async def running_with_ports(etcd: Etcd, guid: str, index: int) -> object:
    actual = await actual_in(etcd, guid, index, ActualState.RUNNING)
    return actual if actual is not None and actual.ports else None


async def test_two_instances_run_and_answer_with_their_own_index(
    cell: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    await desire(etcd, run_info("web", demo_image), instances=2)
    assignments = [await claim(etcd, cell.cell_id, "web", i) for i in (0, 1)]
    for index, assignment in enumerate(assignments):
        await wait_for(lambda i=index: running_with_ports(etcd, "web", i), f"web/{index} RUNNING")
        actual = await actual_of(etcd, "web", index)
        assert actual is not None
        assert actual.instance_guid == assignment.instance_guid
        assert actual.address == "127.0.0.1"
        assert [p.container_port for p in actual.ports] == [8080]
        assert actual.running_since > 0
        body = await wait_for(lambda p=actual.ports[0].host_port: http_get(p), "an HTTP answer")
        assert f"Hello from lattice-demo, instance {index}" in body
        attrs = docker_client.api.inspect_container(actual.container_id)
        assert attrs["Config"]["Labels"] == {
            "lattice.cluster_id": await ensure_cluster_id(etcd),
            "lattice.process_guid": "web",
            "lattice.index": str(index),
            "lattice.instance_guid": assignment.instance_guid,
            "lattice.cell_id": cell.cell_id,
        }
        env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
        assert env["PORT"] == "8080"
        assert env["INSTANCE_INDEX"] == str(index)
        assert json.loads(env["VCAP_APPLICATION"])["instance_id"] == assignment.instance_guid
        assert attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        assert attrs["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostIp"] == "127.0.0.1"
    assert len(cell_containers(docker_client, cell.cell_id)) == 2


async def test_a_killed_container_is_crashed_within_a_second_and_its_assignment_deleted(
    harness: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    harness.sync_interval_s = 60.0       # only Docker's event stream can be this quick
    await harness.start()
    await desire(etcd, run_info("web", demo_image), instances=1)
    await claim(etcd, harness.cell_id, "web", 0)
    actual = await wait_for(lambda: running_with_ports(etcd, "web", 0), "web/0 RUNNING")
    container_id = actual.container_id  # type: ignore[attr-defined]

    killed_at = time.monotonic()
    docker_client.api.kill(container_id)
    crashed = await wait_for(lambda: actual_in(etcd, "web", 0, ActualState.CRASHED), "CRASHED")
    # One second in production; the margin is for a shared, loaded test machine.
    assert time.monotonic() - killed_at < 3.0
    assert crashed.crash_count == 1
    assert crashed.crash_reason == "Exited with status 137"
    assert crashed.address == ""
    assert crashed.ports == ()
    assert crashed.container_id == ""
    assert await etcd.get(keys.assignment(harness.cell_id, "web", 0)) is None
    await wait_for(lambda: not container_exists(docker_client, container_id), "removal")
    cell_lines = [e.message for e in harness.sink.of("web", "CELL")]
    assert "Exit status 137" in cell_lines


async def test_a_deleted_assignment_stops_the_container_and_leaves_the_actual_alone(
    cell: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    await desire(etcd, run_info("web", demo_image), instances=1)
    await claim(etcd, cell.cell_id, "web", 0)
    running = await wait_for(lambda: running_with_ports(etcd, "web", 0), "web/0 RUNNING")
    before = await etcd.get(keys.actual("web", 0))

    await unassign(etcd, cell.cell_id, "web", 0)
    await wait_for(lambda: not cell_containers(docker_client, cell.cell_id), "container removed")
    assert not container_exists(docker_client, running.container_id)  # type: ignore[attr-defined]
    after = await etcd.get(keys.actual("web", 0))
    assert before is not None
    assert after is not None
    assert after.mod_revision == before.mod_revision     # the brain owns the record now


async def test_stdout_and_stderr_lines_reach_the_sink_in_order_with_docker_timestamps(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    script = "echo out-1; echo err-1 >&2; echo out-2; exec sleep 3600"
    await desire(etcd, run_info("talker", demo_image, command=("/bin/sh", "-c", script),
                                monitor=None), instances=1)
    started_ns = time.time_ns()
    await claim(etcd, cell.cell_id, "talker", 0)

    lines = await wait_for(
        lambda: (found := cell.sink.of("talker")) and len(found) >= 3 and found, "3 APP lines"
    )
    # Docker copies stdout and stderr with one goroutine each and stamps a line before it
    # takes the log file's lock, so only the order within a stream is kept, in the lines and
    # in their stamps; across the two streams neither order is promised.
    out = [e for e in lines if e.message_type == "OUT"]
    err = [e for e in lines if e.message_type == "ERR"]
    assert [e.message for e in out] == ["out-1", "out-2"]
    assert [e.message for e in err] == ["err-1"]
    assert all(e.source_instance == "0" for e in lines)
    assert out[0].timestamp < out[1].timestamp
    stamps = [e.timestamp for e in lines]
    assert len(set(stamps)) == 3
    assert all(started_ns - 5 * 10**9 < stamp < time.time_ns() for stamp in stamps)
    cell_lines = [e.message for e in cell.sink.of("talker", "CELL")]
    assert cell_lines[:2] == ["Creating container", "Successfully created container"]


async def test_a_process_that_does_not_listen_stays_claimed(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await desire(etcd, run_info("mute", demo_image, command=SLEEP), instances=1)
    with capture_logs() as events:
        await claim(etcd, cell.cell_id, "mute", 0)
        started = await wait_for(
            lambda: _with_ports(etcd, "mute"), "host ports recorded on the ActualLRP"
        )
        # Through docker-proxy the connect succeeds; the check must still fail...
        host_port = started.ports[0].host_port
        assert not await port_is_open("127.0.0.1", host_port)
        # ...and the cell must have checked and failed several times.
        await wait_for(
            lambda: sum(1 for e in events if e["event"] == "health-check-failed") >= 3,
            "three failed health checks",
        )
    actual = await actual_of(etcd, "mute", 0)
    assert actual is not None
    assert actual.state == ActualState.CLAIMED


async def _with_ports(etcd: Etcd, guid: str) -> object:
    actual = await actual_of(etcd, guid, 0)
    return actual if actual is not None and actual.ports else None


async def test_no_monitor_means_running_at_once(
    cell: CellUnderTest, etcd: Etcd, demo_image: str
) -> None:
    await desire(etcd, run_info("quiet", demo_image, command=SLEEP, monitor=None), instances=1)
    await claim(etcd, cell.cell_id, "quiet", 0)
    running = await wait_for(lambda: actual_in(etcd, "quiet", 0, ActualState.RUNNING), "RUNNING")
    assert running.container_id
    assert running.ports


async def test_a_missing_image_is_reported_crashed_with_the_reason(
    cell: CellUnderTest, etcd: Etcd, docker_client: docker.DockerClient
) -> None:
    await desire(etcd, run_info("ghost", "lattice-test/no-such-image:1"), instances=1)
    await claim(etcd, cell.cell_id, "ghost", 0)
    crashed = await wait_for(lambda: actual_in(etcd, "ghost", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "image not found: lattice-test/no-such-image:1"
    assert crashed.crash_count == 1
    assert await etcd.get(keys.assignment(cell.cell_id, "ghost", 0)) is None
    assert not cell_containers(docker_client, cell.cell_id)


async def test_a_restarted_cell_adopts_its_running_container(
    harness: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    await harness.start()
    await desire(etcd, run_info("web", demo_image), instances=1)
    await claim(etcd, harness.cell_id, "web", 0)
    first = await wait_for(lambda: running_with_ports(etcd, "web", 0), "web/0 RUNNING")
    container_id = first.container_id  # type: ignore[attr-defined]
    started_at = docker_client.api.inspect_container(container_id)["State"]["StartedAt"]

    await harness.stop()
    assert await etcd.get(keys.cell(harness.cell_id)) is None
    await harness.start()

    # Adopted: the same container, never restarted, the record untouched...
    state = docker_client.api.inspect_container(container_id)["State"]
    assert state["Running"]
    assert state["StartedAt"] == started_at
    assert [c["Id"] for c in cell_containers(docker_client, harness.cell_id)] == [container_id]
    actual = await actual_of(etcd, "web", 0)
    assert actual is not None
    assert actual.state == ActualState.RUNNING
    assert actual.container_id == container_id
    # ...and watched: its crash is seen by the new runner.
    docker_client.api.kill(container_id)
    crashed = await wait_for(lambda: actual_in(etcd, "web", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "Exited with status 137"


async def test_containers_of_the_cell_without_assignment_are_removed_at_start(
    harness: CellUnderTest, demo_image: str, docker_client: docker.DockerClient, etcd: Etcd
) -> None:
    def labelled(cluster_id: str) -> str:
        created = docker_client.api.create_container(
            demo_image, command=list(SLEEP),
            labels={"lattice.test": "1", "lattice.cell_id": harness.cell_id,
                    "lattice.cluster_id": cluster_id,
                    "lattice.instance_guid": "stale-instance", "lattice.process_guid": "old",
                    "lattice.index": "0"},
        )
        docker_client.api.start(created["Id"])
        return str(created["Id"])

    stale = labelled(await ensure_cluster_id(etcd))
    # Same cell id, another box on the same Docker engine: not this cell's to remove.
    other_box = labelled("another-box")
    try:
        await harness.start()
        # Both were listed by the same start-up sync, so one gone and one kept is the verdict.
        await wait_for(lambda: not container_exists(docker_client, stale), "orphan removed")
        assert container_exists(docker_client, other_box)
    finally:
        docker_client.api.remove_container(other_box, force=True)


async def test_presence_is_kept_while_serving_and_released_on_shutdown(
    cell: CellUnderTest, etcd: Etcd
) -> None:
    kv = await etcd.get(keys.cell(cell.cell_id))
    assert kv is not None
    assert kv.lease != 0
    presence = CellPresence.from_dict(json.loads(kv.value))
    assert presence.cell_id == cell.cell_id
    assert presence.address == "127.0.0.1"
    assert (presence.capacity.memory_mb, presence.capacity.disk_mb) == (4096, 4096)
    assert presence.capacity.containers == 256
    await cell.stop()
    assert await etcd.get(keys.cell(cell.cell_id)) is None


async def test_a_failed_health_check_after_passing_is_a_crash(
    harness: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    harness.health = HealthSettings(healthy_interval_s=0.2)
    await harness.start()
    # httpd daemonizes; the shell stays as the container's process after httpd is killed.
    script = "httpd -p 8080 -h /www; exec sleep 3600"
    await desire(etcd, run_info("flaky", demo_image, command=("/bin/sh", "-c", script)),
                 instances=1)
    await claim(etcd, harness.cell_id, "flaky", 0)
    running = await wait_for(lambda: running_with_ports(etcd, "flaky", 0), "RUNNING")
    container_id = running.container_id  # type: ignore[attr-defined]

    docker_client.api.exec_start(docker_client.api.exec_create(container_id, ["killall", "httpd"]))
    crashed = await wait_for(lambda: actual_in(etcd, "flaky", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "health check failed"
    assert crashed.crash_count == 1
    await wait_for(lambda: not container_exists(docker_client, container_id), "removal")


async def test_an_app_that_exits_is_crashed_with_its_status_and_its_last_words(
    cell: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    script = "echo last words; exit 3"
    await desire(etcd, run_info("brief", demo_image, command=("/bin/sh", "-c", script),
                                monitor=None), instances=1)
    await claim(etcd, cell.cell_id, "brief", 0)
    crashed = await wait_for(lambda: actual_in(etcd, "brief", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "Exited with status 3"
    assert [e.message for e in cell.sink.of("brief")] == ["last words"]
    await wait_for(lambda: not cell_containers(docker_client, cell.cell_id), "removal")
