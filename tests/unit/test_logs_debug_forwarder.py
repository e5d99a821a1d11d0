"""The structlog processor that copies the box's own events to the log aggregator."""

from __future__ import annotations

import json

from lattice.logs import DEBUG_APP_ID, DebugLogForwarder, _redact
from logagg.envelope import Envelope


class Sink:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    def emit(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)


def test_events_go_to_lattice_debug_redacted_warnings_as_err() -> None:
    forwarder = DebugLogForwarder()
    forwarder.component = "brain"
    assert forwarder(None, "info", {"event": "before-attach"}) == {"event": "before-attach"}
    sink = Sink()
    forwarder.attach(sink)
    event = _redact(None, "warning", {"event": "login", "level": "warning", "password": "s3cr3t"})
    forwarder(None, "warning", event)
    forwarder(None, "info", {"event": "converge-started", "level": "info"})
    forwarder.detach()
    forwarder(None, "info", {"event": "after-detach"})
    assert [(e.app_id, e.source_type, e.message_type) for e in sink.envelopes] == [
        (DEBUG_APP_ID, "brain", "ERR"), (DEBUG_APP_ID, "brain", "OUT")]
    assert "s3cr3t" not in sink.envelopes[0].message
    assert json.loads(sink.envelopes[0].message)["event"] == "login"
