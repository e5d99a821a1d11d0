"""Configuration and the pure translations at the Docker boundary."""

from __future__ import annotations

import pytest

from lattice.cell.config import CellConfig
from lattice.cell.docker_engine import facts_from_inspect, facts_from_list
from lattice.cell.docker_streams import ContainerEvent, docker_socket_path, since_param
from lattice.cell.errors import DockerUnavailable


def test_defaults() -> None:
    config = CellConfig(etcd_endpoints="127.0.0.1:2379")
    assert (config.cell_id, config.address, config.containers) == ("cell-0", "127.0.0.1", 256)
    assert config.memory_mb is None
    assert config.disk_mb is None
    assert config.sync_interval_s == 5.0


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValueError, match="invalid cell configuration") as info:
        CellConfig(cell_id="a/b", address="", etcd_endpoints=" ", memory_mb=-1, disk_mb=-2,
                   containers=0, sync_interval_s=0)
    message = str(info.value)
    for name in ("cell_id", "address", "etcd_endpoints", "memory_mb", "disk_mb", "containers",
                 "sync_interval_s"):
        assert name in message


def test_docker_socket_from_docker_host() -> None:
    assert docker_socket_path({}) == "/var/run/docker.sock"
    assert docker_socket_path({"DOCKER_HOST": "unix:///run/user/docker.sock"}) == (
        "/run/user/docker.sock"
    )
    with pytest.raises(DockerUnavailable, match=r"tcp://127\.0\.0\.1:2375"):
        docker_socket_path({"DOCKER_HOST": "tcp://127.0.0.1:2375"})


def test_since_keeps_nanoseconds() -> None:
    assert since_param(1_700_000_000_000_000_001) == "1700000000.000000001"


def test_die_event_from_docker_json() -> None:
    event = ContainerEvent.from_json({
        "status": "die", "id": "abc", "Type": "container", "Action": "die",
        "Actor": {"ID": "abc", "Attributes": {"exitCode": "137", "lattice.index": "0"}},
        "time": 1, "timeNano": 1_000_000_123,
    })
    assert event == ContainerEvent("die", "abc", {"exitCode": "137", "lattice.index": "0"},
                                   1_000_000_123)


def test_facts_from_inspect_and_list() -> None:
    inspected = facts_from_inspect({
        "Id": "abc",
        "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True},
        "Config": {"Labels": {"lattice.instance_guid": "g"}},
        "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}],
                                      "9090/tcp": None, "53/udp": [{"HostPort": "1"}]}},
    })
    assert inspected.host_ports == {8080: 32768}
    assert not inspected.running
    assert inspected.instance_guid == "g"
    assert inspected.exit_reason() == "Exited with status 137 (out of memory)"
    listed = facts_from_list({
        "Id": "def", "State": "running", "Labels": {},
        "Ports": [{"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": 32769, "Type": "tcp"},
                  {"PrivatePort": 9090, "Type": "tcp"}],
    })
    assert listed.running
    assert listed.host_ports == {8080: 32769}
    assert listed.exit_code is None
