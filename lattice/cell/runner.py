"""One asyncio task per instance: it owns that instance's container from start to removal.

    start ──> find a container of this instance ──running──> adopt ─┐
                 │ none (or only never-started ones)                 │
                 v                                                   v
              create + start ──failed──> CRASHED     record address, ports, container id
                                                                     │
                                    health check passes (or none) ──> RUNNING
                                                                     │
                 exited / check failed after passing ──> CRASHED + assignment deleted, removed
                 stop() (assignment deleted)          ──> SIGTERM, SIGKILL after 10 s, removed
                 cancelled (the cell shuts down)      ──> container left running for adoption

The runner never acts on a stale belief: a `die` event or a sync only calls `recheck()`, and the
runner inspects the container before it reports anything. Errors of the engine or of etcd end
the runner and leave the container as it is; the cell's next sync starts a new runner, which
adopts the container, or reports it crashed if it exited meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from lattice.cell.app_logs import InstanceLog, LogSink
from lattice.cell.docker_engine import ContainerFacts, DockerEngine
from lattice.cell.docker_streams import DockerStreams
from lattice.cell.errors import (
    CellError,
    ContainerNotFound,
    ContainerStartFailed,
    DockerError,
    ImageNotFound,
)
from lattice.cell.healthcheck import (
    CheckResult,
    HealthSettings,
    command_result,
    http_check,
    listening_in,
    port_is_open,
)
from lattice.cell.reports import ActualReports
from lattice.cell.sandboxes import SandboxPool, start_in_sandbox
from lattice.cell.spec import build_container_spec
from lattice.models import ActualState, Assignment, PortMapping, RunInfo
from lattice.models.desired import CommandMonitor, HttpMonitor
from lattice.store import StoreError

log = structlog.get_logger("lattice.cell.runner")

Clock = Callable[[], int]
# How long a crash waits for a stopped container's last lines. The stream ends as soon as they
# are read, so this bound only matters while the engine is slow (a loaded CI machine took over
# 2 s): then a crash log without the app's last line would be the cost.
LOG_DRAIN_S = 5.0


@dataclass(frozen=True, kw_only=True)
class RunnerDeps:
    cluster_id: str
    cell_id: str
    address: str
    engine: DockerEngine
    streams: DockerStreams
    reports: ActualReports
    sink: LogSink
    health: HealthSettings = field(default_factory=HealthSettings)
    clock: Clock = time.time_ns
    drain_s: float = 1.0        # a RUNNING instance keeps serving this long after unassignment
    sandboxes: SandboxPool | None = None     # prewarmed networks; None: each its own


class InstanceRunner:
    def __init__(self, deps: RunnerDeps, assignment: Assignment) -> None:
        self._deps = deps
        self.assignment = assignment
        self.container_id = ""
        self.sandbox_id = ""        # the prewarmed sandbox whose network the container joined
        self._sandbox_lost = False
        self._logs = InstanceLog(deps.sink, assignment.process_guid, assignment.index)
        self._wake = asyncio.Event()
        # Pause mode (models/autoscale.py): what the assignment asks, and what the container is.
        self._want_paused = assignment.paused
        self._paused = False
        self._recheck = False
        self._stop_requested = False
        self._task: asyncio.Task[None] | None = None
        self._log_task: asyncio.Task[None] | None = None

    # -- the cell's side ---------------------------------------------------------------------

    def start(self) -> None:
        a = self.assignment
        self._task = asyncio.create_task(self._main(), name=f"instance-{a.process_guid}-{a.index}")

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def recheck(self) -> None:
        """Something may have happened to the container (a `die` event, a sync): look again."""
        self._recheck = True
        self._wake.set()

    def update(self, assignment: Assignment) -> None:
        """The assignment changed: a pause or a thaw is asked for, acted on at once (a wake
        waits on it), or else something else changed: look again."""
        self.assignment = assignment
        if assignment.paused != self._want_paused:
            self._want_paused = assignment.paused
            self._wake.set()
        else:
            self.recheck()

    def sandbox_lost(self) -> None:
        """The sandbox holding the container's network died: the instance is unreachable."""
        self._sandbox_lost = True
        self.recheck()

    def stop(self) -> None:
        """The assignment is gone: stop and remove the container, write nothing."""
        self._stop_requested = True
        self._wake.set()

    async def cancel(self) -> None:
        """The cell is shutting down: end the task, leave the container running."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.wait([self._task])

    # -- the task ----------------------------------------------------------------------------

    async def _main(self) -> None:
        a = self.assignment
        # The cell id is bound already, by `serve`, in the context this task inherits.
        structlog.contextvars.bind_contextvars(
            process_guid=a.process_guid, index=a.index, instance_guid=a.instance_guid
        )
        try:
            await self._lifecycle()
        except (CellError, StoreError) as exc:
            log.warning("instance-runner-failed", error=str(exc), error_type=type(exc).__name__)
        finally:
            if self._log_task is not None:
                self._log_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._log_task

    async def _lifecycle(self) -> None:
        deps, a = self._deps, self.assignment
        # Three independent reads at once: a cold start waits on every step of this path.
        found, existing, run = await asyncio.gather(
            deps.reports.read(a),
            deps.engine.list_cell_containers(deps.cluster_id, deps.cell_id, a.instance_guid),
            deps.reports.run_info(a.process_guid),
        )
        if found is None:
            log.info("instance-not-ours")
            for container in existing:
                await deps.engine.stop_and_remove(container.id)
            return
        if run is None:
            # The app is being deleted; its assignment goes next. A sync retries otherwise.
            log.warning("run-info-missing")
            return
        facts = await self._adopt(existing)
        adopted = facts is not None
        if facts is None:
            if await self._crashed_while_away(existing) or self._stop_requested:
                return
            facts = await self._create(run)
            if facts is None:
                return
            if self._stop_requested:      # unassigned while the container was being created
                self.container_id = facts.id
                await self._stop_container()
                return
        self.container_id = facts.id
        self.sandbox_id = facts.sandbox_id
        since = deps.clock() if adopted else 0
        self._log_task = asyncio.create_task(self._logs.follow(deps.streams, facts.id, since))
        ports = tuple(
            PortMapping(port, facts.host_ports[port]) for port in run.ports
            if port in facts.host_ports
        )
        # A new container's check, once, before its address is written: an app that listens
        # by the time `docker start` returns is then RUNNING in the same etcd write.
        passed = None if adopted or not facts.running else await self._check_at_once(run, facts)
        recorded = await deps.reports.started(a, deps.address, ports, facts.id, adopted=adopted,
                                              run_version=None if adopted else run.version,
                                              healthy=bool(passed), known=found)
        if recorded is None:
            log.info("instance-not-ours", container_id=facts.id[:12])
            await self._stop_container()
            return
        log.info("instance-adopted" if adopted else "instance-started",
                 container_id=facts.id[:12], ports=[(p.container_port, p.host_port) for p in ports])
        if passed and recorded.state == ActualState.RUNNING:
            self._became_healthy()
        if not facts.running:
            self._recheck = True
        await self._supervise(run, facts, healthy=recorded.state == ActualState.RUNNING,
                              checked=passed is not None)

    async def _adopt(self, existing: list[ContainerFacts]) -> ContainerFacts | None:
        """A running container of this instance, left by an earlier run of the cell, if any."""
        running = [c for c in existing if c.running]
        if not running:
            return None
        keep = running[0]
        for extra in existing:
            if extra.id != keep.id:
                await self._deps.engine.remove(extra.id)
        return await self._deps.engine.inspect_published(keep.id)

    async def _crashed_while_away(self, existing: list[ContainerFacts]) -> bool:
        """True if a container of this instance exited while no runner watched it; that is
        reported like any crash. Never-started leftovers are removed either way."""
        engine = self._deps.engine
        exited = [c for c in existing if c.status in ("exited", "dead")]
        for leftover in existing:
            if leftover.id not in {c.id for c in exited}:
                await engine.remove(leftover.id)
        if not exited:
            return False
        self.container_id = exited[0].id
        await self._crash_exited(await self._inspect_or_none())
        for other in exited[1:]:
            await engine.remove(other.id)
        return True

    async def _create(self, run: RunInfo) -> ContainerFacts | None:
        deps = self._deps
        spec = build_container_spec(
            cluster_id=deps.cluster_id,
            cell_id=deps.cell_id,
            address=deps.address,
            run=run,
            assignment=self.assignment,
        )
        self._logs.cell("Creating container")
        try:
            facts = await start_in_sandbox(deps.sandboxes, spec, deps.engine.create_and_start)
        except (ImageNotFound, ContainerStartFailed) as exc:
            # The instance's own fault: retrying would fail the same way. Report it crashed
            # and let the brain's restart policy decide.
            self._logs.cell(f"Failed to create container: {exc}", "ERR")
            await self._crash(str(exc), None)
            return None
        self._logs.cell("Successfully created container")
        return facts

    def _health_check(
        self, run: RunInfo, facts: ContainerFacts
    ) -> Callable[[], Awaitable[CheckResult]] | str | None:
        """The instance's check as one call; None for no check; a str says why none can run."""
        deps, monitor = self._deps, run.monitor
        if isinstance(monitor, CommandMonitor):
            async def run_command() -> CheckResult:
                try:
                    code, output = await asyncio.wait_for(
                        deps.engine.exec_command(facts.id, monitor.command), monitor.timeout_s
                    )
                except TimeoutError:
                    return CheckResult(False, f"{' '.join(monitor.command)}: no exit within "
                                              f"{monitor.timeout_s:g} s")
                except DockerError as exc:
                    return CheckResult(False, str(exc))
                return command_result(code, output, monitor.command)
            return run_command
        if monitor.port is None:
            return None
        host_port = facts.host_ports.get(monitor.port)
        if host_port is None:
            return f"health check port {monitor.port} is not published"
        if isinstance(monitor, HttpMonitor):
            path = monitor.path
            return lambda: http_check(deps.address, host_port, path, timeout_s=monitor.timeout_s)
        port = monitor.port

        async def dial() -> CheckResult:
            if facts.pid:
                # The container's own socket table answers at once; dialling through
                # docker-proxy needs a settle time (healthcheck.py) on every pass.
                # In a thread: each read of a table is ~2.5 ms of kernel time (healthcheck.py),
                # and a cell starting many containers polls every one each 20 ms.
                listening = await asyncio.to_thread(listening_in, facts.pid, port)
                if listening is not None:
                    return CheckResult(listening, "" if listening else f"port {port}: no listener")
            passed = await port_is_open(deps.address, host_port, timeout_s=monitor.timeout_s,
                                        settle_s=deps.health.settle_s)
            return CheckResult(passed, "" if passed else f"port {port}: no listener")
        return dial

    async def _check_at_once(self, run: RunInfo, facts: ContainerFacts) -> bool | None:
        """Does the instance's port or HTTP check pass right now? None if none ran: a command
        check (a docker exec, too slow to hold the address back for), or no check at all
        (RUNNING is then written in the supervision loop, after a pending recheck)."""
        if isinstance(run.monitor, CommandMonitor):
            return None
        check = self._health_check(run, facts)
        if check is None or isinstance(check, str):
            return None
        return (await check()).passed

    def _became_healthy(self) -> None:
        log.info("instance-running", health_check=True)
        self._logs.health("healthcheck passed")
        self._logs.cell("Container became healthy")

    async def _supervise(self, run: RunInfo, facts: ContainerFacts, *, healthy: bool,
                         checked: bool = False) -> None:
        deps, settings = self._deps, self._deps.health
        loop = asyncio.get_running_loop()
        check = self._health_check(run, facts)
        if isinstance(check, str):
            await self._crash(check, None)
            return
        # Without a health check the instance is RUNNING once started; that is written in the
        # loop, after a pending recheck, so a container that exited at once is never RUNNING.
        running_now = check is None and not healthy
        next_check = loop.time() if check is not None else math.inf
        if checked:       # a check ran just now, before the address was written
            next_check += settings.healthy_interval_s if healthy else settings.fast_interval_s
        # Fast polls while starting, so that a cold start is RUNNING within milliseconds of
        # listening; a command check (a docker exec each) keeps the normal interval.
        fast_until = loop.time() + settings.fast_period_s
        fast = not isinstance(run.monitor, CommandMonitor)
        self._paused = facts.status == "paused"
        # The server-side start timeout: counted from now, also for an adopted container that
        # had not passed yet (the cell cannot know how long it had been starting).
        start_deadline = loop.time() + run.start_timeout_s
        last_detail = ""
        while True:
            pause_due = healthy and self._want_paused != self._paused
            if not (self._stop_requested or self._recheck or running_now or pause_due):
                timeout = math.inf if self._paused else next_check - loop.time()
                if timeout > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._wake.wait(), None if math.isinf(timeout) else timeout
                        )
            self._wake.clear()
            if self._stop_requested:
                await self._stop_container(drain=healthy and not self._paused)
                return
            if healthy and self._want_paused != self._paused:
                if not await self._apply_pause(self._want_paused):
                    return
                next_check = loop.time() + settings.healthy_interval_s
            if self._recheck:
                self._recheck = False
                if self._sandbox_lost:
                    await self._crash("network sandbox stopped", None)
                    return
                current = await self._inspect_or_none()
                if current is None or not current.running:
                    await self._crash_exited(current)
                    return
            if running_now:
                running_now = False
                if await deps.reports.running(self.assignment) is None:
                    await self._lost()
                    return
                healthy = True
                log.info("instance-running", health_check=False)
            if check is not None and not self._paused and loop.time() >= next_check:
                result = await check()
                if result.passed and not healthy:
                    if await deps.reports.running(self.assignment) is None:
                        await self._lost()
                        return
                    healthy = True
                    self._became_healthy()
                elif not result.passed and not healthy:
                    log.debug("health-check-failed", detail=result.detail)
                    if result.detail != last_detail:
                        # Said once per distinct failure, not every half second while starting.
                        self._logs.health(result.detail, "ERR")
                        last_detail = result.detail
                    if loop.time() >= start_deadline:
                        current = await self._inspect_or_none()
                        if current is None or not current.running:
                            await self._crash_exited(current)
                        else:
                            await self._crash(
                                f"Timed out after {run.start_timeout_s:g}s: "
                                "health check never passed.", None)
                        return
                elif not result.passed and healthy:
                    # A check that fails because the process just died is an exit, not a
                    # failed check: say which.
                    current = await self._inspect_or_none()
                    if current is None or not current.running:
                        await self._crash_exited(current)
                    else:
                        self._logs.health(f"healthcheck failed: {result.detail}", "ERR")
                        self._logs.cell("Container became unhealthy", "ERR")
                        await self._crash("health check failed", None)
                    return
                interval = settings.healthy_interval_s if healthy else settings.starting_interval_s
                if not healthy and fast and loop.time() < fast_until:
                    interval = settings.fast_interval_s
                next_check = loop.time() + interval

    async def _apply_pause(self, paused: bool) -> bool:
        """Freeze or thaw the container; a thaw is reported, which makes the instance routable
        again. False if the instance is no longer ours (the container is then stopped).

        A thaw is reported while `docker unpause` runs, not after: requests the router sends
        meanwhile are accepted by the kernel (connecting needs no process of the container)
        and served the moment it runs, so a wake costs the longer of the two, not their sum.
        """
        reports, engine = self._deps.reports, self._deps.engine
        if paused:
            if await reports.pausing(self.assignment) is None:
                await self._lost()
                return False
            try:
                await engine.set_paused(self.container_id, True)
            except ContainerNotFound:
                self._recheck = True      # gone: the recheck reports the crash
                return True
            self._paused = True
            log.info("instance-paused")
            return True
        report = asyncio.create_task(reports.thawed(self.assignment))
        try:
            await engine.set_paused(self.container_id, False)
        except ContainerNotFound:
            self._recheck = True
        except CellError:
            # Still frozen: not routable after all. The error ends the runner (module doc).
            await report
            await reports.pausing(self.assignment)
            raise
        self._paused = False
        log.info("instance-thawed")
        if await report is None:
            await self._lost()
            return False
        return True

    # -- endings -----------------------------------------------------------------------------

    async def _inspect_or_none(self) -> ContainerFacts | None:
        try:
            return await self._deps.engine.inspect(self.container_id)
        except ContainerNotFound:
            return None

    async def _crash_exited(self, facts: ContainerFacts | None) -> None:
        if facts is None:
            await self._crash("container disappeared", None, stopped=True)
        else:
            await self._crash(facts.exit_reason(), f"Exit status {facts.exit_code}",
                              stopped=True, exit_status=facts.exit_code)

    async def _crash(self, reason: str, cell_message: str | None, *,
                     stopped: bool = False, exit_status: int | None = None) -> None:
        """Report CRASHED (which deletes the assignment) and remove the container.

        A container that has `stopped` has finished writing: its last lines are let through
        first. One still running (a failed health check) is removed without waiting.
        """
        log.info("instance-crashed", reason=reason)
        if stopped:
            await self._drain_logs()
        # After the drain, so that "Exit status N" follows the app's last lines, as in Diego's
        # logs; then the notice: the aggregator keeps the lines before it as the crash log.
        self._logs.cell(cell_message or reason, "OUT" if cell_message else "ERR")
        self._logs.crashed(reason, exit_status)
        if await self._deps.reports.crashed(self.assignment, reason) is None:
            log.info("instance-not-ours")
        if self.container_id:
            await self._deps.engine.remove(self.container_id)

    async def _lost(self) -> None:
        log.info("instance-not-ours")
        await self._stop_container()

    async def _stop_container(self, *, drain: bool = False) -> None:
        if drain:
            # The router learns of the removal from the same etcd change this cell did; until
            # it has, it may still send requests here. Give them time to arrive and finish.
            log.info("instance-draining", seconds=self._deps.drain_s)
            await asyncio.sleep(self._deps.drain_s)
        log.info("instance-stopping", container_id=self.container_id[:12])
        if self.container_id and self._paused:
            # A frozen process cannot take SIGTERM: thaw it first (gone already is fine).
            with contextlib.suppress(ContainerNotFound, DockerError):
                await self._deps.engine.set_paused(self.container_id, False)
            self._paused = False
        if self.container_id:
            await self._deps.engine.stop_and_remove(self.container_id)
        await self._drain_logs()
        log.info("instance-stopped")

    async def _drain_logs(self) -> None:
        """Let the output stream deliver the last lines of a stopped container."""
        if self._log_task is not None and not self._log_task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._log_task), LOG_DRAIN_S)
