"""Logs end to end: an app printing as fast as it can, to a subscriber that keeps up, alone and
beside a stalled second subscriber.

    python -m bench.logs.throughput [--lines 100000] [--rounds 3]

Each run creates a fresh app (busybox shell loop: `line 1` ... `line N`, builtins only) on a
real `lattice up`, after its subscribers are connected, and waits until the last line arrived
(or none came for --idle seconds). Path: container stdout -> Docker's log stream -> cell ->
LogPublisher -> aggregator -> router (`doppler.<domain>`) -> WebSocket subscriber in this
process, which parses every envelope as `ltc logs` would.

Measured per run:
  - lines/s end to end: lines received / (last receive - the first line's Docker timestamp);
  - the app's own print rate (Docker timestamps of its first and last line), for reference;
  - latency per line: receive time - the envelope's timestamp, which is the time Docker read
    the line from the container's stdout (not an in-line stamp: a `date` per line would fork
    and slow the printer to a crawl);
  - lost: lines never received, and the LGR "N messages dropped" notices.
With --paced BATCH the app sleeps 0.02 s after every BATCH lines, to measure latency below
saturation (flat out, latency is mostly the wait behind the burst, in Docker's log file).
Runs alternate one subscriber / one + a stalled one (a raw socket that completes the WebSocket
handshake and then never reads), so both see the same machine; the ratio of their medians is
printed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import statistics
import time
import uuid
from dataclasses import dataclass, field

import aiohttp

from bench.logs.box import Box, build_printer_image, running_box

LINE = re.compile(r"^line (\d+)$")
DROPPED = re.compile(r"^(\d+) messages dropped$")


@dataclass
class Received:
    lines: int = 0
    distinct: set[int] = field(default_factory=set)
    latencies_ns: list[int] = field(default_factory=list)
    first_written_ns: int = 0
    last_written_ns: int = 0
    last_received_ns: int = 0
    dropped_notices: int = 0


@dataclass(frozen=True)
class Run:
    stalled: bool
    wanted: int
    received: int
    lost: int
    dropped_notices: int
    rate: float                 # lines/s end to end
    print_rate: float           # lines/s the app printed at (Docker timestamps)
    p50_ms: float
    p99_ms: float


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1e6 if ordered else 0.0


async def subscriber(ws: aiohttp.ClientWebSocketResponse, wanted: int, got: Received,
                     done: asyncio.Event) -> None:
    async for msg in ws:
        if msg.type is not aiohttp.WSMsgType.TEXT:
            break
        now = time.time_ns()
        # Only what the figures need (json.loads, no validation): the subscriber must keep up.
        envelope = json.loads(msg.data)
        message, source, timestamp = (envelope["message"], envelope["source_type"],
                                      envelope["timestamp"])
        if source == "LGR":
            match = DROPPED.match(message)
            got.dropped_notices += int(match.group(1)) if match else 0
            continue
        match = LINE.match(message)
        if source != "APP" or match is None:
            continue
        number = int(match.group(1))
        got.lines += 1
        got.distinct.add(number)
        got.latencies_ns.append(now - timestamp)
        if not got.first_written_ns:
            got.first_written_ns = timestamp
        got.last_written_ns = timestamp
        got.last_received_ns = now
        if number == wanted:
            done.set()


def stalled_subscriber(box: Box, app: str) -> socket.socket:
    """A WebSocket subscriber that completes the handshake and never reads again."""
    sock = socket.create_connection(box.stream_address, timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /apps/{app}/stream HTTP/1.1\r\nHost: {box.doppler_host}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise RuntimeError("the stalled subscriber's handshake failed")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"the stalled subscriber was refused: {head!r}")
    return sock


async def one_run(box: Box, lines: int, *, stalled: bool, idle_s: float,
                  pace: tuple[int, float] | None = None) -> Run:
    app = f"printer-{uuid.uuid4().hex[:8]}"
    got = Received()
    done = asyncio.Event()
    host, port = box.stream_address
    url = f"http://{host}:{port}/apps/{app}/stream"
    stalled_sock = None
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, headers={"Host": box.doppler_host}, max_msg_size=0) as ws:
        # The aggregator subscribes before its 101: both subscribers are live from here on.
        reader = asyncio.create_task(subscriber(ws, lines, got, done))
        if stalled:
            stalled_sock = await asyncio.to_thread(stalled_subscriber, box, app)
        try:
            await asyncio.to_thread(box.create_printer, app, lines, pace)
            seen = -1
            while not done.is_set() and seen != got.lines:
                seen = got.lines
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), idle_s)
        finally:
            reader.cancel()
            if stalled_sock is not None:
                stalled_sock.close()
            await asyncio.to_thread(box.remove, app)
    elapsed_s = max(1e-9, (got.last_received_ns - got.first_written_ns) / 1e9)
    printing_s = max(1e-9, (got.last_written_ns - got.first_written_ns) / 1e9)
    return Run(stalled, lines, got.lines, lines - len(got.distinct), got.dropped_notices,
               got.lines / elapsed_s, len(got.distinct) / printing_s,
               percentile(got.latencies_ns, 0.50), percentile(got.latencies_ns, 0.99))


def report(run: Run) -> str:
    label = "1 subscriber + 1 stalled" if run.stalled else "1 subscriber"
    return (f"{label:<26} {run.received:>9,}/{run.wanted:,} lost {run.lost:>7,} "
            f"(notices {run.dropped_notices:,})  {run.rate:>9,.0f} lines/s  "
            f"app printed {run.print_rate:>9,.0f}/s  p50 {run.p50_ms:8.1f} ms  "
            f"p99 {run.p99_ms:8.1f} ms")


async def main_async(args: argparse.Namespace) -> None:
    build_printer_image()
    pace = None if args.paced is None else (args.paced, 0.02)
    mode = ("flat out" if pace is None
            else f"paced: {args.paced} lines then sleep 0.02 s (at most {args.paced * 50:,}/s)")
    print(f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.lines:,} lines per run, "
          f"{mode}; subscribers via {'the aggregator' if args.direct else 'the router'}")
    with running_box(direct=args.direct) as box:
        # A first short run warms up the image, the cell and the router's tables.
        await one_run(box, 1000, stalled=False, idle_s=args.idle)
        runs: list[Run] = []
        for _ in range(args.rounds):
            for stalled in (False, True):
                run = await one_run(box, args.lines, stalled=stalled, idle_s=args.idle,
                                    pace=pace)
                print(report(run), flush=True)
                runs.append(run)
    alone = [r for r in runs if not r.stalled]
    beside = [r for r in runs if r.stalled]
    ratio = statistics.median(r.rate for r in beside) / statistics.median(r.rate for r in alone)
    print(f"median rate alone {statistics.median(r.rate for r in alone):,.0f} lines/s, "
          f"beside a stalled subscriber {statistics.median(r.rate for r in beside):,.0f} "
          f"lines/s: ratio with/without {ratio:.2f} (goal >= 0.90)")
    print(f"lost, alone: {[r.lost for r in alone]}; beside the stalled one: "
          f"{[r.lost for r in beside]} (goal 0)")
    print(f"load average at end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--direct", action="store_true",
                        help="subscribers dial the aggregator's port instead of the router")
    parser.add_argument("--paced", type=int, metavar="BATCH",
                        help="print BATCH lines, then sleep 0.02 s (latency below saturation)")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds without a new line after which a run ends")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()

