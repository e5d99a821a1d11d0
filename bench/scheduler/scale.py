"""Benchmark 3 of issue 3: the scheduler at scale, by SIMULATION (no containers).

A real etcd and the real brain (`lattice brain`: API, auctioneer, converger, in its own process)
schedule onto simulated cells (bench/scheduler/simulated_cell.py: real presence, assignment
watches and ActualLRP reports, no Docker). Desired instances are created through the brain's
real API (`POST /v1/desired_lrps`, apps of --per-app instances).

Measured, in one run:
  1. placement: from the first POST until every instance is assigned, and until every one is
     RUNNING;
  2. a lost cell: from the moment the cell with most instances dies (its lease revoked, or left to
     expire with --expire) until each of its instances is RUNNING on another cell;
  3. etcd's load: requests/s over each phase, from etcd's own /metrics (every client counted);
  4. the reference: a plain loop of etcd puts (a 300-byte value, --concurrency in flight, one
     client), measured first. Each phase is printed as a multiple of the time the bare puts would
     take for as many writes as the phase made.

Diego's published figure: 250,000 instances on 1,000 cells with one 16-core brain.

Run: .venv/bin/python -m bench.scheduler.scale [--cells 100] [--instances 10000] [--per-app 100]
     [--expire] [--profile-brain FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.scheduler import etcd_metrics
from bench.scheduler.simulated_cell import Key, Progress, SimulatedFleet
from lattice import etcd_server
from lattice.brain.config import BrainConfig
from lattice.etcd_server import free_port
from lattice.images import build_demo_image
from lattice.models import Capacity
from lattice.store import Etcd, keys

INSTANCE_MEMORY_MB = 128
INSTANCE_DISK_MB = 256
DOMAIN = "scale.localhost"
CELL_GRACE_S = BrainConfig(etcd_endpoints="-").cell_grace_s + 1


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float
    counts: etcd_metrics.EtcdCounts


# -- processes ------------------------------------------------------------------------------------


@contextlib.contextmanager
def own_etcd(root: Path) -> Iterator[str]:
    command = etcd_server.EtcdCommand.on_free_ports(root / "etcd")
    process = etcd_server.start(command)
    try:
        yield command.endpoint
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def brain_process(endpoint: str, root: Path, profile: Path | None) -> Iterator[int]:
    """`lattice brain` on a free port; under cProfile (written when it stops) if asked."""
    port = free_port()
    runner = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    log = open(root / "brain.log", "wb")  # noqa: SIM115 - closed in the finally below
    process = subprocess.Popen(
        [*runner, "-m", "lattice.cli.server", "brain", "--etcd", endpoint, "--domain", DOMAIN,
         "--listen", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# -- the reference --------------------------------------------------------------------------------


async def bare_puts(etcd: Etcd, count: int, concurrency: int) -> float:
    """Puts per second of a plain loop of puts, `concurrency` in flight on one client."""
    value = b"x" * 300            # about an ActualLRP record's size
    keys = iter(range(count))

    async def loop() -> None:
        for i in keys:
            await etcd.put(f"/bench/reference/{i}", value)

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    rate = count / (time.monotonic() - started)
    await etcd.delete_prefix("/bench/reference/")
    return rate


# -- the scenario ---------------------------------------------------------------------------------


async def wait_for(progress: Progress, done: Callable[[], bool], timeout_s: float,
                   what: str) -> float:
    """Monotonic time at which `done` first held (checked on every change the fleet sees)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{what}: not done within {timeout_s:g} s")
        progress.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(progress.changed.wait(), min(remaining, 1.0))
    return time.monotonic()


async def api_ready(
    session: aiohttp.ClientSession, base: str, cells: int, timeout_s: float
) -> None:
    """Until the brain answers and lists every cell (its view has them all)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/v1/cells") as response:
                if response.status == 200 and len(await response.json()) == cells:
                    return
        if time.monotonic() > deadline:
            raise TimeoutError("the brain did not list every simulated cell in time")
        await asyncio.sleep(0.2)


async def create_apps(session: aiohttp.ClientSession, base: str, apps: list[tuple[str, int]],
                      image: str, concurrency: int = 8) -> None:
    queue = iter(apps)

    async def loop() -> None:
        for name, instances in queue:
            body = {"process_guid": name, "image": image, "instances": instances,
                    "memory_mb": INSTANCE_MEMORY_MB, "disk_mb": INSTANCE_DISK_MB}
            async with session.post(f"{base}/v1/desired_lrps", json=body) as response:
                if response.status != 201:
                    raise RuntimeError(f"creating {name}: {response.status} "
                                       f"{await response.text()}")

    await asyncio.gather(*(loop() for _ in range(concurrency)))


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float,
                every_s: float = 0.01) -> float:
    """Monotonic time at which `check` first held, polled every `every_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(every_s)
    return time.monotonic()


async def presence_gone(etcd: Etcd, cell_id: str) -> bool:
    return await etcd.get(keys.cell(cell_id)) is None


async def brain_lists(session: aiohttp.ClientSession, base: str, cell_id: str) -> bool:
    """Whether the brain's view no longer lists the cell."""
    async with session.get(f"{base}/v1/cells") as response:
        return cell_id not in {c["cell_id"] for c in await response.json()}


def app_sizes(instances: int, per_app: int) -> list[tuple[str, int]]:
    apps, left = [], instances
    while left > 0:
        apps.append((f"sim-app-{len(apps):05d}", min(per_app, left)))
        left -= per_app
    return apps


async def scenario(args: argparse.Namespace, endpoint: str, api_port: int) -> list[Phase]:
    etcd = Etcd(endpoint)
    per_cell = math.ceil(args.instances / args.cells)
    slots = 2 * per_cell + 8       # room for a lost cell's instances elsewhere
    capacity = Capacity(memory_mb=slots * INSTANCE_MEMORY_MB,
                        disk_mb=slots * INSTANCE_DISK_MB, containers=slots)
    fleet = SimulatedFleet(etcd, cells=args.cells, capacity=capacity, workers=args.workers)
    progress = fleet.progress
    phases: list[Phase] = []
    base = f"http://127.0.0.1:{api_port}"
    try:
        started = time.monotonic()
        await fleet.start()
        print(f"{args.cells} simulated cells present in {time.monotonic() - started:.1f} s",
              flush=True)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            await api_ready(session, base, args.cells, 120)
            brain_up = time.monotonic()
            image = await asyncio.to_thread(build_demo_image)
            apps = app_sizes(args.instances, args.per_app)
            total = sum(n for _, n in apps)
            before = await asyncio.to_thread(etcd_metrics.read, endpoint)
            started = time.monotonic()
            await create_apps(session, base, apps, image)
        created = time.monotonic()
        print(f"{len(apps)} apps, {total} instances desired through the API in "
              f"{created - started:.1f} s", flush=True)
        placed = await wait_for(progress, lambda: len(progress.assigned) >= total,
                                args.timeout, "placement")
        at_placed = await asyncio.to_thread(etcd_metrics.read, endpoint)
        print(f"all placed after {placed - started:.1f} s", flush=True)
        running = await wait_for(progress, lambda: len(progress.running) >= total,
                                 args.timeout, "all RUNNING")
        print(f"all RUNNING after {running - started:.1f} s", flush=True)
        after = await asyncio.to_thread(etcd_metrics.read, endpoint)
        phases.append(Phase("desired -> all placed", placed - started, at_placed - before))
        phases.append(Phase("desired -> all RUNNING", running - started, after - before))

        # A brain declares no cell lost within its first cell_grace_s (it may not have seen
        # every presence yet); a small run is over before that, so wait it out.
        await asyncio.sleep(max(0.0, brain_up + CELL_GRACE_S - time.monotonic()))
        victim = max(fleet.cells.values(), key=lambda c: len(c.assignments))
        lost: set[Key] = {(a.process_guid, a.index) for a in victim.assignments.values()}
        before = await asyncio.to_thread(etcd_metrics.read, endpoint)
        died = time.monotonic()
        await victim.lose(expire=args.expire)
        print(f"cell {victim.cell_id} stopped in {time.monotonic() - died:.2f} s", flush=True)
        gone = await until(lambda: presence_gone(etcd, victim.cell_id), args.timeout)
        print(f"its presence gone from etcd after {gone - died:.2f} s", flush=True)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            # Every 0.25 s: at 100,000 instances one /v1/cells costs the brain ~0.1 s of CPU.
            seen = await until(lambda: brain_lists(session, base, victim.cell_id), args.timeout,
                               every_s=0.25)
        print(f"the brain's /v1/cells without it after {seen - died:.2f} s", flush=True)

        def replaced() -> bool:
            for key in lost:
                cell_id, at = progress.running[key]
                if cell_id == victim.cell_id or at < died:
                    return False
            return True

        back = await wait_for(progress, replaced, args.timeout, "re-placing the lost cell")
        after = await asyncio.to_thread(etcd_metrics.read, endpoint)
        how = "lease expired" if args.expire else "lease revoked"
        phases.append(Phase(f"lost cell ({len(lost)} instances, {how}) -> RUNNING elsewhere",
                            back - died, after - before))
        print(f"lost cell's {len(lost)} instances RUNNING elsewhere after {back - died:.2f} s; "
              f"report failures: {progress.failures}", flush=True)
    finally:
        await fleet.stop()
        await etcd.close()
    return phases


def report(phases: list[Phase], put_rate: float) -> None:
    print(f"\nreference: bare etcd puts, same client and concurrency: {put_rate:,.0f} puts/s")
    print(f"{'phase':<62} {'s':>8} {'etcd req/s':>11} {'writes':>9} {'x bare puts':>12}")
    for phase in phases:
        counts = phase.counts
        bare_s = counts.writes / put_rate
        print(f"{phase.name:<62} {phase.seconds:>8.2f} {counts.requests / phase.seconds:>11,.0f} "
              f"{counts.writes:>9,.0f} {phase.seconds / bare_s:>12.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--per-app", type=int, default=100,
                        help="instances per app (at most the API's 1,000)")
    parser.add_argument("--workers", type=int, default=64,
                        help="the simulated cells' shared workers (etcd requests in flight)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="puts in flight for the reference loop")
    parser.add_argument("--expire", action="store_true",
                        help="let the lost cell's lease expire instead of revoking it")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--brain-log", type=Path, default=None,
                        help="keep the brain's log here (else it goes with the run's temp dir)")
    parser.add_argument("--profile-brain", type=Path, default=None,
                        help="run the brain under cProfile, write its stats here, print the top")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lattice-scale-"))
    print(f"SIMULATION: {args.cells} simulated cells (no containers), {args.instances} instances "
          f"in apps of {args.per_app}; real etcd, real brain", flush=True)
    try:
        with own_etcd(root) as endpoint:
            asyncio.run(etcd_server.wait_until_ready(endpoint))

            async def reference() -> float:
                etcd = Etcd(endpoint)
                try:
                    return await bare_puts(etcd, 20_000, args.concurrency)
                finally:
                    await etcd.close()

            put_rate = asyncio.run(reference())
            with brain_process(endpoint, root, args.profile_brain) as port:
                phases = asyncio.run(scenario(args, endpoint, port))
        report(phases, put_rate)
        if args.profile_brain is not None:
            print("\nthe brain's time (cProfile, cumulative, top 30):")
            pstats.Stats(str(args.profile_brain)).sort_stats("cumulative").print_stats(30)
    except BaseException:
        log = root / "brain.log"
        if log.exists():
            print("".join(log.read_text().splitlines(keepends=True)[-20:]), file=sys.stderr)
        raise
    finally:
        if args.brain_log is not None and (root / "brain.log").exists():
            shutil.copyfile(root / "brain.log", args.brain_log)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
