"""Prewarmed network sandboxes: their names, container arguments, and an instance's in one."""

from __future__ import annotations

import asyncio

from lattice.cell.docker_engine import ContainerFacts, facts_from_inspect, network_owner
from lattice.cell.sandboxes import (
    Sandbox,
    SandboxPool,
    key_ports,
    port_key,
    sandbox_create_kwargs,
)
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
    joined = spec.in_sandbox("f00d", {8080: 32001, 9090: 32002}).create_kwargs()
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


class RecordingEngine:
    """Stands in for the Docker engine in the pool's bookkeeping: records what it removes."""

    def __init__(self) -> None:
        self.removed: list[str] = []

    async def remove(self, container_id: str) -> bool:
        self.removed.append(container_id)
        return True


def sandbox_facts(container_id: str, key: str = "8080") -> ContainerFacts:
    return ContainerFacts(id=container_id, status="running", labels={LABEL_SANDBOX: key})


def instance_facts(container_id: str, sandbox_id: str) -> ContainerFacts:
    return ContainerFacts(id=container_id, status="running",
                          labels={"lattice.instance_guid": "g", LABEL_SANDBOX_ID: sandbox_id})


async def settled(pool: SandboxPool) -> None:
    """Let the removals the pool spawned run to their end."""
    while pool._tasks:
        await asyncio.gather(*list(pool._tasks))


def warm_pool(engine: RecordingEngine, *warm: str) -> SandboxPool:
    pool = SandboxPool(engine=engine, cluster_id="box", cell_id="cell",  # type: ignore[arg-type]
                       address="127.0.0.1", size=2)
    pool._enabled = True        # as after start(): the image is there
    pool._warm["8080"] = [Sandbox(sandbox_id, {8080: 32000}) for sandbox_id in warm]
    return pool


async def test_an_unheld_sandbox_goes_at_its_second_sweep_and_held_ones_never() -> None:
    engine = RecordingEngine()
    pool = warm_pool(engine, "warm")
    listing = [sandbox_facts("warm"), sandbox_facts("used"), sandbox_facts("stray"),
               instance_facts("app", "used")]
    pool.sweep(listing)
    await asyncio.sleep(0)
    assert engine.removed == []          # one listing may be older than the pool's state
    pool.sweep(listing)
    await settled(pool)
    assert engine.removed == ["stray"]


async def test_a_sandbox_the_pool_removed_is_removed_once_and_tells_no_instance() -> None:
    engine = RecordingEngine()
    pool = warm_pool(engine)
    pool.discard("after-its-instance")
    assert not pool.gone("after-its-instance", destroyed=False)
    assert not pool.gone("after-its-instance", destroyed=True)
    assert pool.gone("killed-by-someone", destroyed=False)
    await settled(pool)
    assert engine.removed == ["after-its-instance", "killed-by-someone"]


async def test_a_take_lends_a_warm_sandbox_of_the_same_ports_or_learns_the_port_set() -> None:
    pool = warm_pool(RecordingEngine(), "w1")
    assert pool.take((9000,)) is None            # none warm: kept warm from now on
    assert "9000" in pool._warm
    lent = pool.take((8080,))
    assert lent is not None
    assert lent.id == "w1"
    assert pool.take((8080,)) is None            # the only one is lent
    pool.sweep([sandbox_facts("w1")])
    pool.sweep([sandbox_facts("w1")])            # lent: never swept, whatever the listing
    await settled(pool)
