"""Rewriting heads on the way through: added headers, hop-by-hop removal, re-framing."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from router import headers
from router.headers import (
    Framing,
    build_request_head,
    build_response_head,
    new_request_id,
    response_framing,
    scan,
)
from router.pool import Endpoint

APP = Endpoint("127.0.0.1", 61000, "web", 2, "web-guid-2")
SERVICE = Endpoint("127.0.0.1", 61001, "", 0, "brain-1")


def request(headers: list[tuple[bytes, bytes]], *, endpoint: Endpoint = APP,
            upgrade: bool = False, method: bytes = b"GET") -> tuple[list[bytes], bool]:
    head, chunked = build_request_head(
        method, b"/path?q=1", headers, client_ip=b"127.0.0.9", endpoint=endpoint,
        request_id=b"4b9c6a1e-0000-4000-8000-000000000000", now_ms=1700000000123, upgrade=upgrade,
    )
    assert head.endswith(b"\r\n\r\n")
    return head[:-4].split(b"\r\n"), chunked


def names(lines: list[bytes]) -> list[bytes]:
    return [line.split(b":", 1)[0].lower() for line in lines[1:]]


def value(lines: list[bytes], name: bytes) -> bytes:
    found = [line.split(b": ", 1)[1] for line in lines[1:] if line.split(b":")[0].lower() == name]
    assert len(found) == 1, f"{name!r} appears {len(found)} times in {lines}"
    return found[0]


def test_request_line_and_the_headers_the_router_adds() -> None:
    lines, chunked = request([(b"Host", b"web.example.com"), (b"Accept", b"*/*")])
    assert lines[0] == b"GET /path?q=1 HTTP/1.1"
    assert value(lines, b"host") == b"web.example.com"
    assert value(lines, b"accept") == b"*/*"
    assert value(lines, b"x-forwarded-for") == b"127.0.0.9"
    assert value(lines, b"x-forwarded-proto") == b"http"
    assert value(lines, b"x-request-start") == b"1700000000123"
    assert value(lines, b"x-vcap-request-id") == b"4b9c6a1e-0000-4000-8000-000000000000"
    assert value(lines, b"x-cf-applicationid") == b"web"
    assert value(lines, b"x-cf-instanceid") == b"web-guid-2"
    assert not chunked


def test_client_values_are_appended_to_or_replaced() -> None:
    lines, _ = request([
        (b"X-Forwarded-For", b"10.0.0.1"),
        (b"x-forwarded-for", b"10.0.0.2"),
        (b"X-Forwarded-Proto", b"https"),
        (b"X-Request-Start", b"42"),
        (b"X-Vcap-Request-Id", b"client-chosen"),
        (b"X-CF-ApplicationID", b"spoofed"),
        (b"X-CF-InstanceID", b"spoofed"),
    ])
    assert value(lines, b"x-forwarded-for") == b"10.0.0.1, 10.0.0.2, 127.0.0.9"
    assert value(lines, b"x-forwarded-proto") == b"http"
    assert value(lines, b"x-request-start") == b"42"      # kept: set only if absent
    assert value(lines, b"x-vcap-request-id") != b"client-chosen"
    assert value(lines, b"x-cf-applicationid") == b"web"
    assert value(lines, b"x-cf-instanceid") == b"web-guid-2"


def test_a_service_endpoint_gets_no_app_headers() -> None:
    lines, _ = request([(b"Host", b"receptor.x")], endpoint=SERVICE)
    assert b"x-cf-applicationid" not in names(lines)
    assert b"x-cf-instanceid" not in names(lines)


def test_hop_by_hop_headers_and_those_named_in_connection_are_removed() -> None:
    lines, _ = request([
        (b"Host", b"h"),
        (b"Connection", b"keep-alive, X-Private"),
        (b"Connection", b"X-Other"),
        (b"X-Private", b"1"),
        (b"x-other", b"2"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Proxy-Connection", b"keep-alive"),
        (b"TE", b"trailers"),
        (b"Trailer", b"X-Checksum"),
        (b"Upgrade", b"websocket"),
        (b"X-Kept", b"yes"),
    ])
    present = names(lines)
    for hop in (b"connection", b"x-private", b"x-other", b"keep-alive", b"proxy-connection",
                b"te", b"trailer", b"upgrade", b"transfer-encoding"):
        assert hop not in present
    assert b"x-kept" in present


def test_an_upgrade_request_keeps_upgrade() -> None:
    lines, _ = request(
        [(b"Host", b"h"), (b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"),
         (b"Sec-WebSocket-Key", b"k")],
        upgrade=True,
    )
    assert value(lines, b"upgrade") == b"websocket"
    assert value(lines, b"connection") == b"Upgrade"
    assert value(lines, b"sec-websocket-key") == b"k"


def test_a_chunked_request_is_sent_chunked_without_content_length() -> None:
    lines, chunked = request(
        [(b"Host", b"h"), (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"10")],
        method=b"POST",
    )
    assert chunked
    assert value(lines, b"transfer-encoding") == b"chunked"
    assert b"content-length" not in names(lines)


def test_a_sized_request_keeps_its_content_length() -> None:
    lines, chunked = request([(b"Host", b"h"), (b"Content-Length", b"10")], method=b"PUT")
    assert not chunked
    assert value(lines, b"content-length") == b"10"


@pytest.mark.parametrize(
    ("status", "headers", "head_request", "http_10", "framing"),
    [
        (200, [(b"Content-Length", b"5")], False, False, Framing.LENGTH),
        (200, [(b"Transfer-Encoding", b"chunked")], False, False, Framing.CHUNKED),
        (200, [(b"Transfer-Encoding", b"chunked")], False, True, Framing.CLOSE),
        (200, [], False, False, Framing.CHUNKED),      # body until the backend closes
        (200, [], False, True, Framing.CLOSE),
        (200, [(b"Content-Length", b"5")], True, False, Framing.NONE),
        (204, [], False, False, Framing.NONE),
        (304, [(b"Content-Length", b"5")], False, False, Framing.NONE),
        (100, [], False, False, Framing.NONE),
        (200, [(b"Transfer-Encoding", b"gzip, chunked"), (b"Content-Length", b"5")], False,
         False, Framing.CHUNKED),
    ],
)
def test_response_framing(status: int, headers: list[tuple[bytes, bytes]], head_request: bool,
                          http_10: bool, framing: Framing) -> None:
    assert response_framing(status, scan(headers), head_request=head_request,
                            client_http_10=http_10) is framing


def test_response_head_is_reframed_and_stripped() -> None:
    headers = [(b"Content-Type", b"text/plain"), (b"Transfer-Encoding", b"chunked"),
               (b"Connection", b"keep-alive, X-Hop"), (b"X-Hop", b"1"),
               (b"Keep-Alive", b"timeout=4")]
    head = build_response_head(200, b"OK", headers, scan(headers), framing=Framing.CHUNKED,
                               keep_alive=True, client_http_10=False)
    assert head == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


def test_response_head_says_close_or_keep_alive_when_needed() -> None:
    sized = [(b"Content-Length", b"0")]
    closing = build_response_head(200, b"OK", sized, scan(sized), framing=Framing.LENGTH,
                                  keep_alive=False, client_http_10=False)
    assert closing.endswith(b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    old_client = build_response_head(200, b"OK", sized, scan(sized), framing=Framing.LENGTH,
                                     keep_alive=True, client_http_10=True)
    assert old_client.endswith(b"Connection: keep-alive\r\n\r\n")
    until_close = build_response_head(200, b"OK", [], scan([]), framing=Framing.CLOSE,
                                      keep_alive=True, client_http_10=True)
    assert until_close.endswith(b"Connection: close\r\n\r\n")


def test_a_101_keeps_upgrade_and_connection() -> None:
    headers = [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
               (b"Sec-WebSocket-Accept", b"x")]
    head = build_response_head(101, b"Switching Protocols", headers, scan(headers),
                               framing=Framing.NONE, keep_alive=True, client_http_10=False,
                               upgrade=True)
    assert head == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: x\r\n\r\n"
    )


def test_scan_finds_framing_and_hop_by_hop_names_in_one_pass() -> None:
    facts = scan([(b"transfer-encoding", b"gzip, Chunked"), (b"Connection", b"close, X-A"),
                  (b"content-length", b" 12 ")])
    assert facts.chunked
    assert facts.length == 12
    assert {b"close", b"x-a", b"connection", b"upgrade"} <= facts.hop
    assert facts.names == (b"transfer-encoding", b"connection", b"content-length")
    assert not scan([(b"Transfer-Encoding", b"chunked, gzip")]).chunked
    assert scan([(b"Content-Length", b"x")]).length is None
    assert scan([]) == scan([])


def test_request_ids_are_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    for raw in ids:
        parsed = uuid.UUID(raw.decode())
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


_UUID4_TEXT = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def test_request_ids_have_the_version_4_format_and_do_not_repeat() -> None:
    ids = [new_request_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    for raw in ids[:1000] + ids[-1000:]:
        assert _UUID4_TEXT.fullmatch(raw), raw


def test_request_ids_draw_a_new_base_when_the_counter_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(headers, "_id_next", (1 << 48) - 1)
    last = new_request_id()
    assert last.endswith(b"-ffffffffffff")
    after = new_request_id()
    assert _UUID4_TEXT.fullmatch(after), after
    assert after[:24] != last[:24]      # a new random base, not a wrapped counter


def test_a_forked_child_draws_its_own_request_id_base() -> None:
    parent = new_request_id()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:    # the child: report one id and leave without running pytest's teardown
        try:
            os.write(write_end, new_request_id())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        child = b""
        while piece := os.read(read_end, 64):
            child += piece
    finally:
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _UUID4_TEXT.fullmatch(child), child
    assert child[:24] != parent[:24]
