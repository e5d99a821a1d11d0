"""Request/response calls to the Docker engine through docker-py, off the event loop.

docker-py blocks, so every call runs in this engine's own thread pool (STYLE.md item 15): the
loop's default executor is small and shared, and a slow `docker stop` must not starve it.
Every docker-py and requests error is translated into `lattice.cell.errors` here.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import docker
import docker.errors
from docker.models.containers import _create_container_args

from lattice.cell.errors import (
    ContainerNotFound,
    ContainerStartFailed,
    DockerError,
    DockerUnavailable,
    ImageNotFound,
)
from lattice.cell.spec import (
    LABEL_CELL_ID,
    LABEL_CLUSTER_ID,
    LABEL_INSTANCE_GUID,
    LABEL_SANDBOX_ID,
    ContainerSpec,
)

T = TypeVar("T")

DOCKER_WORKERS = 16
STOP_TIMEOUT_S = 10


@dataclass(frozen=True)
class ContainerFacts:
    """What the cell needs to know about one container, from an inspect or a list."""

    id: str
    status: str                            # created, running, paused, restarting, exited, dead
    labels: dict[str, str] = field(default_factory=dict)
    host_ports: dict[int, int] = field(default_factory=dict)   # container port -> host port
    exit_code: int | None = None           # only known from an inspect
    oom_killed: bool = False
    pid: int = 0                           # its main process on the host (inspect, running)

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    @property
    def instance_guid(self) -> str:
        return self.labels.get(LABEL_INSTANCE_GUID, "")

    @property
    def sandbox_id(self) -> str:
        """The prewarmed sandbox whose network this container joined; "" if its own."""
        return self.labels.get(LABEL_SANDBOX_ID, "")

    def exit_reason(self) -> str:
        """The crash reason users see, in Diego's words."""
        reason = f"Exited with status {self.exit_code}"
        return f"{reason} (out of memory)" if self.oom_killed else reason


def host_ports_of(attrs: dict[str, Any]) -> dict[int, int]:
    """An inspected container's published TCP ports: container port -> host port."""
    ports: dict[int, int] = {}
    for spec, bindings in ((attrs.get("NetworkSettings") or {}).get("Ports") or {}).items():
        number, _, protocol = spec.partition("/")
        if protocol == "tcp" and bindings:
            ports[int(number)] = int(bindings[0]["HostPort"])
    return ports


def network_owner(attrs: dict[str, Any]) -> str:
    """The container whose network namespace this one joined (`--network container:ID`);
    "" if it has its own. Its ports are published on that container, not on this one."""
    mode = str((attrs.get("HostConfig") or {}).get("NetworkMode") or "")
    return mode.removeprefix("container:") if mode.startswith("container:") else ""


def facts_from_inspect(attrs: dict[str, Any], host_ports: dict[int, int] | None = None
                       ) -> ContainerFacts:
    state = attrs.get("State") or {}
    return ContainerFacts(
        id=attrs["Id"],
        status=state.get("Status", ""),
        labels=dict((attrs.get("Config") or {}).get("Labels") or {}),
        host_ports=host_ports_of(attrs) if host_ports is None else host_ports,
        exit_code=state.get("ExitCode"),
        oom_killed=bool(state.get("OOMKilled", False)),
        pid=int(state.get("Pid") or 0),
    )


def facts_from_list(item: dict[str, Any]) -> ContainerFacts:
    ports = {
        int(p["PrivatePort"]): int(p["PublicPort"])
        for p in item.get("Ports") or []
        if p.get("Type") == "tcp" and "PublicPort" in p
    }
    return ContainerFacts(
        id=item["Id"], status=item.get("State", ""), labels=dict(item.get("Labels") or {}),
        host_ports=ports,
    )


@contextmanager
def translated_errors(what: str) -> Iterator[None]:
    """docker-py's and requests' errors -> the cell's, naming what was being done."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise DockerError(f"{what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, OSError) as exc:
        # requests' ConnectionError is an OSError; DockerException covers a bad DOCKER_HOST.
        raise DockerUnavailable(f"{what}: the Docker engine cannot be reached: {exc}") from exc


def create_container_args(client: docker.DockerClient, create_kwargs: dict[str, Any]
                          ) -> dict[str, Any]:
    """The low-level `create_container` arguments for docker-py's `containers.create` keyword
    arguments, converted exactly as that call converts them. It also reads the new container
    back (one more engine round trip per container, while a cell starts many at once); the
    cell inspects it once anyway, after `start`, when its host ports are known."""
    kwargs = dict(create_kwargs)
    kwargs.setdefault("command", None)
    kwargs["version"] = client.api._version
    args: dict[str, Any] = _create_container_args(kwargs)
    return args


def cell_filters(
    cluster_id: str, cell_id: str, instance_guid: str | None = None
) -> dict[str, list[str]]:
    """Docker label filters for one cell of one box (cell ids repeat across boxes)."""
    labels = [f"{LABEL_CLUSTER_ID}={cluster_id}", f"{LABEL_CELL_ID}={cell_id}"]
    if instance_guid is not None:
        labels.append(f"{LABEL_INSTANCE_GUID}={instance_guid}")
    return {"label": labels}


class DockerEngine:
    def __init__(self, *, workers: int = DOCKER_WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docker")
        self._workers = workers
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()

    def _docker(self) -> docker.DockerClient:
        # Created on first use, in a worker thread: docker-py asks the engine for its API
        # version when it is built, and an engine that is down must not fail the constructor.
        with self._client_lock:
            if self._client is None:
                with translated_errors("connecting to Docker"):
                    self._client = docker.from_env(max_pool_size=self._workers)
            return self._client

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    # -- the blocking halves -----------------------------------------------------------------

    def _create_and_start(self, create_kwargs: dict[str, Any]) -> ContainerFacts:
        client = self._docker()
        name, image = create_kwargs["name"], create_kwargs["image"]
        try:
            args = create_container_args(client, create_kwargs)
            container_id = client.api.create_container(**args)["Id"]
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(image) from exc
        except docker.errors.APIError as exc:
            raise ContainerStartFailed(
                f"cannot create container: {exc.explanation or exc}"
            ) from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"creating {name}: {exc}") from exc
        try:
            client.api.start(container_id)
        except docker.errors.APIError as exc:
            self._remove(container_id)
            raise ContainerStartFailed(
                f"cannot start container: {exc.explanation or exc}"
            ) from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"starting {name}: {exc}") from exc
        return self._inspect(container_id)

    def _inspect_attrs(self, container_id: str) -> dict[str, Any]:
        try:
            attrs: dict[str, Any] = self._docker().api.inspect_container(container_id)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(container_id) from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"inspecting {container_id[:12]}: {exc}") from exc
        return attrs

    def _inspect(self, container_id: str) -> ContainerFacts:
        return facts_from_inspect(self._inspect_attrs(container_id))

    def _inspect_published(self, container_id: str) -> ContainerFacts:
        attrs = self._inspect_attrs(container_id)
        owner = network_owner(attrs)
        if not owner:
            return facts_from_inspect(attrs)
        # In a sandbox's network: its ports are the sandbox's. A sandbox that is gone has none.
        try:
            ports = host_ports_of(self._inspect_attrs(owner))
        except ContainerNotFound:
            ports = {}
        return facts_from_inspect(attrs, ports)

    def _list(
        self, cluster_id: str, cell_id: str, instance_guid: str | None
    ) -> list[ContainerFacts]:
        client = self._docker()
        filters = cell_filters(cluster_id, cell_id, instance_guid)
        with translated_errors(f"listing the containers of cell {cell_id}"):
            items = client.api.containers(all=True, filters=filters)
        return [facts_from_list(item) for item in items]

    def _remove(self, container_id: str) -> bool:
        """Kill and remove; False if it was gone already."""
        client = self._docker()
        try:
            client.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409 and "already in progress" in str(exc.explanation):
                return True       # another caller is removing it: same outcome
            raise DockerError(f"removing {container_id[:12]}: {exc.explanation}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"removing {container_id[:12]}: {exc}") from exc
        return True

    def _stop_and_remove(self, container_id: str, timeout_s: int) -> bool:
        client = self._docker()
        try:
            client.api.stop(container_id, timeout=timeout_s)   # SIGTERM, SIGKILL after timeout
        except docker.errors.NotFound:
            return False
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"stopping {container_id[:12]}: {exc}") from exc
        return self._remove(container_id)

    def _exec(self, container_id: str, command: tuple[str, ...]) -> tuple[int, str]:
        """Run `command` in the container; its exit status and combined output."""
        api = self._docker().api
        with translated_errors(f"running a command in {container_id[:12]}"):
            exec_id = api.exec_create(container_id, list(command), stdout=True, stderr=True)
            output = api.exec_start(exec_id)
            code = api.exec_inspect(exec_id).get("ExitCode")
        text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
        return (-1 if code is None else int(code)), text

    def _set_paused(self, container_id: str, paused: bool) -> None:
        """`docker pause` / `docker unpause`; already in that state counts as done."""
        api = self._docker().api
        try:
            (api.pause if paused else api.unpause)(container_id)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(container_id) from exc
        except docker.errors.APIError as exc:
            text = str(exc.explanation or "")
            if exc.status_code == 409 and ("already paused" in text or "not paused" in text):
                return
            raise DockerError(f"{'pausing' if paused else 'unpausing'} {container_id[:12]}: "
                              f"{text or exc}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"pausing {container_id[:12]}: {exc}") from exc

    def _root_dir(self) -> str:
        with translated_errors("reading the engine's info"):
            return str(self._docker().info()["DockerRootDir"])

    # -- the async face ----------------------------------------------------------------------

    async def create_and_start(self, spec: ContainerSpec) -> ContainerFacts:
        """Create and start the container and return it inspected, with its host ports (a
        sandbox's, if it runs in one).

        Raises ImageNotFound or ContainerStartFailed for the instance's faults (a container
        that fails to start is removed again), DockerUnavailable for the engine's.
        """
        facts = await self._call(self._create_and_start, spec.create_kwargs())
        # In a sandbox, the container publishes nothing itself: its ports are the sandbox's,
        # known since the sandbox was warmed.
        return replace(facts, host_ports=dict(spec.sandbox_ports)) if spec.sandbox_id else facts

    async def create_and_start_raw(self, create_kwargs: dict[str, Any]) -> ContainerFacts:
        """The same, from docker-py's `containers.create` keyword arguments (a sandbox's)."""
        return await self._call(self._create_and_start, create_kwargs)

    async def inspect(self, container_id: str) -> ContainerFacts:
        """The container's state, with the ports it publishes itself (none in a sandbox)."""
        return await self._call(self._inspect, container_id)

    async def inspect_published(self, container_id: str) -> ContainerFacts:
        """The same, with a sandboxed container's ports read from its sandbox (one more engine
        call): for a container adopted after a restart of the cell."""
        return await self._call(self._inspect_published, container_id)

    async def list_cell_containers(
        self, cluster_id: str, cell_id: str, instance_guid: str | None = None
    ) -> list[ContainerFacts]:
        """Every container labelled with this cell (and instance), running or not."""
        return await self._call(self._list, cluster_id, cell_id, instance_guid)

    async def remove(self, container_id: str) -> bool:
        return await self._call(self._remove, container_id)

    async def stop_and_remove(self, container_id: str, timeout_s: int = STOP_TIMEOUT_S) -> bool:
        return await self._call(self._stop_and_remove, container_id, timeout_s)

    async def exec_command(self, container_id: str, command: tuple[str, ...]) -> tuple[int, str]:
        """`docker exec`: the exit status and output. DockerError if it cannot run at all (the
        container stopped); a missing binary is an exit status (126/127), not an error."""
        return await self._call(self._exec, container_id, command)

    async def set_paused(self, container_id: str, paused: bool) -> None:
        """Freeze (docker pause: cgroup freezer, memory kept) or thaw the container."""
        await self._call(self._set_paused, container_id, paused)

    async def root_dir(self) -> str:
        """Where the engine keeps images and containers: its free disk is the cell's disk."""
        return await self._call(self._root_dir)

    async def close(self) -> None:
        # Calls in flight are short (runners are cancelled before this), so wait for them
        # rather than closing the client under a worker thread's feet.
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def remove_cell_containers(cluster_id: str, cell_id: str) -> int:
    """Remove every container of this box's cell `cell_id`, running or not; how many.

    Blocking: for `lattice up`'s shutdown, which calls it from a thread.
    """
    with translated_errors(f"removing the containers of cell {cell_id}"):
        client = docker.from_env()
    try:
        with translated_errors(f"removing the containers of cell {cell_id}"):
            items = client.api.containers(all=True, filters=cell_filters(cluster_id, cell_id))
            removed = 0
            for item in items:
                try:
                    client.api.remove_container(item["Id"], force=True, v=True)
                    removed += 1
                except docker.errors.NotFound:
                    continue      # removed meanwhile by its cell: the outcome we want
        return removed
    finally:
        client.close()
