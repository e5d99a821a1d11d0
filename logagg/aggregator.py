"""The aggregator's state behind its endpoints: recent lines per app and the live subscribers."""

from __future__ import annotations

from logagg.buffer import RecentLogs
from logagg.config import LogaggConfig
from logagg.envelope import Envelope
from logagg.hub import Hub


class Aggregator:
    def __init__(self, config: LogaggConfig) -> None:
        self.recent = RecentLogs(config.recent_lines)
        self.hub = Hub(queue_size=config.subscriber_queue)

    def ingest(self, envelope: Envelope) -> None:
        self.recent.append(envelope)
        self.hub.publish(envelope)
