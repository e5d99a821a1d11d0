"""The envelope's JSON text: the fast encoder must write exactly what asdict + json.dumps did."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, cast

import pytest

from logagg.envelope import SOURCE_TYPES, Envelope, dropped_notice
from logagg.frames import decode_frame, encode_envelope, encode_frame

TS = 1_700_000_000_123_456_789
MESSAGES = [
    "",
    "plain ascii line",
    'quotes " and \\ backslashes \\" and a / slash',
    "control \x00 \x01 \x1f \x7f \t tab \n newline \r return \b \f",
    "latin-1: café naïve ß ÿ",
    "bmp: € 漢字 ✓ \u2028 \u2029 \ufeff",
    "astral: 😀 𝄞 🇫🇷",
    "lone surrogates: \ud800 \udfff",
    "é" * 3000,
    "a" * 4096,
]


def reference(envelope: Envelope) -> str:
    """The encoding before the fast path: the wire format every reader expects."""
    return json.dumps(dataclasses.asdict(envelope), separators=(",", ":"))


def envelopes() -> list[Envelope]:
    made = [Envelope("web", source_type, "0", "OUT", TS, "line")
            for source_type in sorted(SOURCE_TYPES)]
    made += [Envelope("web-1_A", "RTR", "3", "ERR", TS, message) for message in MESSAGES]
    made += [
        Envelope("a", "lattice-brain", "", "OUT", 0, ""),          # empty fields, epoch 0
        Envelope("x" * 300, "CELL", "12", "ERR", 2**63 - 1, "é"),
        Envelope("web", "APP", "ünïcode instance", "OUT", TS, "\u00e9\u0301"),
        dropped_notice("web", 42),
    ]
    return made


@pytest.mark.parametrize("envelope", envelopes(), ids=lambda e: repr(e.message[:20]))
def test_encode_envelope_writes_the_same_text_as_asdict_and_dumps(envelope: Envelope) -> None:
    assert encode_envelope(envelope) == reference(envelope)
    assert envelope.to_dict() == dataclasses.asdict(envelope)
    assert list(envelope.to_dict()) == [field.name for field in dataclasses.fields(Envelope)]


@pytest.mark.parametrize("odd", [
    {"timestamp": True},            # json writes true, not 1
    {"timestamp": 1.5},
    {"message": 7},
    {"source_instance": None},
])
def test_fields_of_other_types_take_the_general_encoder(odd: dict[str, Any]) -> None:
    # Not what the type hints allow, but the text stays what json.dumps made of it.
    envelope = dataclasses.replace(Envelope("web", "APP", "0", "OUT", TS, "m"), **odd)
    assert encode_envelope(envelope) == reference(envelope)


def test_a_str_subclass_is_encoded_as_its_text() -> None:
    class Tagged(str):
        def __str__(self) -> str:
            return "not this"

    envelope = Envelope("web", "APP", "0", "OUT", TS, cast(str, Tagged("this")))
    assert encode_envelope(envelope) == reference(envelope)


def test_a_frame_of_every_kind_decodes_to_the_same_envelopes() -> None:
    sent = envelopes()
    frame = encode_frame(sent)
    assert frame == "[" + ",".join(reference(e) for e in sent) + "]"
    assert decode_frame(frame) == (sent, [])
