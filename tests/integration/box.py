"""A real box for end-to-end tests: `lattice up` as a subprocess, reached only through its router.

`running_box` is how a test module gets one: started with the flags it asks for, waited for with
a deadline, and on exit stopped with nothing left behind (process, container or directory).
`stop()` checks that every process the box started is gone and reports how long stopping took.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

from lattice.auth import PASSWORD_ENV, USERNAME_ENV, Credentials
from lattice.etcd_server import free_port
from lattice.store import Etcd, ensure_cluster_id
from tests.waiting import wait_for

__all__ = ["Box", "alive", "descendants", "ltc", "ltc_ok", "running_box", "wait_for"]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces: the fields after it are fixed.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, with its command line."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = _parent_of(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: dict[int, str] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        todo.extend(children.get(pid, []))
    return found


async def _cluster_id(endpoint: str) -> str:
    etcd = Etcd(endpoint)
    try:
        return await ensure_cluster_id(etcd)
    finally:
        await etcd.close()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


PORT_ATTEMPTS = 3


class RouterPortTaken(AssertionError):
    """The router could not bind the port chosen for it: something took it meanwhile."""

    def __init__(self, port: int) -> None:
        super().__init__(f"the router's port {port} was taken before the router bound it")


@dataclass
class Box:
    data_dir: Path
    domain: str = "lattice.localhost"
    router_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    _cluster_id: str = ""
    extra_args: tuple[str, ...] = ()            # more `lattice up` flags, e.g. ("--cells", "3")
    env: dict[str, str] = field(default_factory=dict)   # more environment for `lattice up`
    authorization: str | None = None            # Authorization header for the box's API/logs
    ltc_timeout: float = 120                    # how long one `ltc` command may take

    @property
    def ltc_env(self) -> dict[str, str]:
        return {**os.environ, "LATTICE_CONFIG": str(self.data_dir / "ltc.json")}

    def start(self, timeout: float = 90) -> None:
        self.log_path = self.data_dir / f"up-{int(time.time() * 1000)}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lattice.cli.server", "up", "--data-dir",
                 str(self.data_dir), "--domain", self.domain, "--router-port",
                 str(self.router_port), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            )
        wait_for(self._started, timeout, "`lattice up` to announce it is up")

    def _started(self) -> bool:
        assert self.process is not None
        assert self.log_path is not None
        text = self.log_path.read_text(errors="replace")
        if self.process.poll() is not None:
            raise AssertionError(f"lattice up exited with {self.process.returncode}:\n{text}")
        if f"'127.0.0.1', {self.router_port}): address already in use" in text:
            raise RouterPortTaken(self.router_port)
        return "lattice is up" in text

    def start_on_a_free_port(self, timeout: float = 90) -> None:
        """`start`, again on another router port (up to PORT_ATTEMPTS times) while the chosen
        one is taken before the router binds it: free_port() cannot hold a port, and Docker
        publishes containers' ports (the cells' sandboxes, from the box's first second) in the
        same range without asking the kernel whether they are free."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self.start(timeout)
                return
            except RouterPortTaken:
                self.stop()
                if attempt == PORT_ATTEMPTS:
                    raise
                self.router_port = free_port()

    def stop(self, timeout: float = 20) -> float:
        """SIGTERM the box; returns the seconds it took; asserts nothing it started is left."""
        assert self.process is not None
        started_processes = descendants(self.process.pid)
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        took = time.monotonic() - started
        leftovers = {pid: cmd for pid, cmd in started_processes.items() if alive(pid)}
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert leftovers == {}, f"processes left behind: {leftovers}"
        return took

    @property
    def cluster_id(self) -> str:
        """The box's cluster id, which labels its containers (read once from its etcd)."""
        if self._cluster_id:
            return self._cluster_id
        assert self.process is not None
        for cmd in descendants(self.process.pid).values():
            words = cmd.split()
            if "lattice.cli.server" in words and "--etcd" in words:
                endpoint = words[words.index("--etcd") + 1]
                self._cluster_id = asyncio.run(_cluster_id(endpoint))
                return self._cluster_id
        raise AssertionError("no component of the box shows its etcd endpoint")

    def component_pid(self, name: str) -> int | None:
        """The pid of a component (`router`, `brain`, ...) that `lattice up` runs."""
        assert self.process is not None
        for pid, cmd in descendants(self.process.pid).items():
            if f"lattice.cli.server {name} " in cmd and alive(pid):
                return pid
        return None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    # -- HTTP through the router --------------------------------------------------------------

    def request(self, host: str, method: str = "GET", path: str = "/",
                body: Any = None, timeout: float = 10) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.router_port, timeout=timeout)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Host": host}
            if self.authorization is not None:
                headers["Authorization"] = self.authorization
            if payload is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw = self.request(f"receptor.{self.domain}", method, path, body)
        return status, (json.loads(raw) if raw else None)

    def app(self, name: str, path: str = "/") -> tuple[int, str]:
        status, raw = self.request(f"{name}.{self.domain}", "GET", path)
        return status, raw.decode(errors="replace")

    def actuals(self, name: str) -> list[dict[str, Any]]:
        status, body = self.api("GET", f"/v1/actual_lrps/{name}")
        assert status == 200, body
        return list(body)

    def wait_running(self, name: str, count: int, timeout: float = 60) -> list[dict[str, Any]]:
        def running() -> list[dict[str, Any]] | None:
            actuals = self.actuals(name)
            up = [a for a in actuals if a["state"] == "RUNNING"]
            return actuals if len(up) == count == len(actuals) else None

        return wait_for(running, timeout, f"{count} RUNNING instances of {name}")


# -- ltc against the box ----------------------------------------------------------------------

def ltc(box: Box, *args: str, stdin: str = "",
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run `ltc ARGS` with the box's ltc config; `timeout` defaults to the box's ltc_timeout.

    ltc reads `stdin`, never the terminal pytest runs in (which would make a prompt wait).
    """
    return subprocess.run(
        [sys.executable, "-m", "lattice.cli.ltc", *args], env=box.ltc_env, text=True,
        input=stdin, capture_output=True,
        timeout=box.ltc_timeout if timeout is None else timeout, check=False,
    )


def ltc_ok(box: Box, *args: str) -> str:
    """`ltc ARGS`'s stdout; fails the test with ltc's output if it exits non-zero."""
    result = ltc(box, *args)
    assert result.returncode == 0, f"ltc {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout


# -- a box for a test module ------------------------------------------------------------------

@contextmanager
def running_box(data_dir: Path, *, cells: int | None = None,
                credentials: Credentials | None = None, env: Mapping[str, str] | None = None,
                target: bool = True, ltc_timeout: float = 120,
                start_timeout: float = 90, router_port: int | None = None) -> Iterator[Box]:
    """`lattice up` in `data_dir`, up within `start_timeout` s, ltc targeted at it if `target`.

    `cells` is `--cells` (lattice up's default when None); `credentials` start the box secured
    (the test's own requests carry none: it sets `box.authorization` when it wants them); `env`
    is more environment for `lattice up`. On exit, even when starting failed: the box is stopped
    with no process of it left, no container of its cluster is left, and `data_dir` is gone.
    """
    secured = {} if credentials is None else {
        USERNAME_ENV: credentials.username, PASSWORD_ENV: credentials.password}
    box = Box(data_dir, extra_args=() if cells is None else ("--cells", str(cells)),
              env={**(env or {}), **secured}, ltc_timeout=ltc_timeout,
              router_port=free_port() if router_port is None else router_port)
    cluster_id = ""
    try:
        box.start_on_a_free_port(start_timeout)
        cluster_id = box.cluster_id     # read while its etcd runs, to find its containers after
        if target:
            login = () if credentials is None else ("--username", credentials.username)
            result = ltc(box, "target", f"{box.domain}:{box.router_port}", *login,
                         stdin="" if credentials is None else credentials.password + "\n")
            assert result.returncode == 0, f"ltc target: {result.stdout}\n{result.stderr}"
        yield box
    finally:
        try:
            if box.process is not None:
                box.stop()
        finally:
            left = _remove_containers(cluster_id) if cluster_id else []
            shutil.rmtree(data_dir)
        assert left == [], f"containers the stopped box left behind: {left}"


def _remove_containers(cluster_id: str) -> list[str]:
    """Force-remove every container labelled with `cluster_id`; the names of those there were."""
    client = docker.from_env()
    try:
        found = client.api.containers(all=True,
                                      filters={"label": f"lattice.cluster_id={cluster_id}"})
        for item in found:
            try:
                client.api.remove_container(item["Id"], force=True, v=True)
            except docker.errors.NotFound:
                continue            # gone meanwhile: the outcome we want
        return [name for item in found for name in item.get("Names", [])]
    finally:
        client.close()
