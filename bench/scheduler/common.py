"""Shared parts of the scheduler benchmarks: a real box, a router client, a poller."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lattice import etcd_server
from lattice.etcd_server import free_port

DOMAIN = "bench.localhost"


def poll(check: Callable[[], bool], timeout: float, every: float = 0.01) -> float:
    """Seconds until `check` holds; raises TimeoutError past `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise TimeoutError("condition not met in time")
        time.sleep(every)
    return time.monotonic() - started


def http_get(port: int, host: str | None = None, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path, headers={"Host": host} if host else {})
        response = conn.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


@dataclass
class RunningBox:
    router_port: int
    data_dir: Path
    etcd: str           # the box's etcd, started by the benchmark so that it can watch it too

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.router_port, timeout=10)
        try:
            payload = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=payload,
                         headers={"Host": f"receptor.{DOMAIN}", "Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def ltc(self, *args: str) -> None:
        env = {"LATTICE_CONFIG": str(self.data_dir / "ltc.json"), "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-m", "lattice.cli.ltc_entry", *args], env=env, check=True,
                       capture_output=True, text=True)

    def all_answer(self, app: str, instances: int) -> bool:
        """Whether every index answers through the router (round-robin: 2N requests suffice)."""
        seen = set()
        for _ in range(2 * instances):
            status, body = http_get(self.router_port, f"{app}.{DOMAIN}")
            if status == 200:
                seen.add(body.decode().strip().rsplit(" ", 1)[-1])
        return len(seen) == instances


@contextmanager
def running_box() -> Iterator[RunningBox]:
    data_dir = Path(tempfile.mkdtemp(prefix="lattice-bench-"))
    port = free_port()
    etcd_command = etcd_server.EtcdCommand.on_free_ports(data_dir / "etcd")
    etcd = etcd_server.start(etcd_command)
    log = open(data_dir / "up.log", "wb")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "lattice.cli.server", "up", "--data-dir", str(data_dir),
         "--domain", DOMAIN, "--router-port", str(port), "--etcd", etcd_command.endpoint],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        poll(lambda: "lattice is up" in (data_dir / "up.log").read_text(), 90, every=0.1)
        box = RunningBox(port, data_dir, etcd_command.endpoint)
        box.ltc("target", f"{DOMAIN}:{port}")
        yield box
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()
        etcd.terminate()
        etcd.wait(10)
        shutil.rmtree(data_dir, ignore_errors=True)
