"""RTR lines: buffered per request, formatted and handed on in one flush."""

from __future__ import annotations

from collections.abc import Iterable

from logagg.envelope import Envelope
from router import applogs
from router.applogs import AppLogs


class Collected:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.calls = 0

    def emit_many(self, envelopes: Iterable[Envelope]) -> None:
        self.calls += 1
        self.envelopes.extend(envelopes)


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
    assert sink.calls == 1          # nothing pending: the publisher is not bothered


def test_a_flush_hands_its_lines_over_in_one_call_in_order() -> None:
    sink = Collected()
    logs = AppLogs(sink)
    for n in range(3):
        logs.add("web", n, b"h", b"GET", f"/{n}".encode(), 200, 0.0, b"")
    logs.flush()
    assert sink.calls == 1
    assert [e.source_instance for e in sink.envelopes] == ["0", "1", "2"]


def test_beyond_the_limit_lines_are_dropped_and_counted() -> None:
    sink = Collected()
    logs = AppLogs(sink)
    for n in range(applogs.MAX_PENDING + 5):
        logs.add("web", 0, b"h", b"GET", f"/{n}".encode(), 200, 0.0, b"")
    assert logs.dropped == 5
    logs.flush()
    assert len(sink.envelopes) == applogs.MAX_PENDING
    assert sink.envelopes[-1].message.startswith(f'h - "GET /{applogs.MAX_PENDING - 1}"')


def test_envelopes_equal_those_built_by_the_constructor() -> None:
    # flush() fills the frozen dataclass's __dict__ itself (faster than its __init__): the
    # result must be indistinguishable from a normally built envelope.
    assert applogs._ENVELOPE_BY_DICT, "Envelope changed shape: the fast path is off"
    sink = Collected()
    logs = AppLogs(sink)
    logs.add("web", 3, b"web.x", b"POST", b"/\xe9", 502, 1.5, b"::1")
    logs.flush()
    (envelope,) = sink.envelopes
    expected = Envelope("web", "RTR", "3", "OUT", envelope.timestamp,
                        'web.x - "POST /\xe9" 502 response_time:1.500000 app_index:3 '
                        'x_forwarded_for:"::1"')
    assert envelope == expected
    assert type(envelope) is Envelope
    assert hash(envelope) == hash(expected)
    assert envelope.to_dict() == expected.to_dict()
    assert vars(envelope) == vars(expected)
