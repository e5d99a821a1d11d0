"""Docker's multiplexed log stream: frames cut anywhere, partial lines, stdout vs stderr."""

from __future__ import annotations

import struct

import pytest

from lattice.cell.errors import DockerStreamError
from lattice.cell.log_frames import (
    FrameDecoder,
    LineAssembler,
    LogLine,
    LogStreamParser,
    parse_rfc3339_ns,
)

T1 = "2024-05-01T10:11:12.000000001Z"
T2 = "2024-05-01T10:11:12.500000000Z"
T3 = "2024-05-01T10:11:13.123456789Z"
NS1 = parse_rfc3339_ns(T1)


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def message(stream: int, stamp: str, text: str) -> bytes:
    return frame(stream, f"{stamp} {text}".encode())


def parse_in_pieces(data: bytes, cut: list[int]) -> list[LogLine]:
    parser = LogStreamParser()
    lines: list[LogLine] = []
    start = 0
    for end in [*cut, len(data)]:
        lines.extend(parser.feed(data[start:end]))
        start = end
    lines.extend(parser.finish())
    assert not parser.truncated
    return lines


def test_rfc3339_nanoseconds_are_exact() -> None:
    assert parse_rfc3339_ns("1970-01-01T00:00:01.000000001Z") == 1_000_000_001
    assert parse_rfc3339_ns("1970-01-01T00:00:01Z") == 1_000_000_000
    assert parse_rfc3339_ns("1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert parse_rfc3339_ns("1970-01-01T02:00:00.25+02:00") == 250_000_000
    assert parse_rfc3339_ns(T3) - parse_rfc3339_ns(T1) == 1_123_456_788


@pytest.mark.parametrize("bad", ["", "yesterday", "2024-05-01 10:11:12Z", "2024-05-01T10:11:12"])
def test_bad_timestamps_are_refused_with_the_value(bad: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp"):
        parse_rfc3339_ns(bad)


STREAM = (
    message(1, T1, "hello\n")
    + message(2, T2, "oops\n")
    + message(1, T3, "bye\n")
)
EXPECTED = [
    LogLine("stdout", NS1, "hello"),
    LogLine("stderr", parse_rfc3339_ns(T2), "oops"),
    LogLine("stdout", parse_rfc3339_ns(T3), "bye"),
]


def test_whole_stream_gives_lines_with_stream_and_timestamp() -> None:
    assert parse_in_pieces(STREAM, []) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_cut_at_any_byte_changes_nothing(cut: int) -> None:
    assert parse_in_pieces(STREAM, [cut]) == EXPECTED


def test_one_byte_at_a_time_changes_nothing() -> None:
    assert parse_in_pieces(STREAM, list(range(1, len(STREAM)))) == EXPECTED


def test_a_long_line_split_into_messages_is_reassembled_with_its_first_timestamp() -> None:
    # Docker splits lines over 16 KiB into messages, each timestamped, only the last with \n.
    data = (
        message(1, T1, "first half, ")
        + message(2, T2, "an error in between\n")
        + message(1, T3, "second half\n")
    )
    assert parse_in_pieces(data, []) == [
        LogLine("stderr", parse_rfc3339_ns(T2), "an error in between"),
        LogLine("stdout", NS1, "first half, second half"),
    ]


def test_a_last_line_without_newline_comes_out_at_the_end() -> None:
    parser = LogStreamParser()
    assert parser.feed(message(1, T1, "no newline")) == []
    assert parser.finish() == [LogLine("stdout", NS1, "no newline")]


def test_empty_lines_and_crlf() -> None:
    assert parse_in_pieces(message(1, T1, "\n") + message(1, T2, "dos\r\n"), []) == [
        LogLine("stdout", NS1, ""),
        LogLine("stdout", parse_rfc3339_ns(T2), "dos"),
    ]


def test_bad_utf8_is_replaced_not_fatal() -> None:
    lines = parse_in_pieces(frame(1, T1.encode() + b" caf\xe9\n"), [])
    assert lines == [LogLine("stdout", NS1, "caf\ufffd")]


def test_a_cut_frame_is_reported_as_truncated() -> None:
    parser = LogStreamParser()
    parser.feed(message(1, T1, "hello\n")[:-3])
    assert parser.truncated


def test_a_stream_that_is_not_multiplexed_is_refused() -> None:
    with pytest.raises(DockerStreamError, match="not a multiplexed log stream"):
        FrameDecoder().feed(b"2024-05-01T10:11:12Z plain tty output\n")


def test_a_message_without_timestamp_is_refused() -> None:
    with pytest.raises(DockerStreamError, match="without a valid timestamp"):
        LineAssembler().feed(1, b"no-timestamp-here\n")


def test_without_timestamps_the_payload_is_the_line() -> None:
    assert LineAssembler(timestamps=False).feed(2, b"a\nb\n") == [
        LogLine("stderr", 0, "a"), LogLine("stderr", 0, "b")
    ]


def test_stdin_frames_are_ignored() -> None:
    assert parse_in_pieces(message(0, T1, "typed\n") + STREAM, []) == EXPECTED
