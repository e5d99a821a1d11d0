"""The router's configuration, loaded once at its entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass

from lattice.store.etcd import parse_endpoints

BALANCING = ("round-robin", "least-connections")


@dataclass(frozen=True, kw_only=True)
class RouterConfig:
    etcd_endpoints: str
    host: str = "127.0.0.1"
    port: int = 8080                          # 0: any free port (RouterServer.port tells which)
    dial_timeout_s: float = 5.0               # connecting to a backend
    response_timeout_s: float = 60.0          # from request sent to the response's head
    client_idle_timeout_s: float = 90.0       # an idle keep-alive client connection is closed
    backend_idle_timeout_s: float = 30.0      # an idle pooled backend connection is closed
    max_idle_per_endpoint: int = 32           # pooled idle connections kept per backend
    max_attempts: int = 3                     # endpoints tried when dialing fails
    max_header_bytes: int = 64 * 1024         # a request head larger than this gets a 400
    shutdown_grace_s: float = 5.0             # in-flight requests may finish within this
    # SO_REUSEPORT: several router processes (one per core) may listen on the same port, and
    # the kernel spreads connections among them.
    reuse_port: bool = False
    balancing: str = "round-robin"            # or "least-connections" (BALANCING)
    cooldown_s: float = 10.0                  # an endpoint whose dial failed is skipped so long
    status_host: str = "127.0.0.1"
    status_port: int | None = None            # /health, /metrics, /routes; None: no status port
    # A request for a scaled-to-zero app waits this long for an instance, then gets a 503.
    cold_start_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        try:
            parse_endpoints(self.etcd_endpoints)
        except ValueError as exc:
            problems.append(f"etcd_endpoints: {exc}")
        if not self.host:
            problems.append("host: must not be empty")
        if not 0 <= self.port <= 65535:
            problems.append(f"port: {self.port} is outside 0-65535")
        for name in (
            "dial_timeout_s",
            "response_timeout_s",
            "client_idle_timeout_s",
            "backend_idle_timeout_s",
            "shutdown_grace_s",
            "cooldown_s",
            "cold_start_timeout_s",
        ):
            value = getattr(self, name)
            if not value > 0:
                problems.append(f"{name}: must be > 0, got {value}")
        for name in ("max_attempts", "max_header_bytes"):
            value = getattr(self, name)
            if value < 1:
                problems.append(f"{name}: must be >= 1, got {value}")
        if self.max_idle_per_endpoint < 0:
            problems.append(
                "max_idle_per_endpoint: must be >= 0 (0: no pooling), "
                f"got {self.max_idle_per_endpoint}"
            )
        if self.balancing not in BALANCING:
            problems.append(f"balancing: {self.balancing!r} is not one of {', '.join(BALANCING)}")
        if self.status_port is not None and not 0 <= self.status_port <= 65535:
            problems.append(f"status_port: {self.status_port} is outside 0-65535")
        if problems:
            raise ValueError("invalid router configuration: " + "; ".join(problems))
