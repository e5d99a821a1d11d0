"""Prewarmed network sandboxes: their names, container arguments, and an instance's in one."""

from __future__ import annotations

from lattice.cell.docker_engine import facts_from_inspect, network_owner
from lattice.cell.sandboxes import key_ports, port_key, sandbox_create_kwargs
from lattice.cell.spec import LABEL_SANDBOX, LABEL_SANDBOX_ID, build_container_spec
from lattice.images import SANDBOX_IMAGE
from lattice.models import Assignment, PortMonitor, RunInfo

ASSIGNMENT = Assignment(process_guid="web", index=0, instance_guid="abcdef0123456789",
                        memory_mb=128, disk_mb=0, cpu_weight=50)
RUN = RunInfo(process_guid="web", image="lattice/demo-app:latest", ports=(9090, 8080),
              monitor=PortMonitor(8080))


def test_a_port_set_is_named_by_its_sorted_ports_whatever_their_order() -> None:
    assert port_key((9090, 8080, 9090)) == port_key([8080, 9090]) == "8080,9090"
    assert key_ports("8080,9090") == (8080, 9090)
    assert port_key(()) == ""


def test_a_sandbox_publishes_its_ports_on_the_cell_address_and_may_do_nothing_else() -> None:
    kwargs = sandbox_create_kwargs(cluster_id="box1", cell_id="cell/7", address="127.0.0.3",
                                   key="8080,9090")
    assert kwargs["image"] == SANDBOX_IMAGE
    assert kwargs["name"].startswith("lattice-cell_7-sandbox-")
    assert kwargs["ports"] == {"8080/tcp": ("127.0.0.3", None), "9090/tcp": ("127.0.0.3", None)}
    assert kwargs["labels"] == {"lattice.cluster_id": "box1", "lattice.cell_id": "cell/7",
                                LABEL_SANDBOX: "8080,9090"}
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["read_only"] is True
    assert "privileged" not in kwargs
    other = sandbox_create_kwargs(cluster_id="box1", cell_id="cell/7", address="127.0.0.3",
                                  key="8080")
    assert other["name"] != kwargs["name"]


def test_an_instance_in_a_sandbox_joins_its_network_and_publishes_nothing_itself() -> None:
    spec = build_container_spec(cluster_id="box1", cell_id="cell-7", address="127.0.0.3",
                                run=RUN, assignment=ASSIGNMENT)
    own = spec.create_kwargs()
    assert "network_mode" not in own
    assert LABEL_SANDBOX_ID not in own["labels"]
    joined = spec.in_sandbox("f00d").create_kwargs()
    assert joined["network_mode"] == "container:f00d"
    assert "ports" not in joined       # Docker refuses ports with a container's network
    assert joined["labels"] == {**own["labels"], LABEL_SANDBOX_ID: "f00d"}
    assert {k: v for k, v in joined.items() if k not in ("network_mode", "labels")} == {
        k: v for k, v in own.items() if k not in ("ports", "labels")}


def test_an_inspected_container_names_the_network_it_joined() -> None:
    attrs = {"Id": "c1", "State": {"Status": "running", "Pid": 42},
             "Config": {"Labels": {LABEL_SANDBOX_ID: "f00d"}},
             "HostConfig": {"NetworkMode": "container:f00d"},
             "NetworkSettings": {"Ports": {}}}
    assert network_owner(attrs) == "f00d"
    facts = facts_from_inspect(attrs, {8080: 32001})
    assert facts.sandbox_id == "f00d"
    assert facts.host_ports == {8080: 32001}
    assert network_owner({"HostConfig": {"NetworkMode": "default"}}) == ""
    assert network_owner({}) == ""
