"""The brain's configuration, loaded once at its entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass

from lattice.auth import Credentials


@dataclass(frozen=True, kw_only=True)
class BrainConfig:
    etcd_endpoints: str
    host: str = "127.0.0.1"
    port: int = 0                       # 0: pick a free port and announce it in etcd
    domain: str = "lattice.localhost"
    converge_interval_s: float = 5.0
    cell_grace_s: float = 6.0
    credentials: Credentials | None = None  # None: an open box (loopback only)
