"""vagrant/provision.sh on a stand-in for the Debian VM: the base image booted with systemd as
PID 1, the VM's private-network address on an empty bridge of the container's own network
namespace (traffic to it never leaves that namespace; the `dummy` link type needs a kernel
module these hosts lack, a bridge does not), the project synced read-only at
/vagrant, Python wheels from a local wheelhouse instead of the index.

It checks what a VirtualBox or libvirt user gets: the units start and the box answers through
the router on port 80; a second run changes nothing (no file rewritten, no service restarted);
instances are advertised on the private-network address, not on another interface; after a
reboot (`docker restart`, as `vagrant halt` + `vagrant up`) the app is back.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.box import wait_for

ROOT = Path(__file__).resolve().parents[2]
VM_IP = "192.168.11.11"
DOMAIN = f"{VM_IP}.nip.io"
LTC = "/opt/lattice/venv/bin/ltc"

pytestmark = [pytest.mark.integration, pytest.mark.vagrant]

# The same privileges the Vagrantfile's docker provider asks for, for the same reason: an
# engine (here also systemd) inside the container.
PRIVILEGES = ["--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
              "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"]
BOOT = (
    'for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done; '
    f"ip link add lattice0 type bridge && ip addr add {VM_IP}/24 dev lattice0 && "
    "ip link set lattice0 up; exec /lib/systemd/systemd"
)


@dataclass
class Vm:
    container: str

    def run(self, *argv: str, stdin: str = "", env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env_args = [arg for k, v in (env or {}).items() for arg in ("-e", f"{k}={v}")]
        return subprocess.run(["docker", "exec", "-i", *env_args, self.container, *argv],
                              input=stdin, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def ok(self, *argv: str, **kwargs: object) -> str:
        result = self.run(*argv, **kwargs)  # type: ignore[arg-type]
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def provision(self) -> str:
        return self.ok("bash", "/vagrant/vagrant/provision.sh",
                       env={"LATTICE_IP": VM_IP, "PIP_NO_INDEX": "1",
                            "PIP_FIND_LINKS": "/wheels"})

    def booted(self) -> bool:
        state = self.run("systemctl", "is-system-running", timeout=30).stdout.strip()
        return state in ("running", "degraded")

    def ltc(self, *args: str, stdin: str = "") -> str:
        return self.ok("env", "LATTICE_CONFIG=/root/ltc.json", LTC, *args, stdin=stdin)

    def app_answers(self, app: str) -> bool:
        return self.run("curl", "-fs", "-H", f"Host: {app}.{DOMAIN}",
                        f"http://{VM_IP}/", timeout=30).returncode == 0


def base_image() -> str:
    result = subprocess.run([str(ROOT / "vagrant" / "build-image.sh")], capture_output=True,
                            text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1]


def wheelhouse(into: Path) -> Path:
    """The project's dependencies and its build backend as wheels, so that provision.sh's pip
    needs no index (a real VM has one)."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)
    wanted = [*project["project"]["dependencies"], *project["build-system"]["requires"], "wheel"]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "-d", str(into), *wanted],
                   capture_output=True, timeout=600, check=True)
    return into


# The cgroup v1 controllers systemd mounts, grouped as it mounts them.
SYSTEMD_V1_HIERARCHIES = ("cpu,cpuacct", "net_cls,net_prio", "perf_event", "hugetlb", "rdma",
                          "misc", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


def host_cgroup_controllers_mounted() -> None:
    """Mount, on the host, every enabled cgroup v1 controller that no mount holds yet.

    systemd in the stand-in VM shares the host's cgroup hierarchies (Docker 20.10 on cgroup v1
    gives no private cgroup namespace). It mounts each controller it finds enabled; for one the
    host never mounted, that creates a hierarchy the host's Docker engine sees in every
    container's /proc/PID/cgroup but cannot find mounted, and from then on `docker stats` is
    empty for every container on the machine. Mounted here first, systemd joins the host's
    hierarchy instead. A host on cgroup v2 alone has nothing to do.
    """
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return
    with Path("/proc/cgroups").open() as table:
        enabled = {line.split()[0] for line in table
                   if not line.startswith("#") and line.split()[3] == "1"}
    mounted: set[str] = set()
    with Path("/proc/self/mounts").open() as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "cgroup":
                mounted.update(fields[3].split(","))
    for hierarchy in SYSTEMD_V1_HIERARCHIES:
        controllers = [c for c in hierarchy.split(",") if c in enabled]
        if not controllers or set(controllers) & mounted:
            continue
        name = ",".join(controllers)
        (root / name).mkdir(exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", name, "cgroup", str(root / name)],
                       check=True, capture_output=True, timeout=30)


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[Vm]:
    host_cgroup_controllers_mounted()
    image = base_image()
    wheels = wheelhouse(tmp_path / "wheels")
    name = f"lattice-provision-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        # PYTHONPATH= : the image's own (the docker provider's) would hand pip the
        # dependencies already, where a VM's pip must install them into the venv.
        ["docker", "run", "-d", "--name", name, *PRIVILEGES, "-e", "container=docker",
         "-e", "PYTHONPATH=",
         "--tmpfs", "/run", "--tmpfs", "/run/lock", "-v", "/var/lib/docker",
         "-v", f"{ROOT}:/vagrant:ro", "-v", f"{wheels}:/wheels:ro",
         "--entrypoint", "/bin/sh", image, "-c", BOOT],
        capture_output=True, text=True, timeout=60, check=True,
    )
    try:
        machine = Vm(name)
        wait_for(machine.booted, 90, "systemd to finish booting", every=0.5)
        yield machine
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


def unit_state(vm: Vm) -> dict[str, str]:
    """What a second provisioning must not change: files' mtimes and services' main pids."""
    files = vm.ok("sh", "-c", "stat -c '%n %Y' /etc/systemd/system/lattice-*.service "
                              "/etc/lattice/lattice.env /opt/lattice/venv/.lattice-source")
    pids = vm.ok("sh", "-c", "for u in etcd brain logagg router cell; do "
                             "echo lattice-$u $(systemctl show -p MainPID --value lattice-$u); "
                             "done")
    return dict(line.split(" ", 1) for line in (files + pids).splitlines())


def test_provision_on_a_systemd_debian_is_idempotent_and_survives_a_reboot(vm: Vm) -> None:
    first = vm.provision()
    assert f"ltc target {DOMAIN}" in first, first
    match = re.search(r"generated credentials: username (\S+), password (\S+)", first)
    assert match, first
    username, password = match.groups()
    before = unit_state(vm)
    assert all(pid != "0" for unit, pid in before.items() if not unit.startswith("/")), before

    second = vm.provision()
    assert "installing" not in second
    assert f"password {password}" in second, "the generated credentials are kept"
    assert unit_state(vm) == before, "a second run must change nothing"

    vm.ltc("target", DOMAIN, "--username", username, stdin=password + "\n")
    vm.ltc("test")
    vm.ltc("create", "hello", "lattice/demo-app:latest")
    # Advertised on the private network's address (the one LATTICE_IP names), nothing else.
    assert f"{VM_IP} " in vm.ltc("status", "hello")
    assert vm.app_answers("hello")

    subprocess.run(["docker", "restart", "-t", "30", vm.container], capture_output=True,
                   timeout=120, check=True)
    wait_for(vm.booted, 90, "systemd to boot again", every=0.5)
    wait_for(lambda: vm.app_answers("hello"), 120, "hello routed after the reboot", every=0.5)
