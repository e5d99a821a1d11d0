"""RTR lines: buffered per request, formatted and handed on in one flush."""

from __future__ import annotations

from logagg.envelope import Envelope
from router import applogs
from router.applogs import AppLogs


class Collected:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def emit(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


def test_lines_are_formatted_at_flush() -> None:
    sink = Collected()
    logs = AppLogs(sink)
    logs.add("web", 2, b"web.x", b"GET", b"/a?b=1", 200, 0.0012345, b"127.0.0.1")
    assert sink.envelopes == []
    logs.flush()
    (envelope,) = sink.envelopes
    assert (envelope.app_id, envelope.source_type, envelope.source_instance,
            envelope.message_type) == ("web", "RTR", "2", "OUT")
    assert envelope.message == ('web.x - "GET /a?b=1" 200 response_time:0.001234 app_index:2 '
                                'x_forwarded_for:"127.0.0.1"')
    assert envelope.timestamp > 0
    logs.flush()
    assert len(sink.envelopes) == 1


def test_beyond_the_limit_lines_are_dropped_and_counted() -> None:
    sink = Collected()
    logs = AppLogs(sink)
    for n in range(applogs.MAX_PENDING + 5):
        logs.add("web", 0, b"h", b"GET", f"/{n}".encode(), 200, 0.0, b"")
    assert logs.dropped == 5
    logs.flush()
    assert len(sink.envelopes) == applogs.MAX_PENDING
    assert sink.envelopes[-1].message.startswith(f'h - "GET /{applogs.MAX_PENDING - 1}"')
