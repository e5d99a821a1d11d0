"""The router's counters, and their Prometheus text exposition (format 0.0.4).

Updated from the hot path, so recording is a few dict and list operations per request; the
text is only built when `/metrics` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left

# Upper bounds of the latency histogram's buckets, in seconds.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}     # (app, status) -> count
        self._buckets = [0] * (len(LATENCY_BUCKETS_S) + 1)  # the last is +Inf
        self._latency_sum_s = 0.0
        self.backend_errors = 0
        self.retries = 0

    def request_done(self, app: str, status: int, duration_s: float) -> None:
        key = (app, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        self._buckets[bisect_left(LATENCY_BUCKETS_S, duration_s)] += 1
        self._latency_sum_s += duration_s

    def render(self, *, routes: int, open_connections: int) -> str:
        lines = [
            "# HELP router_requests_total Requests answered, by app (process guid) and status.",
            "# TYPE router_requests_total counter",
        ]
        for (app, status), count in sorted(self.requests.items()):
            lines.append(
                f'router_requests_total{{app="{_escape(app)}",status="{status}"}} {count}'
            )
        lines += [
            "# HELP router_request_duration_seconds From request head to the response's end.",
            "# TYPE router_request_duration_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS_S, None), self._buckets, strict=True):
            cumulative += count
            le = "+Inf" if bound is None else repr(bound)
            lines.append(f'router_request_duration_seconds_bucket{{le="{le}"}} {cumulative}')
        lines += [
            f"router_request_duration_seconds_sum {self._latency_sum_s}",
            f"router_request_duration_seconds_count {cumulative}",
        ]
        gauges_and_counters: list[tuple[str, str, str, float]] = [
            ("router_backend_errors_total", "counter",
             "Dials that failed and backends that failed mid-request.", self.backend_errors),
            ("router_retries_total", "counter",
             "Requests sent to another endpoint after a failed dial.", self.retries),
            ("router_routes", "gauge", "Host names in the route table.", routes),
            ("router_open_connections", "gauge", "Client connections open now.",
             open_connections),
        ]
        for name, kind, text, value in gauges_and_counters:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


