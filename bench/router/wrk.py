"""Running `wrk` and reading its report."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int        # non-2xx/3xx answers plus socket errors
    requests: int = 0
    proxy_cpu_us: float = 0.0   # CPU time of the proxy's processes per request, if measured

    def row(self, name: str) -> str:
        cpu = f"   proxy CPU {self.proxy_cpu_us:5.1f} us/req" if self.proxy_cpu_us else ""
        return (f"{name:<28} {self.requests_per_s:>10,.0f} req/s   p50 {self.p50_ms:6.2f} ms"
                f"   p99 {self.p99_ms:6.2f} ms   errors {self.errors}{cpu}")


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {percentile}% latency in wrk's output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse(text: str) -> WrkResult:
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    if rate is None:
        raise ValueError(f"no Requests/sec in wrk's output:\n{text}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    return WrkResult(float(rate.group(1)), _latency_ms(text, "50"), _latency_ms(text, "99"),
                     errors, int(total.group(1)) if total else 0)


def run_wrk(url: str, *, host: str | None, cpu: int, connections: int = 32,
            duration_s: int = 5) -> WrkResult:
    """One wrk run pinned to `cpu`: one thread, `connections` keep-alive connections."""
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration_s}s",
            "--latency"]
    if host is not None:
        argv += ["-H", f"Host: {host}"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, check=True,
                          timeout=duration_s + 30)
    return parse(done.stdout)
