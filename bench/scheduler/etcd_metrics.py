"""etcd's own request counters, read from its Prometheus `/metrics` on the client URL.

Counting at the server sees every client at once (the brain in its own process, the simulated
cells here), so the ops/s of a run need no instrumentation of the brain.

    grpc_server_handled_total{grpc_method="Range",grpc_service="etcdserverpb.KV",...} 123
"""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from dataclasses import dataclass

_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+'
                     r'(?P<value>[-+0-9.eE]+|NaN|[+-]Inf)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

KV_READS = ("Range",)
KV_WRITES = ("Put", "Txn", "DeleteRange")
LEASES = ("LeaseGrant", "LeaseRevoke")


@dataclass(frozen=True)
class EtcdCounts:
    """Requests etcd has answered, by gRPC method (unary), and keep-alive messages received."""

    by_method: dict[str, float]
    keepalives: float

    def __sub__(self, earlier: EtcdCounts) -> EtcdCounts:
        methods = set(self.by_method) | set(earlier.by_method)
        return EtcdCounts(
            {m: self.by_method.get(m, 0.0) - earlier.by_method.get(m, 0.0) for m in methods},
            self.keepalives - earlier.keepalives,
        )

    def total(self, methods: tuple[str, ...]) -> float:
        return sum(self.by_method.get(m, 0.0) for m in methods)

    @property
    def reads(self) -> float:
        return self.total(KV_READS)

    @property
    def writes(self) -> float:
        return self.total(KV_WRITES)

    @property
    def requests(self) -> float:
        """Every unary request (KV and lease) plus every keep-alive."""
        return self.reads + self.writes + self.total(LEASES) + self.keepalives


def parse(text: str) -> EtcdCounts:
    """The counters of one `/metrics` page. Unknown lines are ignored."""
    handled: Counter[str] = Counter()
    keepalives = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        method = labels.get("grpc_method", "")
        value = float(match["value"])
        if match["name"] == "grpc_server_handled_total" and labels.get("grpc_type") == "unary":
            handled[method] += value
        elif match["name"] == "grpc_server_msg_received_total" and method == "LeaseKeepAlive":
            keepalives += value
    return EtcdCounts(dict(handled), keepalives)


def read(endpoint: str) -> EtcdCounts:
    """Fetch and parse `<endpoint>/metrics` (a loopback URL: the benchmark's own etcd)."""
    with urllib.request.urlopen(f"{endpoint}/metrics", timeout=10) as response:
        return parse(response.read().decode())
