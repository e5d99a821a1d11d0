"""The cell's side of tasks: run each task assigned to this cell once, to completion.

    task assignment (etcd watch) ──> TaskRunner
        CLAIMED   ──> RUNNING (CAS) ──> create + start container ──> follow its output
        RUNNING   ──> adopt the container left by an earlier run of the cell (none: failed)
        exit      ──> read up to 10 KB of result_file ──> COMPLETED (CAS, assignment deleted)
                      ──> container removed
    assignment deleted (cancel, or the brain failed the task) ──> container killed and removed

Task containers carry `lattice.task_guid` besides the box's and the cell's labels; the rep
(rep.py) leaves them to this module. Every write compares the task's revision, so a task that
was cancelled meanwhile is never overwritten with a result.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors
import structlog

from lattice.cell.app_logs import LogSink
from lattice.cell.attached import AttachedRunner
from lattice.cell.docker_engine import DockerEngine, translated_errors
from lattice.cell.docker_streams import DockerStreams
from lattice.cell.errors import (
    CellError,
    ContainerNotFound,
    ContainerStartFailed,
    DockerError,
    DockerStreamError,
    DockerUnavailable,
    ImageNotFound,
)
from lattice.cell.log_frames import LogLine
from lattice.cell.sandboxes import SandboxPool, start_in_sandbox
from lattice.cell.spec import (
    LABEL_CELL_ID,
    LABEL_CLUSTER_ID,
    LABEL_TASK_GUID,
    ContainerSpec,
    container_name_safe,
    cpu_shares,
    memory_limit_bytes,
)
from lattice.models import Task, TaskState
from lattice.models.function import STDOUT_TOO_LARGE_REASON, timeout_reason
from lattice.models.task import MAX_RESULT_BYTES, exit_reason
from lattice.store import Change, Delete, Etcd, Informer, ModRevisionIs, Put, StoreError, keys
from logagg.envelope import Envelope, MessageType

log = structlog.get_logger("lattice.cell.tasks")

Clock = Callable[[], int]
RETRY_S = 0.5


def task_labels(cluster_id: str, cell_id: str, task_guid: str) -> dict[str, str]:
    return {LABEL_CLUSTER_ID: cluster_id, LABEL_CELL_ID: cell_id, LABEL_TASK_GUID: task_guid}


def task_container_spec(*, cluster_id: str, cell_id: str, address: str, task: Task
                        ) -> ContainerSpec:
    d = task.definition
    command = d.command + d.args
    return ContainerSpec(
        name=f"lattice-{container_name_safe(cell_id)}-task-{task.task_guid}",
        image=d.image,
        command=command or None,
        environment=dict(d.env),
        address=address,
        ports=(),
        mem_limit=memory_limit_bytes(d.memory_mb),
        cpu_shares=cpu_shares(d.cpu_weight),
        user="",
        working_dir="",
        privileged=d.privileged,
        labels=task_labels(cluster_id, cell_id, task.task_guid),
    )


def first_file_of_tar(data: bytes, limit: int = MAX_RESULT_BYTES) -> str:
    """The first `limit` bytes of the one file in a tar archive (Docker's get_archive)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            if member.isfile():
                extracted = archive.extractfile(member)
                if extracted is None:
                    break
                return extracted.read(limit).decode(errors="replace")
    raise ValueError("the archive holds no regular file")


@dataclass(frozen=True, kw_only=True)
class TaskDeps:
    cluster_id: str
    cell_id: str
    address: str
    engine: DockerEngine
    streams: DockerStreams
    sink: LogSink
    etcd: Etcd
    clock: Clock
    sandboxes: SandboxPool | None = None    # prewarmed networks (a bare one: no ports)


class ResultReader:
    """Reads a file out of a container (Docker's archive API) in a thread: docker-py blocks."""

    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _read(self, container_id: str, path: str) -> str:
        with self._lock:
            if self._client is None:
                with translated_errors("connecting to Docker"):
                    self._client = docker.from_env()
            client = self._client
        try:
            stream, _ = client.api.get_archive(container_id, path)
            data = b"".join(stream)
        except docker.errors.NotFound as exc:
            raise ContainerNotFound(f"{container_id[:12]}:{path}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerError(f"reading {path} from {container_id[:12]}: {exc}") from exc
        try:
            return first_file_of_tar(data)
        except (tarfile.TarError, ValueError) as exc:
            raise DockerError(f"reading {path} from {container_id[:12]}: {exc}") from exc

    async def read(self, container_id: str, path: str) -> str:
        return await asyncio.to_thread(self._read, container_id, path)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


class TaskLog:
    def __init__(self, sink: LogSink, task: Task) -> None:
        self._sink = sink
        self._app_id = task.log_guid
        self._source = task.definition.log_source
        self.last_timestamp_ns = 0

    def line(self, line: LogLine) -> None:
        self.last_timestamp_ns = max(self.last_timestamp_ns, line.timestamp_ns)
        message_type: MessageType = "ERR" if line.stream == "stderr" else "OUT"
        self._sink.emit(Envelope(self._app_id, self._source, "0", message_type,
                                 line.timestamp_ns, line.text))

    def stderr(self, text: str) -> None:
        self.line(LogLine("stderr", time.time_ns(), text))

    def cell(self, message: str) -> None:
        self._sink.emit(Envelope.now(self._app_id, "CELL", "0", message))


class TaskRunner:
    """Owns one task's container from its start to its removal."""

    def __init__(self, deps: TaskDeps, task_guid: str, results: ResultReader,
                 attached: AttachedRunner | None = None) -> None:
        self._deps = deps
        self.task_guid = task_guid
        self._results = results
        self._attached = attached or AttachedRunner()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._main(), name=f"task-{self.task_guid}")

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    async def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _main(self) -> None:
        structlog.contextvars.bind_contextvars(task_guid=self.task_guid)
        try:
            await self._lifecycle()
        except (CellError, StoreError) as exc:
            # The container (if any) stays; the next sync of the task rep starts a new runner,
            # which adopts it.
            log.warning("task-runner-failed", error=str(exc), error_type=type(exc).__name__)

    async def _read(self) -> tuple[Task, int] | None:
        kv = await self._deps.etcd.get(keys.task(self.task_guid))
        if kv is None:
            return None
        return Task.from_dict(json.loads(kv.value)), kv.mod_revision

    async def _write(self, task: Task, revision: int, new: Task, *, release: bool,
                     extra: tuple[Put, ...] = ()) -> bool:
        key = keys.task(self.task_guid)
        ops: list[Put | Delete] = [Put(key, json.dumps(new.to_dict()).encode()), *extra]
        if release:
            ops.append(Delete(keys.task_assignment(self._deps.cell_id, self.task_guid)))
        return await self._deps.etcd.txn([ModRevisionIs(key, revision)], ops)

    async def _containers(self) -> list[str]:
        found = await self._deps.engine.list_cell_containers(
            self._deps.cluster_id, self._deps.cell_id
        )
        return [c.id for c in found if c.labels.get(LABEL_TASK_GUID) == self.task_guid]

    async def _lifecycle(self) -> None:
        found = await self._read()
        if found is None:
            return
        task, revision = found
        existing = await self._containers()
        if task.state == TaskState.CLAIMED and not existing:
            running = task.transition(TaskState.RUNNING, self._deps.clock())
            if not await self._write(task, revision, running, release=False):
                return          # cancelled meanwhile: its assignment goes, and so do we
            logs = TaskLog(self._deps.sink, task)
            logs.cell("Creating container")
            if task.definition.capture_stdout:
                await self._run_function(task, logs)
                return
            spec = task_container_spec(cluster_id=self._deps.cluster_id,
                                       cell_id=self._deps.cell_id, address=self._deps.address,
                                       task=task)
            try:
                facts = await start_in_sandbox(self._deps.sandboxes, spec,
                                               self._deps.engine.create_and_start)
            except (ImageNotFound, ContainerStartFailed) as exc:
                logs.cell(f"Failed to create container: {exc}")
                await self._complete(failed=True, reason=str(exc), result="", status=None)
                return
            log.info("task-started", container_id=facts.id[:12])
            container_id = facts.id
        elif task.state in (TaskState.CLAIMED, TaskState.RUNNING) and existing:
            if task.definition.capture_stdout:
                # Its stdout was read by an earlier run of the cell: it cannot be had again.
                await self._complete(failed=True, reason="the cell restarted during the run",
                                     result="", status=None)
                for stale in existing:
                    await self._deps.engine.remove(stale)
                return
            container_id = existing[0]
            logs = TaskLog(self._deps.sink, task)
            log.info("task-adopted", container_id=container_id[:12])
        elif task.state == TaskState.RUNNING:
            await self._complete(failed=True, reason="the task's container disappeared",
                                 result="", status=None)
            return
        else:
            return
        await self._follow_until_exit(container_id, logs)
        facts = await self._deps.engine.inspect(container_id)
        status = facts.exit_code if facts.exit_code is not None else -1
        logs.cell(f"Exit status {status}")
        result, reason = "", exit_reason(status)
        failed = status != 0
        if not failed and task.definition.result_file:
            try:
                result = await self._results.read(container_id, task.definition.result_file)
            except DockerError as exc:
                failed, reason = True, f"failed to read the result file: {exc}"
        await self._complete(failed=failed, reason=reason, result=result, status=status)
        await self._deps.engine.remove(container_id)

    async def _run_function(self, task: Task, logs: TaskLog) -> None:
        """A function's invocation: stdin from its key, stdout (bounded) and stderr's last
        lines into keys written with the completion, stderr lines to the log stream."""
        d = task.definition
        stdin = b""
        if d.stdin:
            kv = await self._deps.etcd.get(keys.task_stdin(self.task_guid))
            stdin = b"" if kv is None else kv.value
        spec = task_container_spec(cluster_id=self._deps.cluster_id, cell_id=self._deps.cell_id,
                                   address=self._deps.address, task=task)
        try:
            run = await start_in_sandbox(
                self._deps.sandboxes, spec,
                lambda spec: self._attached.run(spec, stdin, logs.stderr, d.timeout_s))
        except (ImageNotFound, ContainerStartFailed) as exc:
            logs.cell(f"Failed to create container: {exc}")
            await self._complete(failed=True, reason=str(exc), result="", status=None)
            return
        status = run.exit_code if run.exit_code is not None else -1
        logs.cell(f"Exit status {status}")
        if run.timed_out:
            failed, reason = True, timeout_reason(d.timeout_s)
        elif run.stdout_overflow:
            failed, reason = True, STDOUT_TOO_LARGE_REASON
        else:
            failed, reason = status != 0, exit_reason(status)
        output = (Put(keys.task_stdout(self.task_guid), run.stdout),
                  Put(keys.task_stderr(self.task_guid), run.stderr_tail))
        await self._complete(failed=failed, reason=reason, result="", status=status,
                             extra=output)
        await self._deps.engine.remove(run.container_id)

    async def _follow_until_exit(self, container_id: str, logs: TaskLog) -> None:
        """Send the container's output to the log aggregator until the container has stopped."""
        since = 0
        while True:
            try:
                await self._deps.streams.follow_logs(container_id, logs.line, since_ns=since)
            except (DockerStreamError, DockerUnavailable) as exc:
                log.warning("task-log-stream-lost", error=str(exc))
            facts = await self._deps.engine.inspect(container_id)
            if not facts.running:
                return
            since = logs.last_timestamp_ns + 1 if logs.last_timestamp_ns else 0
            await asyncio.sleep(RETRY_S)

    async def _complete(self, *, failed: bool, reason: str, result: str, status: int | None,
                        extra: tuple[Put, ...] = ()) -> None:
        """COMPLETED with the outcome, unless the task changed state meanwhile (cancelled)."""
        while True:
            found = await self._read()
            if found is None or found[0].state not in (TaskState.CLAIMED, TaskState.RUNNING):
                return
            task, revision = found
            done = task.completed(self._deps.clock(), failed=failed, failure_reason=reason,
                                  result=result, exit_status=status)
            if await self._write(task, revision, done, release=True, extra=extra):
                log.info("task-completed", failed=failed, failure_reason=reason)
                return


class TaskRep:
    """Keeps this cell's task containers in line with its task assignments."""

    def __init__(self, deps: TaskDeps, *, sync_interval_s: float = 5.0) -> None:
        self._deps = deps
        self._sync_interval_s = sync_interval_s
        self._assigned: set[str] = set()
        self._runners: dict[str, TaskRunner] = {}
        self._results = ResultReader()
        self._attached = AttachedRunner()
        self._informer = Informer(
            deps.etcd, keys.task_assignments_of(deps.cell_id), self._on_change
        )
        self._background: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()

    def _on_change(self, change: Change) -> None:
        _, guid = keys.parse_task_assignment(change.key)
        if change.new is None:
            self._assigned.discard(guid)
        else:
            self._assigned.add(guid)
        self._wake.set()

    async def start(self) -> None:
        self._background.append(asyncio.create_task(self._informer.run(), name="cell-tasks"))
        await self._informer.synced.wait()
        await self.sync_once()
        self._background.append(asyncio.create_task(self._loop(), name="cell-tasks-sync"))

    async def stop(self) -> None:
        """End the runners; containers keep running, so a restarted cell adopts them."""
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(runner.cancel() for runner in self._runners.values()))
        self._runners.clear()
        await asyncio.to_thread(self._results.close)
        await asyncio.to_thread(self._attached.close)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sync_interval_s)
            self._wake.clear()
            try:
                await self.sync_once()
            except (CellError, StoreError) as exc:
                log.warning("task-sync-failed", error=str(exc))

    async def sync_once(self) -> None:
        for guid in sorted(self._assigned):
            runner = self._runners.get(guid)
            if runner is None or runner.done:
                runner = TaskRunner(self._deps, guid, self._results, self._attached)
                self._runners[guid] = runner
                runner.start()
        for guid in [g for g in self._runners if g not in self._assigned]:
            runner = self._runners.pop(guid)
            await runner.cancel()
        # Containers of tasks no longer assigned here: cancelled, failed by the brain, or done.
        for container in await self._deps.engine.list_cell_containers(
            self._deps.cluster_id, self._deps.cell_id
        ):
            guid = container.labels.get(LABEL_TASK_GUID, "")
            if guid and guid not in self._assigned:
                log.info("task-container-removed", task_guid=guid, container_id=container.id[:12])
                await self._deps.engine.remove(container.id)
