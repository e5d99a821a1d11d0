"""One instance's output, as log envelopes: APP lines from the container, CELL lines about it,
HEALTH lines from its health check."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

import structlog

from lattice.cell.docker_streams import DockerStreams
from lattice.cell.errors import ContainerNotFound, DockerStreamError, DockerUnavailable
from lattice.cell.log_frames import LogLine
from logagg.crashes import crash_notice
from logagg.envelope import Envelope, MessageType

log = structlog.get_logger("lattice.cell.logs")

RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 5.0


class LogSink(Protocol):
    """Where envelopes go; `logagg.publisher.LogPublisher` in production. Must not block."""

    def emit(self, envelope: Envelope) -> None: ...


@runtime_checkable
class PacingSink(Protocol):
    """A sink that can ask a reader to wait (LogPublisher.room): a burst then waits in Docker's
    log file instead of being dropped from a full backlog."""

    async def room(self) -> None: ...


class InstanceLog:
    def __init__(self, sink: LogSink, process_guid: str, index: int) -> None:
        self._sink = sink
        self._app_id = process_guid
        self._instance = str(index)
        self.last_timestamp_ns = 0

    def cell(self, message: str, message_type: MessageType = "OUT") -> None:
        self._sink.emit(Envelope.now(self._app_id, "CELL", self._instance, message, message_type))

    def health(self, message: str, message_type: MessageType = "OUT") -> None:
        """What the health check found: source type HEALTH, as Diego's healthcheck lines."""
        self._sink.emit(
            Envelope.now(self._app_id, "HEALTH", self._instance, message, message_type)
        )

    def crashed(self, reason: str, exit_status: int | None) -> None:
        """The line after which the aggregator keeps this instance's last lines as its crash log."""
        self._sink.emit(crash_notice(self._app_id, int(self._instance), reason, exit_status))

    def app(self, line: LogLine) -> None:
        self.last_timestamp_ns = max(self.last_timestamp_ns, line.timestamp_ns)
        message_type: MessageType = "ERR" if line.stream == "stderr" else "OUT"
        self._sink.emit(
            Envelope(self._app_id, "APP", self._instance, message_type, line.timestamp_ns,
                     line.text)
        )

    async def follow(self, streams: DockerStreams, container_id: str, since_ns: int) -> None:
        """Emit the container's lines until its output ends (it stopped or was removed).

        A broken stream is picked up again after the last line seen, so lines are neither
        lost nor repeated (unless two share a nanosecond).
        """
        delay = RETRY_INITIAL_S
        since = since_ns
        while True:
            try:
                pace = self._sink.room if isinstance(self._sink, PacingSink) else None
                await streams.follow_logs(container_id, self.app, since_ns=since, pace=pace)
                return
            except ContainerNotFound:
                return
            except (DockerStreamError, DockerUnavailable) as exc:
                log.warning("log-stream-lost", container_id=container_id[:12], error=str(exc))
            if self.last_timestamp_ns:
                since = self.last_timestamp_ns + 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
