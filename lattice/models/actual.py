"""ActualLRP: one record per instance index, and the rules for how its state may change."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any


class ActualState(enum.StrEnum):
    UNCLAIMED = "UNCLAIMED"  # wanted, not yet placed on a cell
    CLAIMED = "CLAIMED"      # placed on a cell, container starting or not yet healthy
    RUNNING = "RUNNING"      # health check passed; routable
    CRASHED = "CRASHED"      # exited or failed its check; waiting for the restart policy


# Who may move an instance from one state to another; checked on every write (Diego's
# ActualLRP.AllowsTransitionTo). UNCLAIMED -> RUNNING is not allowed: a cell must claim first.
_ALLOWED: dict[ActualState, frozenset[ActualState]] = {
    ActualState.UNCLAIMED: frozenset({ActualState.UNCLAIMED, ActualState.CLAIMED}),
    ActualState.CLAIMED: frozenset(
        {ActualState.UNCLAIMED, ActualState.CLAIMED, ActualState.RUNNING, ActualState.CRASHED}
    ),
    ActualState.RUNNING: frozenset(
        {ActualState.UNCLAIMED, ActualState.CLAIMED, ActualState.RUNNING, ActualState.CRASHED}
    ),
    ActualState.CRASHED: frozenset({ActualState.UNCLAIMED, ActualState.CRASHED}),
}


def allows_transition(current: ActualState, new: ActualState) -> bool:
    return new in _ALLOWED[current]


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int


@dataclass(frozen=True)
class ActualLRP:
    process_guid: str
    index: int
    instance_guid: str
    state: ActualState
    since: int                      # ns since the epoch, when `state` was entered
    cell_id: str = ""
    address: str = ""
    ports: tuple[PortMapping, ...] = ()
    crash_count: int = 0
    crash_reason: str = ""
    placement_error: str = ""
    container_id: str = ""
    running_since: int = 0          # ns; when the current run became RUNNING (for count reset)
    run_version: int = 0            # the RunInfo.version this instance runs (rolling updates)
    # Frozen (docker pause) by an idle app in pause mode: not routable until its cell thawed
    # it. Set by the brain with the pause, cleared by the cell once the container is thawed.
    paused: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["state"] = str(self.state)
        if not self.paused:
            data.pop("paused")      # written only when set: older records read the same
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActualLRP:
        return cls(
            process_guid=data["process_guid"],
            index=int(data["index"]),
            instance_guid=data["instance_guid"],
            state=ActualState(data["state"]),
            since=int(data["since"]),
            cell_id=data.get("cell_id", ""),
            address=data.get("address", ""),
            ports=tuple(PortMapping(**p) for p in data.get("ports", ())),
            crash_count=int(data.get("crash_count", 0)),
            crash_reason=data.get("crash_reason", ""),
            placement_error=data.get("placement_error", ""),
            container_id=data.get("container_id", ""),
            running_since=int(data.get("running_since", 0)),
            run_version=int(data.get("run_version", 0)),
            paused=bool(data.get("paused", False)),
        )

    def transition(self, state: ActualState, now: int, **changes: Any) -> ActualLRP:
        if not allows_transition(self.state, state):
            raise InvalidTransition(self.state, state)
        since = self.since if state == self.state else now
        return replace(self, state=state, since=since, **changes)


class InvalidTransition(Exception):
    def __init__(self, current: ActualState, new: ActualState) -> None:
        super().__init__(f"cannot move an instance from {current} to {new}")
        self.current = current
        self.new = new
