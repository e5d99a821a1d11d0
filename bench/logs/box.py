"""A real `lattice up` for the logs benchmark, and the printer image it runs.

Self-contained on purpose: the scheduler benchmarks' helpers change under other work.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lattice.etcd_server import free_port
from lattice.images import build_busybox_image

DOMAIN = "logbench.localhost"
PRINTER_IMAGE = "lattice/bench-printer:latest"
# A tight loop of shell builtins (no fork per line): `line 1` ... `line $LINES`, then idle so
# that the instance stays RUNNING while the subscriber drains the pipeline.
PRINTER_SCRIPT = ('i=0; while [ "$i" -lt "$LINES" ]; do i=$((i+1)); echo "line $i"; done; '
                  "exec sleep 3600")
# Paced: $BATCH lines, then `sleep $PAUSE`; below the pipeline's rate, so that latency is the
# path's own and not the wait behind a burst.
PACED_SCRIPT = ('i=0; while [ "$i" -lt "$LINES" ]; do i=$((i+1)); echo "line $i"; '
                'if [ $((i % BATCH)) -eq 0 ]; then sleep "$PAUSE"; fi; done; exec sleep 3600')
_DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh", "-c", "sleep 3600"]
"""


def build_printer_image() -> str:
    return build_busybox_image(PRINTER_IMAGE, _DOCKERFILE, {})


@dataclass
class Box:
    router_port: int
    data_dir: Path
    direct: bool = False       # subscribers dial the aggregator itself, not the router

    @property
    def stream_address(self) -> tuple[str, int]:
        """Where subscribers connect: the router, or (direct) the aggregator's own port."""
        if not self.direct:
            return "127.0.0.1", self.router_port
        text = (self.data_dir / "up.log").read_text(errors="replace")
        found = re.findall(r"logagg-started.*?address=([0-9.]+):(\d+)", text)
        if not found:
            raise RuntimeError("the aggregator's address is not in the box's log")
        host, port = found[-1]
        return host, int(port)

    @property
    def doppler_host(self) -> str:
        return f"doppler.{DOMAIN}"

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.router_port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=payload,
                         headers={"Host": f"receptor.{DOMAIN}",
                                  "Content-Type": "application/json"})
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def create_printer(self, app: str, lines: int, pace: tuple[int, float] | None) -> None:
        """`pace`: (batch, pause_s) for the paced printer; None prints flat out."""
        env = [{"name": "LINES", "value": str(lines)}]
        if pace is not None:
            env += [{"name": "BATCH", "value": str(pace[0])},
                    {"name": "PAUSE", "value": f"{pace[1]:g}"}]
        status, body = self.api("POST", "/v1/desired_lrps", {
            "process_guid": app, "image": PRINTER_IMAGE, "instances": 1, "memory_mb": 0,
            "routes": [], "monitor": {"port": None}, "command": ["/bin/sh"],
            "args": ["-c", PRINTER_SCRIPT if pace is None else PACED_SCRIPT], "env": env,
        })
        if status != 201:
            raise RuntimeError(f"creating {app} failed: {status} {body}")

    def remove(self, app: str) -> None:
        self.api("DELETE", f"/v1/desired_lrps/{app}")


@contextmanager
def running_box(*, direct: bool = False) -> Iterator[Box]:
    data_dir = Path(tempfile.mkdtemp(prefix="lattice-logbench-"))
    port = free_port()
    log_path = data_dir / "up.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lattice.cli.server", "up", "--data-dir", str(data_dir),
             "--domain", DOMAIN, "--router-port", str(port)],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "lattice is up" not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("lattice up did not start:\n" + log_path.read_text())
            time.sleep(0.1)
        yield Box(port, data_dir, direct)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
