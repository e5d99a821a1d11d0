"""What the router benchmark runs: nginx backends in Docker, etcd, the router, a host nginx.

Each is a context manager that removes what it started, even when the benchmark fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.router.backend_image import BACKEND_IMAGE, BACKEND_PORT
from lattice import etcd_server
from lattice.etcd_server import EtcdCommand, free_port
from lattice.models import (
    ActualLRP,
    ActualState,
    ModificationTag,
    PortMapping,
    Route,
    SchedulingInfo,
)
from lattice.store import Etcd, keys

APP_GUID = "bench-app"
APP_HOST = "bench-app.bench.localhost"


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of `pid` and all its descendants (workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue    # it ended between listing and reading
    return total


def wait_http(port: int, host: str | None = None, timeout_s: float = 30.0) -> None:
    """Wait until 127.0.0.1:`port` answers 200 for `Host: host`."""
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(f"http://127.0.0.1:{port}/")
    if host is not None:
        request.add_header("Host", host)
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass      # not up yet: poll again until the deadline
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing answered 200 on 127.0.0.1:{port} in {timeout_s} s")
        time.sleep(0.05)


@contextmanager
def backends(count: int, *, cpu: int) -> Iterator[list[int]]:
    """`count` nginx containers published on 127.0.0.1; yields their host ports."""
    ids: list[str] = []
    try:
        for _ in range(count):
            done = subprocess.run(
                ["docker", "run", "-d", "--rm", f"--cpuset-cpus={cpu}",
                 "-p", f"127.0.0.1::{BACKEND_PORT}", BACKEND_IMAGE],
                capture_output=True, text=True, check=True,
            )
            ids.append(done.stdout.strip())
        ports = []
        for container in ids:
            mapping = subprocess.run(
                ["docker", "port", container, str(BACKEND_PORT)],
                capture_output=True, text=True, check=True,
            ).stdout.split()[0]
            ports.append(int(mapping.rsplit(":", 1)[1]))
        for port in ports:
            wait_http(port)
        yield ports
    finally:
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=False)


@contextmanager
def etcd() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="lattice-bench-etcd-") as tmp:
        command = EtcdCommand.on_free_ports(Path(tmp) / "etcd")
        process = etcd_server.start(command)
        try:
            asyncio.run(etcd_server.wait_until_ready(command.endpoint))
            yield command.endpoint
        finally:
            process.terminate()
            process.wait(timeout=10)


async def _register(endpoint: str, ports: list[int]) -> None:
    client = Etcd(endpoint)
    try:
        info = SchedulingInfo(
            process_guid=APP_GUID, instances=len(ports), memory_mb=64, disk_mb=0,
            cpu_weight=100, routes=(Route((APP_HOST,), BACKEND_PORT),),
            modification_tag=ModificationTag("bench"),
        )
        await client.put(keys.scheduling(APP_GUID), json.dumps(info.to_dict()).encode())
        for index, port in enumerate(ports):
            actual = ActualLRP(
                process_guid=APP_GUID, index=index, instance_guid=f"{APP_GUID}-{index}",
                state=ActualState.RUNNING, since=time.time_ns(), cell_id="bench",
                address="127.0.0.1", ports=(PortMapping(BACKEND_PORT, port),),
            )
            await client.put(keys.actual(APP_GUID, index), json.dumps(actual.to_dict()).encode())
    finally:
        await client.close()


def register_app(endpoint: str, ports: list[int]) -> None:
    """The app `APP_HOST` with one RUNNING instance per backend port."""
    asyncio.run(_register(endpoint, ports))


@contextmanager
def router(etcd_endpoint: str, *, cpus: str, workers: int = 1,
           extra: tuple[str, ...] = ()) -> Iterator[tuple[int, int]]:
    """`lattice router` pinned to `cpus` ("1", "0,1"); yields (port, pid) once it routes the
    app."""
    port = free_port()
    argv = ["taskset", "-c", cpus, sys.executable, "-m", "lattice.cli.server", "router",
            "--etcd", etcd_endpoint, "--port", str(port), "--json-logs", *extra]
    if workers != 1:
        argv += ["--workers", str(workers)]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_http(port, APP_HOST)
            yield port, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -15):
                output.seek(0)
                sys.stderr.write(output.read().decode(errors="replace")[-4000:])


@contextmanager
def logagg(etcd_endpoint: str, *, cpu: int) -> Iterator[None]:
    """A log aggregator pinned to `cpu`, registered in etcd: routers started on this etcd
    publish their RTR lines to it."""
    argv = ["taskset", "-c", str(cpu), sys.executable, "-m", "lattice.cli.server", "logagg",
            "--etcd", etcd_endpoint, "--port", "0", "--json-logs"]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
        try:
            asyncio.run(_wait_for_aggregator(etcd_endpoint, process))
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -15):
                output.seek(0)
                sys.stderr.write(output.read().decode(errors="replace")[-4000:])


async def _wait_for_aggregator(etcd_endpoint: str, process: subprocess.Popen[bytes],
                               timeout_s: float = 30.0) -> None:
    client = Etcd(etcd_endpoint)
    try:
        deadline = time.monotonic() + timeout_s
        while not (await client.get_prefix(keys.SERVICES + "doppler/"))[0]:
            if process.poll() is not None:
                raise RuntimeError(f"the log aggregator exited ({process.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no log aggregator registered in {timeout_s} s")
            await asyncio.sleep(0.05)
    finally:
        await client.close()


NGINX_PROXY_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream backends {{
        {servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@contextmanager
def nginx_proxy(backend_ports: list[int], *, cpu: int) -> Iterator[tuple[int, int]]:
    """Debian's nginx on the host, 1 worker, keep-alive upstream to the backends; yields
    (port, pid)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lattice-bench-nginx-") as tmp:
        servers = "\n        ".join(f"server 127.0.0.1:{p};" for p in backend_ports)
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_PROXY_CONF.format(dir=tmp, servers=servers, port=port))
        process = subprocess.Popen(
            ["taskset", "-c", str(cpu), "nginx", "-c", str(conf), "-p", tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(port, APP_HOST)
            yield port, process.pid
        finally:
            process.terminate()
            process.wait(timeout=20)
