"""Docker's two streaming endpoints, read with aiohttp over the engine's Unix socket.

docker-py's streams are blocking generators that would each hold a thread for a container's
whole life; here they are plain async reads. Both functions call back per item and return when
the stream ends, which keeps connection clean-up in one `async with` instead of in async
generators that a cancelled consumer may never close.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from lattice.cell.docker_engine import cell_filters
from lattice.cell.errors import ContainerNotFound, DockerStreamError, DockerUnavailable
from lattice.cell.log_frames import LogLine, LogStreamParser
from lattice.docker_socket import BASE_URL, unix_socket

LOG_CHUNK_BYTES = 16 * 1024

CONNECT_TIMEOUT_S = 5.0


def docker_socket_path(environ: dict[str, str] | None = None) -> str:
    """The engine's socket: DOCKER_HOST if it is `unix://...`, else Docker's default."""
    env = os.environ if environ is None else environ
    path = unix_socket(env)
    if path is not None:
        return path
    raise DockerUnavailable(
        f"DOCKER_HOST={env.get('DOCKER_HOST')!r} is not supported: the cell reads Docker's "
        "event and log streams only over a Unix socket (unix:///path/to/docker.sock)"
    )


@dataclass(frozen=True)
class ContainerEvent:
    action: str                    # "die", "start", "destroy", ...
    container_id: str
    attributes: dict[str, str] = field(default_factory=dict)   # labels, exitCode, name, image
    time_ns: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerEvent:
        actor = data.get("Actor") or {}
        return cls(
            action=str(data.get("Action") or data.get("status") or ""),
            container_id=str(actor.get("ID") or data.get("id") or ""),
            attributes={str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()},
            time_ns=int(data.get("timeNano") or 0),
        )


def since_param(since_ns: int) -> str:
    """Docker's `since`: seconds with a nanosecond fraction."""
    return f"{since_ns // 1_000_000_000}.{since_ns % 1_000_000_000:09d}"


async def _error_text(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
        return str(body.get("message", body)) if isinstance(body, dict) else str(body)
    except (ValueError, aiohttp.ClientError):
        return response.reason or str(response.status)


class DockerStreams:
    def __init__(self, socket_path: str | None = None) -> None:
        self.socket_path = socket_path or docker_socket_path()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=self.socket_path),
                # Streams stay open for a container's whole life: no total or read timeout.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S),
            )
        return self._session

    async def follow_events(
        self,
        cluster_id: str,
        cell_id: str,
        on_event: Callable[[ContainerEvent], None],
        on_connected: Callable[[], None] | None = None,
    ) -> None:
        """Deliver this cell's container events until the stream ends (DockerStreamError).

        `on_connected` is called once the engine has accepted the subscription: events from
        then on will arrive, so a listing made after it misses nothing.
        """
        filters = {"type": ["container"], **cell_filters(cluster_id, cell_id)}
        params = {"filters": json.dumps(filters)}
        try:
            async with self._http().get(f"{BASE_URL}/events", params=params) as response:
                if response.status != 200:
                    raise DockerStreamError(
                        f"Docker refused the event stream: {await _error_text(response)}"
                    )
                if on_connected is not None:
                    on_connected()
                async for raw in response.content:
                    line = raw.strip()
                    if not line:
                        continue
                    try:
                        data = json.loads(line)
                    except ValueError as exc:
                        raise DockerStreamError(f"bad event from Docker: {line[:200]!r}") from exc
                    on_event(ContainerEvent.from_json(data))
        except (aiohttp.ClientConnectorError, FileNotFoundError) as exc:
            raise DockerUnavailable(f"cannot reach Docker at {self.socket_path}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DockerStreamError(f"the event stream broke off: {exc}") from exc
        raise DockerStreamError("the event stream ended")

    async def follow_logs(
        self, container_id: str, on_line: Callable[[LogLine], None], *, since_ns: int = 0,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Deliver the container's output lines, from `since_ns` on (0: from its start), until
        the container stops and the stream ends. `pace`, awaited after each chunk, may hold
        the reading back (Docker keeps the rest in its log file, the container is not slowed)."""
        params = {"follow": "1", "stdout": "1", "stderr": "1", "timestamps": "1"}
        if since_ns:
            params["since"] = since_param(since_ns)
        parser = LogStreamParser(timestamps=True)
        url = f"{BASE_URL}/containers/{container_id}/logs"
        try:
            async with self._http().get(url, params=params) as response:
                if response.status == 404:
                    raise ContainerNotFound(container_id)
                if response.status != 200:
                    raise DockerStreamError(
                        f"Docker refused the logs of {container_id[:12]}: "
                        f"{await _error_text(response)}"
                    )
                # Bounded chunks: a paced reader checks for room every few hundred lines,
                # not after everything buffered meanwhile (iter_any: up to ~400 KB at once).
                async for chunk in response.content.iter_chunked(LOG_CHUNK_BYTES):
                    for line in parser.feed(chunk):
                        on_line(line)
                    if pace is not None:
                        await pace()
        except (aiohttp.ClientConnectorError, FileNotFoundError) as exc:
            raise DockerUnavailable(f"cannot reach Docker at {self.socket_path}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise DockerStreamError(
                f"the log stream of {container_id[:12]} broke off: {exc}"
            ) from exc
        for line in parser.finish():
            on_line(line)
        if parser.truncated:
            raise DockerStreamError(f"the log stream of {container_id[:12]} ended mid-frame")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
