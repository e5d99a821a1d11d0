"""Rewriting request and response heads on their way through the router. Pure functions.

Headers are kept as the parser gave them: a list of `(name, value)` byte pairs in arrival
order, names in their original case (HTTP names are case-insensitive; backends see them as the
client wrote them). The router re-frames every body itself, so the framing headers it receives
(Transfer-Encoding) are dropped and the ones it sends are written here.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from router.pool import Endpoint

Header = tuple[bytes, bytes]

# RFC 9110 7.6.1 and what gorouter strips; any header named in Connection is hop-by-hop too.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Headers the router sets itself: a client's copy is dropped (X-Forwarded-For is appended to).
_SET_BY_ROUTER = frozenset(
    {
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-vcap-request-id",
        b"x-cf-applicationid",
        b"x-cf-instanceid",
    }
)


class Framing(enum.Enum):
    """How the router delimits a response body it sends to the client."""

    NONE = "none"            # no body: HEAD, 1xx, 204, 304
    LENGTH = "length"        # Content-Length passed through, body copied as is
    CHUNKED = "chunked"      # the router chunks the body (backend chunked, or sent no length)
    CLOSE = "close"          # body ends when the router closes the connection (HTTP/1.0 client)


def connection_tokens(headers: Sequence[Header]) -> frozenset[bytes]:
    """Lower-cased tokens of every Connection header (`close`, `upgrade`, header names...)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def is_chunked(headers: Sequence[Header]) -> bool:
    """True if the message's last transfer coding is chunked (RFC 9112 6.3)."""
    codings = [
        c.strip().lower()
        for name, value in headers
        if name.lower() == b"transfer-encoding"
        for c in value.split(b",")
        if c.strip()
    ]
    return bool(codings) and codings[-1] == b"chunked"


def content_length(headers: Sequence[Header]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return None
    return None


def build_request_head(
    method: bytes,
    target: bytes,
    headers: Sequence[Header],
    *,
    client_ip: bytes,
    endpoint: Endpoint,
    request_id: bytes,
    now_ms: int,
    upgrade: bool,
) -> tuple[bytes, bool]:
    """The head sent to the backend, and whether the body must be sent chunked.

    Always HTTP/1.1 with keep-alive to the backend (no Connection header), except on an
    upgrade request, which keeps `Upgrade` and says `Connection: Upgrade`.
    """
    hop = HOP_BY_HOP | connection_tokens(headers)
    chunked = is_chunked(headers)
    lines = [method, b" ", target, b" HTTP/1.1\r\n"]
    forwarded_for: list[bytes] = []
    upgrade_to = b""
    has_request_start = False
    for name, value in headers:
        lname = name.lower()
        if lname in hop:
            if lname == b"upgrade":
                upgrade_to = value
            continue
        if lname in _SET_BY_ROUTER:
            if lname == b"x-forwarded-for":
                forwarded_for.append(value)
            continue
        if lname == b"content-length" and chunked:
            continue  # chunked wins (RFC 9112 6.3); sending both would invite request smuggling
        if lname == b"x-request-start":
            has_request_start = True
        lines += (name, b": ", value, b"\r\n")
    forwarded_for.append(client_ip)
    lines += (b"X-Forwarded-For: ", b", ".join(forwarded_for), b"\r\n")
    lines.append(b"X-Forwarded-Proto: http\r\n")
    if not has_request_start:
        lines += (b"X-Request-Start: ", str(now_ms).encode(), b"\r\n")
    lines += (b"X-Vcap-Request-Id: ", request_id, b"\r\n")
    if endpoint.process_guid:
        lines += (b"X-CF-ApplicationID: ", endpoint.process_guid.encode(), b"\r\n")
        lines += (b"X-CF-InstanceID: ", endpoint.instance_guid.encode(), b"\r\n")
    if chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if upgrade and upgrade_to:
        lines += (b"Connection: Upgrade\r\nUpgrade: ", upgrade_to, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines), chunked


def response_framing(
    status: int, headers: Sequence[Header], *, head_request: bool, client_http_10: bool
) -> Framing:
    if head_request or status < 200 or status in (204, 304):
        return Framing.NONE
    if not is_chunked(headers) and content_length(headers) is not None:
        return Framing.LENGTH
    # No usable length: HTTP/1.1 clients get chunks; HTTP/1.0 ones cannot, so the connection
    # closing marks the end.
    return Framing.CLOSE if client_http_10 else Framing.CHUNKED


def build_response_head(
    status: int,
    reason: bytes,
    headers: Sequence[Header],
    *,
    framing: Framing,
    keep_alive: bool,
    client_http_10: bool,
    upgrade: bool = False,
) -> bytes:
    """The head sent to the client. `upgrade`: a 101 answer, which keeps Connection/Upgrade."""
    lines = [b"HTTP/1.1 ", str(status).encode(), b" ", reason, b"\r\n"]
    if upgrade:
        hop = (HOP_BY_HOP | connection_tokens(headers)) - {b"upgrade", b"connection"}
    else:
        hop = HOP_BY_HOP | connection_tokens(headers)
    chunked_in = framing is not Framing.LENGTH and is_chunked(headers)
    for name, value in headers:
        lname = name.lower()
        if lname in hop:
            continue
        if lname == b"content-length" and chunked_in:
            continue
        lines += (name, b": ", value, b"\r\n")
    if framing is Framing.CHUNKED:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if not upgrade and status >= 200:
        if not keep_alive or framing is Framing.CLOSE:
            lines.append(b"Connection: close\r\n")
        elif client_http_10:
            lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> list[bytes]:
    """`data` as one chunk of a chunked body, as pieces for `writelines` (no copy of data)."""
    return [b"%x\r\n" % len(data), data, b"\r\n"]


LAST_CHUNK = b"0\r\n\r\n"
