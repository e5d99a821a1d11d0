"""Health checks: a port check (the default), an HTTP check (200 passes) and a command run in
the container (exit 0 passes; the runner calls `docker exec` and `command_result`).

The port check: does something in the container accept TCP on its published port?

The check dials the *published* host port on the cell's address, never the container's bridge
address. Behind a published port sits Docker's userland proxy (docker-proxy), which accepts
every connection itself and only then dials the container. Measured here: a connect succeeds
even when nothing listens in the container, and docker-proxy closes the connection about 1 ms
later. So a successful connect proves nothing; the check waits a short settle time after it:

    connect refused or timed out             fail (no proxy: the port is not published)
    EOF or reset within the settle time      fail (the proxy found nobody listening)
    still open, or data arrived              pass (the proxy reached a listener)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class HealthSettings:
    starting_interval_s: float = 0.5     # until the first pass: become routable quickly
    fast_interval_s: float = 0.02        # ...and faster still in the first seconds after a
    fast_period_s: float = 2.0           # start, so a cold start waits ms, not 0.5 s, on us
    healthy_interval_s: float = 30.0     # once passed: a failure from then on is a crash
    timeout_s: float = 1.0               # for the connect
    settle_s: float = 0.1                # ~100x docker-proxy's measured close after a refusal


async def port_is_open(host: str, port: int, *, timeout_s: float = 1.0,
                       settle_s: float = 0.1) -> bool:
    """One port check, as described in the module docstring."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    try:
        try:
            data = await asyncio.wait_for(reader.read(1), settle_s)
        except TimeoutError:
            return True           # nobody hung up: a listener is behind the proxy
        except ConnectionError:
            return False          # reset: the proxy could not reach a listener
        return data != b""        # a greeting passes; EOF is the proxy giving up
    finally:
        writer.close()
        # The peer may have reset the connection already; closing is then done.
        with contextlib.suppress(OSError):
            await writer.wait_closed()


_LISTEN = "0A"
TABLE_CHUNK_BYTES = 64 * 1024
COMPLETE_BELOW_BYTES = 2048     # half of the kernel's smallest page: see _table_lines
_IPV6_LOOPBACK = "00000000000000000000000001000000"


def _loopback(hex_address: str) -> bool:
    """An address from /proc/net/tcp{,6} (hex, in the kernel's byte order) is loopback."""
    if len(hex_address) == 8:
        return hex_address.endswith("7F")                   # 127.0.0.0/8
    if hex_address == _IPV6_LOOPBACK:
        return True
    return hex_address[16:24] == "FFFF0000" and hex_address.endswith("7F")   # ::ffff:127.x


def _table_lines(path: Path) -> Generator[str, None, None]:
    """The lines of a /proc socket table, read a chunk at a time.

    Each read makes the kernel walk its whole TCP hash (about 2.5 ms here, whatever the
    container holds), and a read that only finds the end walks it once more (read_text()
    always did: two walks per table). So a caller that stops at a match reads no further, and
    a short read counts as the end: the kernel fills a read until the table ends, the caller's
    buffer is full, or its own page-sized buffer is (seq_read_iter), so a read shorter than
    half a page did reach the end.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        rest = b""
        while chunk := os.read(fd, TABLE_CHUNK_BYTES):
            *lines, rest = (rest + chunk).split(b"\n")
            for line in lines:
                yield line.decode("ascii", errors="replace")
            if len(chunk) < COMPLETE_BELOW_BYTES:
                break
        if rest:
            yield rest.decode("ascii", errors="replace")
    finally:
        os.close(fd)


def listening_in(pid: int, port: int, proc: Path = Path("/proc")) -> bool | None:
    """Is something in the container of process `pid` listening on `port`, on an address
    docker-proxy can reach (not loopback)? Read from the container's own socket tables, so the
    answer is immediate and needs no settle time; None when they cannot be read (the cell
    runs elsewhere than the engine's host): then the dialling check decides.

    tcp6 first: a dual-stack listener (`[::]`, the default of Go, Node and Java servers) is
    only there, and a match ends the read of a table early.
    """
    readable = False
    for table in ("tcp6", "tcp"):
        try:
            with contextlib.closing(_table_lines(proc / str(pid) / "net" / table)) as lines:
                for line in itertools.islice(lines, 1, None):      # after the header
                    fields = line.split()
                    if len(fields) < 4 or fields[3] != _LISTEN:
                        continue
                    address, _, hex_port = fields[1].rpartition(":")
                    if int(hex_port, 16) == port and not _loopback(address):
                        return True
        except OSError:
            continue
        readable = True
    return False if readable else None


# -- the other kinds of check, and one face for all ----------------------------------------------

MAX_DETAIL = 200     # characters of a failing check's output shown in the app's logs


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str = ""      # why it failed, for the app's HEALTH log lines


async def http_check(host: str, port: int, path: str, *, timeout_s: float) -> CheckResult:
    """`GET path` on host:port; passes on status 200 only (Diego's http healthcheck).

    One request per connection, HTTP/1.0 with `Connection: close`: only the status line is
    read, so a slow or endless body does not hold the check. The Host header is the address:
    an app's route names do not matter to its own check.
    """
    async def attempt() -> CheckResult:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                "User-Agent: lattice-healthcheck\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        parts = status_line.decode("latin-1").split()
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            return CheckResult(False, f"GET {path}: no HTTP response on port {port}")
        if parts[1] != "200":
            return CheckResult(False, f"GET {path}: status {' '.join(parts[1:])}")
        return CheckResult(True)

    try:
        return await asyncio.wait_for(attempt(), timeout_s)
    except TimeoutError:
        return CheckResult(False, f"GET {path}: no answer within {timeout_s:g} s")
    except OSError as exc:
        return CheckResult(False, f"GET {path}: {exc.strerror or exc}")


def command_result(exit_code: int, output: str, command: tuple[str, ...]) -> CheckResult:
    """A command check passes on exit status 0; a failure shows the end of its output."""
    if exit_code == 0:
        return CheckResult(True)
    text = " ".join(output.split())
    if len(text) > MAX_DETAIL:
        text = "..." + text[-MAX_DETAIL:]
    shown = " ".join(command)
    return CheckResult(False, f"{shown}: exit status {exit_code}" + (f": {text}" if text else ""))
