"""The appliance end to end: `vagrant up --provider=docker` boots the box; `ltc target` with the
generated credentials; an app is created and routed; `vagrant halt` + `vagrant up` bring it
back; `vagrant destroy -f` leaves no container, volume, network or process behind.

Real Vagrant, real Docker (the box's own engine runs inside the container), real sockets on
loopback. Vagrant's state lives in a temporary VAGRANT_DOTFILE_PATH, so this never touches a
developer's own `vagrant up` of the same directory. Minutes, not seconds: CI runs it, and
`pytest -m "not vagrant"` leaves it out locally. The first run builds the base image (root,
debootstrap, about a minute); later runs reuse it by tag.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lattice.auth import Credentials
from lattice.etcd_server import free_port
from tests.integration.box import wait_for

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "lattice.localhost"

pytestmark = [pytest.mark.integration, pytest.mark.vagrant]


@dataclass
class VagrantBox:
    tmp: Path
    port: int

    @property
    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("LATTICE_", "VM_"))}
        return {**base, "VAGRANT_CWD": str(ROOT), "VAGRANT_DOTFILE_PATH": str(self.tmp / "dot"),
                "LATTICE_PORT": str(self.port), "LATTICE_CONFIG": str(self.tmp / "ltc.json")}

    def vagrant(self, *args: str, timeout: float = 600) -> str:
        result = subprocess.run(["vagrant", *args], env=self.env, capture_output=True,
                                text=True, timeout=timeout, check=False)
        assert result.returncode == 0, f"vagrant {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def ltc(self, *args: str, stdin: str = "", timeout: float = 180) -> str:
        result = subprocess.run([sys.executable, "-m", "lattice.cli.ltc", *args], env=self.env,
                                input=stdin, capture_output=True, text=True, timeout=timeout,
                                check=False)
        assert result.returncode == 0, f"ltc {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def container_id(self) -> str | None:
        path = self.tmp / "dot" / "machines" / "default" / "docker" / "id"
        return path.read_text().strip() if path.exists() else None

    def get(self, host: str, path: str = "/",
            credentials: Credentials | None = None) -> tuple[int, str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Host": host}
        if credentials is not None:
            headers["Authorization"] = credentials.header()
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            return response.status, response.read().decode()
        except OSError as exc:
            return 0, str(exc)
        finally:
            connection.close()


def docker_json(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=False).stdout
    return list(json.loads(out)) if out.strip().startswith("[") else []


def docker_lines(*args: str) -> set[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # gone since listed
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.fixture
def vagrant_box(tmp_path: Path) -> Iterator[VagrantBox]:
    if shutil.which("vagrant") is None:
        pytest.fail("vagrant is not installed: run `make deps` (Debian: apt-get install vagrant)")
    box = VagrantBox(tmp=tmp_path, port=free_port())
    try:
        yield box
    finally:
        # Whatever the test reached: destroy, and remove the container with its volumes if
        # Vagrant could not.
        subprocess.run(["vagrant", "destroy", "-f"], env=box.env, capture_output=True,
                       timeout=180, check=False)
        cid = box.container_id()
        if cid:
            subprocess.run(["docker", "rm", "-f", "-v", cid], capture_output=True, check=False)


def test_vagrant_up_target_app_halt_up_destroy(vagrant_box: VagrantBox) -> None:
    box = vagrant_box
    networks_before = docker_lines("network", "ls", "-q")

    # 1. vagrant up: the box announces its target and the credentials it generated.
    out = box.vagrant("up", "--provider=docker")
    assert f"ltc target {DOMAIN}:{box.port}" in out, out
    match = re.search(r"generated credentials: username (\S+), password (\S+)", out)
    assert match, out
    credentials = Credentials(match.group(1), match.group(2))
    cid = box.container_id()
    assert cid
    [info] = docker_json("inspect", cid)
    volumes = [m["Name"] for m in info["Mounts"] if m["Type"] == "volume"]
    assert volumes, "the inner engine's /var/lib/docker must be a volume"

    # The router is published on the host's loopback only, and the box is never open.
    ports = info["NetworkSettings"]["Ports"]["80/tcp"]
    assert ports == [{"HostIp": "127.0.0.1", "HostPort": str(box.port)}]
    status, _ = box.get(f"receptor.{DOMAIN}", "/v1/cells")
    assert status == 401

    # 2. ltc target, password on stdin.
    box.ltc("target", f"{DOMAIN}:{box.port}", "--username", credentials.username,
            stdin=credentials.password + "\n")

    # 3. ltc test when the box's smoke test exists; an app through the router in any case.
    if re.search(r"^\s+test\s", box.ltc("--help"), re.MULTILINE):
        box.ltc("test")
    box.ltc("create", "hello", "lattice/demo-app:latest", "-i", "2")
    answers = {box.get(f"hello.{DOMAIN}")[1].strip() for _ in range(4)}
    assert answers == {"Hello from lattice-demo, instance 0",
                       "Hello from lattice-demo, instance 1"}

    # 4. halt, up: the app created before is back (etcd's data and the images survived).
    box.vagrant("halt")
    [halted] = docker_json("inspect", cid)
    assert halted["State"]["Running"] is False
    box.vagrant("up", "--provider=docker")
    assert box.container_id() == cid, "vagrant up after a halt must start the same container"
    wait_for(lambda: box.get(f"hello.{DOMAIN}")[0] == 200, 90, "hello routed after the reboot")
    assert "hello" in box.ltc("list")

    # 5. destroy: no container, volume, network or process of the box is left.
    box.vagrant("destroy", "-f")
    assert docker_json("inspect", cid) == []
    leftover_volumes = set(volumes) & docker_lines("volume", "ls", "-q")
    assert not leftover_volumes
    assert docker_lines("network", "ls", "-q") == networks_before
    assert processes_mentioning(cid) == []
    assert port_is_free(box.port)
