"""The log aggregator's one configuration object, built at the entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class LogaggConfig:
    host: str = "127.0.0.1"
    port: int = 0                   # 0: let the kernel pick a free port
    etcd_endpoints: str
    domain: str = "lattice.localhost"
    recent_lines: int = 1000        # per app, in the ring buffer behind /recentlogs
    idle_app_s: float = 3600.0      # an app silent this long loses its recent lines
    subscriber_queue: int = 1000    # per live subscriber, before its backlog is dropped
    drain_queue: int = 10_000       # per syslog drain, before its oldest lines are dropped

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not self.host:
            problems.append("host: must not be empty")
        if not 0 <= self.port <= 65535:
            problems.append(f"port: must be 0..65535, got {self.port}")
        if not self.etcd_endpoints.strip():
            problems.append("etcd_endpoints: must name at least one etcd endpoint")
        if not self.domain:
            problems.append("domain: must not be empty")
        if self.recent_lines < 1:
            problems.append(f"recent_lines: must be at least 1, got {self.recent_lines}")
        if self.idle_app_s <= 0:
            problems.append(f"idle_app_s: must be positive, got {self.idle_app_s}")
        if self.subscriber_queue < 1:
            problems.append(f"subscriber_queue: must be at least 1, got {self.subscriber_queue}")
        if self.drain_queue < 1:
            problems.append(f"drain_queue: must be at least 1, got {self.drain_queue}")
        if problems:
            raise ValueError("invalid log aggregator config: " + "; ".join(problems))
