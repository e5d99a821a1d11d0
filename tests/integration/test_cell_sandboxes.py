"""Prewarmed network sandboxes (cell/sandboxes.py) against a real etcd and Docker engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import docker
import pytest

from lattice.cell.spec import LABEL_SANDBOX, LABEL_SANDBOX_ID
from lattice.images import SANDBOX_IMAGE
from lattice.models import ActualLRP, ActualState
from lattice.store import Etcd, ensure_cluster_id
from tests.support_cell import (
    CellUnderTest,
    actual_in,
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


@pytest.fixture
async def harness(etcd_endpoint: str, demo_image: str) -> AsyncIterator[CellUnderTest]:
    """A cell that keeps one sandbox warm, not yet started; removed with all it started."""
    cell = CellUnderTest(etcd_endpoint, warm_sandboxes=1, sync_interval_s=0.5)
    try:
        yield cell
    finally:
        await cell.close()


def sandboxes(client: docker.DockerClient, cell_id: str) -> list[dict[str, Any]]:
    return [c for c in cell_containers(client, cell_id)
            if LABEL_SANDBOX in (c.get("Labels") or {})]


def instance_containers(client: docker.DockerClient, cell_id: str) -> list[dict[str, Any]]:
    return [c for c in cell_containers(client, cell_id)
            if LABEL_SANDBOX not in (c.get("Labels") or {})]


def warm_ids(client: docker.DockerClient, cell_id: str, *, besides: set[str] = frozenset()
             ) -> set[str]:
    """Running sandboxes of the cell that no instance container names, except `besides`."""
    used = {(c.get("Labels") or {}).get(LABEL_SANDBOX_ID)
            for c in instance_containers(client, cell_id)}
    return {str(c["Id"]) for c in sandboxes(client, cell_id)
            if c["State"] == "running" and c["Id"] not in used and c["Id"] not in besides}


def published(client: docker.DockerClient, container_id: str) -> dict[str, Any]:
    attrs: dict[str, Any] = client.api.inspect_container(container_id)
    return dict(attrs["NetworkSettings"]["Ports"] or {})


async def running(etcd: Etcd, guid: str, index: int) -> ActualLRP | None:
    actual = await actual_in(etcd, guid, index, ActualState.RUNNING)
    return actual if actual is not None and actual.ports else None


async def start_web_once_warm(harness: CellUnderTest, etcd: Etcd, demo_image: str,
                              docker_client: docker.DockerClient) -> ActualLRP:
    """Start the cell, and once it has a warm sandbox, an instance web/0; it RUNNING."""
    await harness.start()
    await wait_for(lambda: warm_ids(docker_client, harness.cell_id), "a warm sandbox")
    await desire(etcd, run_info("web", demo_image), instances=1)
    await claim(etcd, harness.cell_id, "web", 0)
    return await wait_for(lambda: running(etcd, "web", 0), "web/0 RUNNING")


async def test_an_instance_starts_in_a_warm_sandbox_which_goes_with_it(
    harness: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    await harness.start()
    warm = await wait_for(lambda: warm_ids(docker_client, harness.cell_id), "a warm sandbox")
    (sandbox_id,) = warm
    attrs = docker_client.api.inspect_container(sandbox_id)
    assert attrs["Config"]["Image"] == SANDBOX_IMAGE
    assert attrs["Config"]["Labels"][LABEL_SANDBOX] == "8080"
    assert not attrs["HostConfig"]["Privileged"]
    assert attrs["HostConfig"]["CapDrop"] == ["ALL"]
    (binding,) = published(docker_client, sandbox_id)["8080/tcp"]
    assert binding["HostIp"] == "127.0.0.1"

    await desire(etcd, run_info("web", demo_image), instances=1)
    await claim(etcd, harness.cell_id, "web", 0)
    actual = await wait_for(lambda: running(etcd, "web", 0), "web/0 RUNNING")

    # The instance runs in the sandbox's network, reached at the sandbox's published port.
    container = docker_client.api.inspect_container(actual.container_id)
    assert container["HostConfig"]["NetworkMode"] == f"container:{sandbox_id}"
    assert container["Config"]["Labels"][LABEL_SANDBOX_ID] == sandbox_id
    assert [(p.container_port, p.host_port) for p in actual.ports] == [
        (8080, int(binding["HostPort"]))]
    body = await wait_for(lambda: http_get(actual.ports[0].host_port), "an answer")
    assert "instance 0" in body
    # The pool is refilled with a new sandbox, never the used one.
    refilled = await wait_for(lambda: warm_ids(docker_client, harness.cell_id), "a refill")
    assert sandbox_id not in refilled

    await unassign(etcd, harness.cell_id, "web", 0)
    await wait_for(lambda: not container_exists(docker_client, actual.container_id),
                   "the instance's container removed")
    await wait_for(lambda: not container_exists(docker_client, sandbox_id),
                   "its sandbox removed with it")
    assert warm_ids(docker_client, harness.cell_id) == refilled


async def test_a_dead_sandbox_crashes_its_instance_which_starts_again(
    harness: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    actual = await start_web_once_warm(harness, etcd, demo_image, docker_client)
    sandbox_id = docker_client.api.inspect_container(actual.container_id)["Config"]["Labels"][
        LABEL_SANDBOX_ID]

    docker_client.api.kill(sandbox_id)
    crashed = await wait_for(lambda: actual_in(etcd, "web", 0, ActualState.CRASHED), "CRASHED")
    assert crashed.crash_reason == "network sandbox stopped"
    await wait_for(lambda: not container_exists(docker_client, actual.container_id),
                   "the instance's container removed")
    await wait_for(lambda: not container_exists(docker_client, sandbox_id), "sandbox removed")
    # What the brain's restart does: a new claim starts and answers.
    await claim(etcd, harness.cell_id, "web", 0)
    again = await wait_for(lambda: running(etcd, "web", 0), "web/0 RUNNING again")
    assert await wait_for(lambda: http_get(again.ports[0].host_port), "an answer")


async def test_a_restarted_cell_keeps_the_sandbox_in_use_and_its_warm_one(
    harness: CellUnderTest, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    actual = await start_web_once_warm(harness, etcd, demo_image, docker_client)
    warm = await wait_for(lambda: warm_ids(docker_client, harness.cell_id), "a refill")
    before = {str(c["Id"]) for c in cell_containers(docker_client, harness.cell_id)}

    await harness.stop()
    await harness.start()
    # A stray started now goes after two sweeps; by then the others would have gone too, if
    # they were to: the instance is adopted in its sandbox, and the warm one is taken over.
    stray = start_stray_sandbox(docker_client, await ensure_cluster_id(etcd), harness.cell_id)
    await wait_for(lambda: not container_exists(docker_client, stray), "the stray removed")
    assert {str(c["Id"]) for c in cell_containers(docker_client, harness.cell_id)} == before
    assert warm_ids(docker_client, harness.cell_id) == warm
    body = await wait_for(lambda: http_get(actual.ports[0].host_port), "an answer")
    assert "instance 0" in body


def start_stray_sandbox(client: docker.DockerClient, cluster_id: str, cell_id: str) -> str:
    """A sandbox nobody holds, as a cell that died between warming one and using it leaves."""
    created = client.api.create_container(
        SANDBOX_IMAGE, labels={"lattice.cluster_id": cluster_id, "lattice.cell_id": cell_id,
                               LABEL_SANDBOX: "9999"})
    client.api.start(created["Id"])
    return str(created["Id"])


async def test_an_unheld_sandbox_is_removed_and_a_cell_without_a_pool_warms_none(
    etcd_endpoint: str, etcd: Etcd, demo_image: str, docker_client: docker.DockerClient
) -> None:
    cell = CellUnderTest(etcd_endpoint, warm_sandboxes=0, sync_interval_s=0.5)
    cluster_id = await ensure_cluster_id(etcd)
    await cell.start()
    try:
        # Left by an earlier run of the cell with a pool: nobody holds it.
        stray = start_stray_sandbox(docker_client, cluster_id, cell.cell_id)
        await wait_for(lambda: not container_exists(docker_client, stray),
                       "the unheld sandbox removed")
        await desire(etcd, run_info("web", demo_image), instances=1)
        await claim(etcd, cell.cell_id, "web", 0)
        actual = await wait_for(lambda: running(etcd, "web", 0), "web/0 RUNNING")
        container = docker_client.api.inspect_container(actual.container_id)
        assert container["HostConfig"]["NetworkMode"] != f"container:{stray}"
        assert LABEL_SANDBOX_ID not in container["Config"]["Labels"]
        assert "8080/tcp" in published(docker_client, actual.container_id)
        assert sandboxes(docker_client, cell.cell_id) == []
    finally:
        await cell.close()
