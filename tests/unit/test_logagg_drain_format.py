"""RFC 5424 messages with RFC 6587 octet counting, from envelopes; and ltc's redacted status."""

from __future__ import annotations

import re

import pytest

from lattice.cli import messages
from lattice.client.app_runner import AppStatus
from lattice.models import parse_desired_lrp
from logagg.drain_format import encode, format_message, procid, split_frames, timestamp
from logagg.envelope import Envelope, MessageType

# 2026-11-30T23:59:59.123456789Z
NS = 1_796_083_199_123_456_789
RFC5424 = re.compile(
    rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\S+) (.*)$", re.DOTALL)


def envelope(message: str = "hello", message_type: MessageType = "OUT", source: str = "APP",
             instance: str = "0", app_id: str = "web") -> Envelope:
    return Envelope(app_id, source, instance, message_type, NS, message)


def test_fields_of_an_out_line() -> None:
    match = RFC5424.match(format_message(envelope()))
    assert match is not None
    assert match.groups() == (b"14", b"2026-11-30T23:59:59.123456Z", b"web", b"web", b"[APP/0]",
                              b"-", b"-", b"hello\n")


def test_err_lines_have_severity_error() -> None:
    assert format_message(envelope(message_type="ERR")).startswith(b"<11>1 ")


@pytest.mark.parametrize(("source", "instance", "expected"), [
    ("APP", "3", "[APP/3]"), ("RTR", "0", "[RTR/0]"), ("LGR", "", "[LGR]"),
    ("my source", "1", "[my_source/1]"),
])
def test_procid(source: str, instance: str, expected: str) -> None:
    assert procid(envelope(source=source, instance=instance)) == expected


def test_app_name_is_cut_to_48_characters_hostname_is_not() -> None:
    name = "a" * 63
    match = RFC5424.match(format_message(envelope(app_id=name)))
    assert match is not None
    assert match.group(3) == name.encode()
    assert match.group(4) == name[:48].encode()


def test_timestamp_is_utc_microseconds() -> None:
    assert timestamp(0) == "1970-01-01T00:00:00.000000Z"
    assert timestamp(1_500) == "1970-01-01T00:00:00.000001Z"


def test_message_keeps_utf8_and_one_newline() -> None:
    match = RFC5424.match(format_message(envelope("grüße 🚀\r\n")))
    assert match is not None
    assert match.group(8) == "grüße 🚀\n".encode()


def test_octet_counting_round_trips_lines_holding_newlines_and_spaces() -> None:
    lines = [envelope("one"), envelope("two\nlines"), envelope(""), envelope("x " * 3000)]
    data = b"".join(encode(e) for e in lines)
    for cut in (0, 1, 7, len(data) // 2, len(data) - 1, len(data)):
        first, rest = split_frames(data[:cut])
        second, tail = split_frames(rest + data[cut:])
        assert tail == b""
        assert [format_message(e) for e in lines] == first + second
    length, _, message = encode(envelope("é")).partition(b" ")
    assert int(length) == len(message)


def test_split_frames_refuses_what_is_not_octet_counted() -> None:
    with pytest.raises(ValueError, match="octet-counted"):
        split_frames(b"<14>1 2026-11-30T00:00:00Z web web [APP/0] - - hi\n")


def test_status_shows_drains_without_credentials() -> None:
    lrp = parse_desired_lrp({"process_guid": "web", "image": "i", "syslog_drains": [
        "tcp://alice:hunter2@logs.example.com:514", "syslog://127.0.0.1:5140"]}, epoch="e")
    status = AppStatus(lrp, ())
    text = messages.app_status(status)
    assert "Syslog drains:" in text
    assert "tcp://***@logs.example.com:514, syslog://127.0.0.1:5140" in text
    for rendered in (text, messages.app_status_json(status)):
        assert "hunter2" not in rendered
        assert "alice" not in rendered
    assert "Syslog drains" not in messages.app_status(
        AppStatus(parse_desired_lrp({"process_guid": "web", "image": "i"}, epoch="e"), ()))
