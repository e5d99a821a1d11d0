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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assignment:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


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
