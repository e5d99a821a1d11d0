"""Every app's syslog drains: one DrainWriter per (app, URL), kept in step with desired state.

The aggregator's informer on `desired/scheduling/` calls `set_drains` with the URLs in each
app's SchedulingInfo (and `()` when the app is removed); `offer` hands each ingested line to
that app's writers. A URL that this version cannot use (written by something else than the API)
is skipped with a warning, never raised into the informer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import structlog

from lattice.models.syslog_drain import drain_url_problem, redact
from logagg.drain_writer import DEFAULT_QUEUE_SIZE, DrainWriter
from logagg.envelope import Envelope

log = structlog.get_logger("logagg.drains")


def drains_of(scheduling_json: bytes | None) -> tuple[str, ...]:
    """The `syslog_drains` of a stored SchedulingInfo; () for a deleted or unreadable one."""
    if scheduling_json is None:
        return ()
    try:
        data = json.loads(scheduling_json)
        urls = data.get("syslog_drains", []) if isinstance(data, dict) else []
    except ValueError:
        return ()
    return tuple(u for u in urls if isinstance(u, str)) if isinstance(urls, list) else ()


class Drains:
    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._by_app: dict[str, dict[str, DrainWriter]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def set_drains(self, app_id: str, urls: Sequence[str]) -> None:
        """Make `app_id`'s writers exactly `urls`: start the new ones, stop the others.

        Called from the event loop (the informer's callback); stopping happens in tasks.
        """
        current = self._by_app.get(app_id, {})
        wanted: dict[str, DrainWriter] = {}
        for url in urls:
            if url in current:
                wanted[url] = current[url]
                continue
            problem = drain_url_problem(url)
            if problem is not None:
                log.warning("drain-url-skipped", app_id=app_id, problem=problem)
                continue
            writer = DrainWriter(app_id, url, queue_size=self.queue_size)
            writer.start()
            wanted[url] = writer
            log.info("drain-added", app_id=app_id, drain=redact(url))
        for url, writer in current.items():
            if url not in wanted:
                log.info("drain-removed", app_id=app_id, drain=redact(url),
                         sent=writer.sent_total, dropped=writer.dropped_total)
                task = asyncio.create_task(writer.close())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        if wanted:
            self._by_app[app_id] = wanted
        else:
            self._by_app.pop(app_id, None)

    def offer(self, envelope: Envelope) -> None:
        writers = self._by_app.get(envelope.app_id)
        if writers:
            for writer in writers.values():
                writer.offer(envelope)

    def writers(self, app_id: str) -> list[DrainWriter]:
        return list(self._by_app.get(app_id, {}).values())

    async def close(self) -> None:
        """Stop every writer (shutdown)."""
        writers = [w for by_url in self._by_app.values() for w in by_url.values()]
        self._by_app.clear()
        # close() only cancels and awaits its own task: nothing here is worth raising.
        await asyncio.gather(*(w.close() for w in writers), *self._closing,
                             return_exceptions=True)
