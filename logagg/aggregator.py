"""The aggregator's state behind its endpoints: recent lines per app, crash logs, subscribers."""

from __future__ import annotations

from logagg.buffer import RecentLogs
from logagg.config import LogaggConfig
from logagg.crashes import CrashLogs
from logagg.drains import Drains
from logagg.envelope import Envelope
from logagg.hub import Hub, Subscription


class Aggregator:
    def __init__(self, config: LogaggConfig) -> None:
        self.recent = RecentLogs(config.recent_lines, idle_s=config.idle_app_s)
        self.crashes = CrashLogs()
        self.hub = Hub(queue_size=config.subscriber_queue)
        self.drains = Drains(queue_size=config.drain_queue)

    def ingest(self, envelope: Envelope) -> None:
        self.recent.append(envelope)
        self.crashes.observe(envelope)
        self.hub.publish(envelope)
        self.drains.offer(envelope)

    def subscribe_with_recent(self, app_id: str) -> tuple[list[Envelope], Subscription]:
        """The app's recent lines and a subscription to every later one: no gap, no duplicate.

        Both are taken in one step of the event loop, with no await between them, so every
        line is either in the snapshot or in the subscription, never in both or neither.
        """
        subscription = self.hub.subscribe(app_id)
        return self.recent.recent(app_id), subscription

    def drop_idle(self) -> list[str]:
        idle = self.recent.drop_idle()
        for app_id in idle:
            self.crashes.forget_tails(app_id)
        return idle

    def app_created(self, app_id: str) -> None:
        """A new app of this name: the crash logs of an older one of the same name go."""
        self.crashes.forget(app_id)
