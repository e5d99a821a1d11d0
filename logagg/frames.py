"""The ingest wire format: one WebSocket text frame holds a JSON array of envelope objects."""

from __future__ import annotations

import json
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii

from logagg.envelope import Envelope, parse_envelope
from logagg.errors import InvalidEnvelope

# The wire text is json.dumps(envelope.to_dict(), separators=(",", ":")): compact, ASCII only
# (ensure_ascii's escapes), the fields in declaration order. tests/unit/test_logagg_frames.py
# holds the encoders below to exactly that text.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_TEMPLATE = ('{"app_id":%s,"source_type":%s,"source_instance":%s,"message_type":%s,'
             '"timestamp":%d,"message":%s}')


def encode_envelope(envelope: Envelope) -> str:
    """An envelope as one JSON object, as every reader of the frames and the streams expects.

    Every line the router and the cells publish goes through here. Filling a template with
    json's own C string escaper costs a tenth of building a dict and running json.dumps;
    anything but the declared field types (a timestamp that is not a plain int, a field that
    is not a string) takes the general encoder, so the text is the same either way.
    """
    timestamp = envelope.timestamp
    if type(timestamp) is int:
        try:
            return _TEMPLATE % (
                encode_basestring_ascii(envelope.app_id),
                encode_basestring_ascii(envelope.source_type),
                encode_basestring_ascii(envelope.source_instance),
                encode_basestring_ascii(envelope.message_type),
                timestamp,
                encode_basestring_ascii(envelope.message),
            )
        except TypeError:
            pass        # a field that is not a string: json.dumps decides what it becomes
    return _ENCODER.encode(envelope.to_dict())


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
