"""Container specs built from the desired state: environment, limits, ports, labels."""

from __future__ import annotations

import json

import pytest

from lattice.cell.spec import (
    build_container_spec,
    container_name,
    cpu_shares,
    instance_env,
    memory_limit_bytes,
    published_ports,
)
from lattice.models import Assignment, PortMonitor, RunInfo

ASSIGNMENT = Assignment(
    process_guid="web", index=2, instance_guid="abcdef0123456789", memory_mb=128, disk_mb=256,
    cpu_weight=50,
)
RUN = RunInfo(
    process_guid="web", image="lattice/demo-app:latest", env=(("GREETING", "hi"),),
    ports=(8080, 9090), monitor=PortMonitor(8080),
)


def test_environment_has_the_users_and_the_platforms_variables() -> None:
    env = instance_env(RUN, ASSIGNMENT, "127.0.0.2")
    assert env["GREETING"] == "hi"
    assert env["PORT"] == "8080"
    assert env["INSTANCE_INDEX"] == env["CF_INSTANCE_INDEX"] == "2"
    assert env["INSTANCE_GUID"] == env["CF_INSTANCE_GUID"] == "abcdef0123456789"
    assert env["CF_INSTANCE_IP"] == "127.0.0.2"
    assert env["CF_INSTANCE_PORT"] == "8080"
    assert env["CF_INSTANCE_ADDR"] == "127.0.0.2:8080"


def test_vcap_application_describes_the_instance() -> None:
    vcap = json.loads(instance_env(RUN, ASSIGNMENT, "127.0.0.1")["VCAP_APPLICATION"])
    assert vcap == {
        "application_name": "web",
        "application_id": "web",
        "instance_id": "abcdef0123456789",
        "instance_index": 2,
        "limits": {"mem": 128, "disk": 256},
        "host": "0.0.0.0",
        "port": 8080,
    }


def test_the_platform_wins_over_user_variables_of_the_same_name() -> None:
    run = RunInfo(process_guid="web", image="x", env=(("INSTANCE_INDEX", "99"), ("PORT", "1")),
                  ports=(8080,))
    env = instance_env(run, ASSIGNMENT, "127.0.0.1")
    assert env["INSTANCE_INDEX"] == "2"
    assert env["PORT"] == "8080"


def test_an_app_without_ports_gets_no_port_variables() -> None:
    env = instance_env(RunInfo(process_guid="w", image="x"), ASSIGNMENT, "127.0.0.1")
    assert "PORT" not in env
    assert "CF_INSTANCE_ADDR" not in env
    assert json.loads(env["VCAP_APPLICATION"])["port"] is None


@pytest.mark.parametrize(
    ("weight", "shares"), [(100, 1024), (50, 512), (1, 10), (0, None), (-3, None), (500, 1024)]
)
def test_cpu_weight_maps_to_a_share_of_1024(weight: int, shares: int | None) -> None:
    assert cpu_shares(weight) == shares


def test_memory_zero_means_no_limit() -> None:
    assert memory_limit_bytes(0) is None
    assert memory_limit_bytes(128) == 128 * 1024 * 1024


def test_the_monitored_port_is_published_even_when_not_an_app_port() -> None:
    run = RunInfo(process_guid="w", image="x", ports=(8080, 8080), monitor=PortMonitor(7070))
    assert published_ports(run) == (8080, 7070)
    assert published_ports(RunInfo(process_guid="w", image="x", ports=(8080,))) == (8080,)


def test_container_name_is_docker_safe() -> None:
    assert container_name("cell/0 b", ASSIGNMENT) == "lattice-cell_0_b-web-2-abcdef01"


def test_spec_carries_limits_labels_and_ports_on_the_cell_address() -> None:
    spec = build_container_spec(cluster_id="box1", cell_id="cell-7", address="127.0.0.3", run=RUN,
                                assignment=ASSIGNMENT)
    kwargs = spec.create_kwargs()
    assert kwargs["image"] == "lattice/demo-app:latest"
    assert kwargs["name"] == "lattice-cell-7-web-2-abcdef01"
    assert kwargs["ports"] == {"8080/tcp": ("127.0.0.3", None), "9090/tcp": ("127.0.0.3", None)}
    assert kwargs["mem_limit"] == 128 * 1024 * 1024
    assert kwargs["cpu_shares"] == 512
    assert kwargs["labels"] == {
        "lattice.cluster_id": "box1",
        "lattice.process_guid": "web",
        "lattice.index": "2",
        "lattice.instance_guid": "abcdef0123456789",
        "lattice.cell_id": "cell-7",
    }
    assert "command" not in kwargs                   # the image's own CMD
    assert "privileged" not in kwargs
    assert "user" not in kwargs
    assert "working_dir" not in kwargs


def test_command_and_args_replace_the_images_cmd_together() -> None:
    run = RunInfo(process_guid="w", image="x", command=("/bin/sh", "-c"), args=("echo hi",),
                  user="nobody", working_dir="/tmp", privileged=True)
    kwargs = build_container_spec(cluster_id="box1", cell_id="c", address="127.0.0.1", run=run,
                                  assignment=ASSIGNMENT).create_kwargs()
    assert kwargs["command"] == ["/bin/sh", "-c", "echo hi"]
    assert kwargs["user"] == "nobody"
    assert kwargs["working_dir"] == "/tmp"
    assert kwargs["privileged"] is True


def test_args_alone_are_the_command() -> None:
    run = RunInfo(process_guid="w", image="x", args=("--verbose",))
    kwargs = build_container_spec(cluster_id="box1", cell_id="c", address="127.0.0.1", run=run,
                                  assignment=ASSIGNMENT).create_kwargs()
    assert kwargs["command"] == ["--verbose"]


def test_unlimited_memory_and_default_cpu_set_no_limits() -> None:
    assignment = Assignment("w", 0, "g", memory_mb=0, disk_mb=0, cpu_weight=0)
    kwargs = build_container_spec(cluster_id="box1", cell_id="c", address="127.0.0.1", run=RUN,
                                  assignment=assignment).create_kwargs()
    assert "mem_limit" not in kwargs
    assert "cpu_shares" not in kwargs
