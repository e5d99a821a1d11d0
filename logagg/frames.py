"""The ingest wire format: one WebSocket text frame holds a JSON array of envelope objects."""

from __future__ import annotations

import json
from collections.abc import Iterable

from logagg.envelope import Envelope, parse_envelope
from logagg.errors import InvalidEnvelope


def encode_envelope(envelope: Envelope) -> str:
    return json.dumps(envelope.to_dict(), separators=(",", ":"))


def join_frame(encoded: Iterable[str]) -> str:
    """A frame from envelopes already encoded one by one (so a sender can bound a frame's size)."""
    return "[" + ",".join(encoded) + "]"


def encode_frame(envelopes: Iterable[Envelope]) -> str:
    return join_frame(encode_envelope(e) for e in envelopes)


def decode_frame(text: str) -> tuple[list[Envelope], list[str]]:
    """The valid envelopes of a frame, and one problem per item (or for the frame) skipped.

    A bad item does not spoil its neighbours: a producer's one odd line costs only that line.
    """
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [f"frame is not JSON: {exc}"]
    if not isinstance(items, list):
        return [], [f"frame must be a JSON array of envelopes, got {type(items).__name__}"]
    envelopes: list[Envelope] = []
    problems: list[str] = []
    for position, item in enumerate(items):
        try:
            envelopes.append(parse_envelope(item))
        except InvalidEnvelope as exc:
            problems.append(f"item {position}: {exc}")
    return envelopes, problems
