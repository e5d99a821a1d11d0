"""Run a container with its stdin, stdout and stderr attached, as `docker run -i` does.

    create (OpenStdin, StdinOnce) ──> attach (stdin, stdout, stderr) ──> start
      ├── write the input, then shut the socket's write side: the process reads EOF
      └── read the multiplexed output until the engine closes it (the process exited)
    ──> wait for the exit status

Attaching before the start loses no output, even of a process that exits at once. The calls
to the engine (docker-py blocks) run in threads (STYLE.md 15); the attached socket itself is
read and written by the event loop, so a long run holds no thread. Output goes straight from
the container's pipes, not through the log driver, so binary bytes come back exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import structlog

from lattice.cell.capture import OutputCapture
from lattice.cell.docker_engine import translated_errors
from lattice.cell.errors import ContainerStartFailed, DockerUnavailable, ImageNotFound
from lattice.cell.spec import ContainerSpec

log = structlog.get_logger("lattice.cell.attached")

READ_BYTES = 64 * 1024
WAIT_AFTER_EOF_S = 30          # the output ended: the exit status follows at once, normally


@dataclass(frozen=True)
class AttachedRun:
    container_id: str
    exit_code: int | None        # None: unknown (the engine did not say)
    stdout: bytes
    stdout_overflow: bool
    stderr_tail: bytes
    timed_out: bool


class AttachedRunner:
    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None
        self._lock = threading.Lock()

    def _docker(self) -> docker.DockerClient:
        with self._lock:
            if self._client is None:
                with translated_errors("connecting to Docker"):
                    self._client = docker.from_env()
            return self._client

    def _create_attach_start(self, spec: ContainerSpec) -> tuple[str, Any]:
        client = self._docker()
        kwargs = spec.create_kwargs()
        # Not detached: docker-py sets StdinOnce only then, so that the engine closes the
        # process's stdin when the attached client shuts its write side.
        kwargs.update(stdin_open=True, detach=False)
        try:
            container = client.containers.create(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(spec.image) from exc
        except docker.errors.APIError as exc:
            raise ContainerStartFailed(
                f"cannot create container: {exc.explanation or exc}") from exc
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"creating {spec.name}: {exc}") from exc
        try:
            with translated_errors(f"attaching to {spec.name}"):
                attached = client.api.attach_socket(
                    container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            try:
                client.api.start(container.id)
            except docker.errors.APIError as exc:
                attached.close()
                raise ContainerStartFailed(
                    f"cannot start container: {exc.explanation or exc}") from exc
        except Exception:
            with contextlib.suppress(docker.errors.DockerException, OSError):
                client.api.remove_container(container.id, force=True)
            raise
        return container.id, attached

    def _wait(self, container_id: str) -> int | None:
        with translated_errors(f"waiting for {container_id[:12]}"):
            result = self._docker().api.wait(container_id, timeout=WAIT_AFTER_EOF_S)
        code = result.get("StatusCode") if isinstance(result, dict) else None
        return None if code is None else int(code)

    def _kill(self, container_id: str) -> None:
        with contextlib.suppress(docker.errors.DockerException, OSError):
            self._docker().api.kill(container_id)

    async def run(self, spec: ContainerSpec, stdin: bytes, on_stderr: Callable[[str], None],
                  timeout_s: int) -> AttachedRun:
        """Run to exit (or until killed at `timeout_s`, if > 0); the container stays for the
        caller to remove. ImageNotFound or ContainerStartFailed: the task's fault."""
        container_id, attached = await asyncio.to_thread(self._create_attach_start, spec)
        raw: socket.socket = getattr(attached, "_sock", attached)
        raw.setblocking(False)
        capture = OutputCapture()
        timed_out = False
        try:
            pump = asyncio.ensure_future(self._pump(raw, stdin, capture, on_stderr))
            try:
                async with asyncio.timeout(timeout_s if timeout_s > 0 else None):
                    await asyncio.shield(pump)
            except TimeoutError:
                timed_out = True
                await asyncio.to_thread(self._kill, container_id)
                await pump            # the engine closes the stream once the process is dead
            for line in capture.finish():
                on_stderr(line)
        finally:
            attached.close()
            raw.close()
        exit_code = await asyncio.to_thread(self._wait, container_id)
        return AttachedRun(container_id=container_id, exit_code=exit_code,
                           stdout=bytes(capture.stdout), stdout_overflow=capture.overflow,
                           stderr_tail=capture.stderr_tail, timed_out=timed_out)

    @classmethod
    async def _pump(cls, raw: socket.socket, stdin: bytes, capture: OutputCapture,
                    on_stderr: Callable[[str], None]) -> None:
        """Write stdin while reading the output; once the output ends the process is gone, so
        a write still blocked on input it never read is dropped rather than waited for."""
        writer = asyncio.ensure_future(cls._write(raw, stdin))
        try:
            await cls._read(raw, capture, on_stderr)
        finally:
            if not writer.done():
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    @staticmethod
    async def _write(raw: socket.socket, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            if data:
                await loop.sock_sendall(raw, data)
            raw.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass            # the process exited without reading all its input: its choice

    @staticmethod
    async def _read(raw: socket.socket, capture: OutputCapture,
                    on_stderr: Callable[[str], None]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await loop.sock_recv(raw, READ_BYTES)
            except ConnectionResetError:
                return
            if not chunk:
                return
            for line in capture.feed(chunk):
                on_stderr(line)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
