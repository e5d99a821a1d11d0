"""Envelope validation, the ingest frame format, drop notices and the config's checks."""

from __future__ import annotations

import json

import pytest

from logagg.config import LogaggConfig
from logagg.envelope import (
    MAX_MESSAGE_BYTES,
    Envelope,
    app_id_problem,
    dropped_notice,
    parse_envelope,
    split_message,
)
from logagg.errors import InvalidEnvelope
from logagg.frames import decode_frame, encode_frame

TS = 1_700_000_000_000_000_000
GOOD = {"app_id": "web", "source_type": "APP", "source_instance": "0", "message_type": "OUT",
        "timestamp": TS, "message": "hello"}


def test_parse_envelope_round_trips() -> None:
    envelope = parse_envelope(GOOD)
    assert envelope == Envelope("web", "APP", "0", "OUT", TS, "hello")
    assert parse_envelope(envelope.to_dict()) == envelope


def test_parse_envelope_names_every_bad_field() -> None:
    bad = {"app_id": "no/slash", "source_type": "", "source_instance": 3,
           "message_type": "DEBUG", "timestamp": True, "message": None}
    with pytest.raises(InvalidEnvelope) as caught:
        parse_envelope(bad)
    text = str(caught.value)
    for field in ("app_id", "source_type", "source_instance", "message_type", "timestamp",
                  "message"):
        assert f"{field}:" in text


@pytest.mark.parametrize(("field", "bad"), [
    ("app_id", "a/b"), ("app_id", ""), ("app_id", 7), ("app_id", None),
    ("source_type", ""), ("source_type", 1), ("source_instance", 0),
    ("message_type", "out"), ("message_type", None),
    ("timestamp", True), ("timestamp", -1), ("timestamp", 1.0), ("timestamp", "1"),
    ("message", None), ("message", b"x"),
])
def test_parse_envelope_rejects_one_bad_field_among_good_ones(field: str, bad: object) -> None:
    # The common case is checked first, for speed: one bad field must still be caught.
    with pytest.raises(InvalidEnvelope, match=f"^{field}: "):
        parse_envelope({**GOOD, field: bad})


def test_parse_envelope_of_a_valid_object_equals_from_dict() -> None:
    for data in (GOOD, {**GOOD, "message": "", "timestamp": 0, "message_type": "ERR"}):
        envelope = parse_envelope(data)
        assert envelope == Envelope.from_dict(data)
        assert type(envelope.timestamp) is int
    without_instance = {k: v for k, v in GOOD.items() if k != "source_instance"}
    assert parse_envelope(without_instance).source_instance == ""


def test_parse_envelope_rejects_a_non_object() -> None:
    with pytest.raises(InvalidEnvelope, match="must be a JSON object, got list"):
        parse_envelope([1, 2])


@pytest.mark.parametrize(("app_id", "ok"), [("web-1_a", True), ("", False), ("a b", False),
                                             ("../x", False), (7, False)])
def test_app_id_rule(app_id: object, ok: bool) -> None:
    assert (app_id_problem(app_id) is None) is ok


def test_dropped_notice() -> None:
    notice = dropped_notice("web", 42)
    assert (notice.app_id, notice.source_type, notice.message) == ("web", "LGR",
                                                                   "42 messages dropped")


def test_frames_round_trip() -> None:
    envelopes = [parse_envelope(GOOD), dropped_notice("web", 1)]
    assert decode_frame(encode_frame(envelopes)) == (envelopes, [])


def test_decode_frame_skips_only_bad_items() -> None:
    envelopes, problems = decode_frame(json.dumps([{"app_id": "web"}, GOOD, 5]))
    assert [e.message for e in envelopes] == ["hello"]
    assert len(problems) == 2
    assert problems[0].startswith("item 0: ")
    assert problems[1] == "item 2: an envelope must be a JSON object, got int"


@pytest.mark.parametrize(("frame", "problem"), [("not json", "frame is not JSON"),
                                                ('{"a": 1}', "frame must be a JSON array")])
def test_decode_frame_rejects_bad_frames(frame: str, problem: str) -> None:
    envelopes, problems = decode_frame(frame)
    assert envelopes == []
    assert problems[0].startswith(problem)


def test_config_defaults_and_checks() -> None:
    config = LogaggConfig(etcd_endpoints="127.0.0.1:2379")
    assert (config.host, config.port, config.recent_lines, config.subscriber_queue) == (
        "127.0.0.1", 0, 1000, 1000)
    with pytest.raises(ValueError, match="port") as caught:
        LogaggConfig(etcd_endpoints="", port=70000, recent_lines=0, subscriber_queue=0)
    for field in ("port", "etcd_endpoints", "recent_lines", "subscriber_queue"):
        assert f"{field}:" in str(caught.value)


@pytest.mark.parametrize("message", ["", "short", "a" * 4096, "a" * 4097, "é" * 3000,
                                     "x" + "€" * 2000, "😀" * 1500])
def test_split_message_keeps_pieces_under_4096_bytes_and_characters_whole(message: str) -> None:
    pieces = split_message(message)
    assert "".join(pieces) == message
    assert all(len(piece.encode()) <= MAX_MESSAGE_BYTES for piece in pieces)
    assert len(pieces) == max(1, -(-len(message.encode()) // MAX_MESSAGE_BYTES)) or all(pieces)


def test_split_message_of_a_10k_line_gives_three_pieces() -> None:
    assert [len(p) for p in split_message("a" * 10_000)] == [4096, 4096, 1808]
