"""Records that cells and other components keep alive under etcd leases."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Capacity:
    memory_mb: int
    disk_mb: int
    containers: int


@dataclass(frozen=True)
class CellPresence:
    cell_id: str
    address: str          # where this cell publishes container ports (a loopback address here)
    capacity: Capacity
    zone: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellPresence:
        return cls(
            cell_id=data["cell_id"],
            address=data["address"],
            capacity=Capacity(**data["capacity"]),
            zone=data.get("zone", ""),
        )


@dataclass(frozen=True)
class Assignment:
    """The auctioneer's word to one cell: run this instance. Written with the CLAIM, atomically."""

    process_guid: str
    index: int
    instance_guid: str
    memory_mb: int
    disk_mb: int
    cpu_weight: int
    # The brain asks the cell to freeze (True) or thaw (False) the container: an idle app in
    # pause mode (models/autoscale.py). The cell reacts to the change from its watch.
    paused: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.paused:
            data.pop("paused")      # written only when set: older records read the same
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assignment:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k != "paused"}
        return cls(**fields, paused=bool(data.get("paused", False)))


@dataclass(frozen=True)
class ServiceRecord:
    """A box component announcing itself: the router serves `hostnames` from `address`."""

    name: str               # "receptor" (the API) or "doppler" (the log aggregator)
    instance_id: str
    address: str            # host:port, always reachable from the router
    hostnames: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceRecord:
        return cls(
            name=data["name"],
            instance_id=data["instance_id"],
            address=data["address"],
            hostnames=tuple(data.get("hostnames", ())),
        )
