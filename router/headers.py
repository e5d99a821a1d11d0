"""Rewriting request and response heads on their way through the router. Pure functions.

Headers are kept as the parser gave them: a list of `(name, value)` byte pairs in arrival
order, names in their original case (HTTP names are case-insensitive; backends see them as the
client wrote them). The router re-frames every body itself, so the framing headers it receives
(Transfer-Encoding) are dropped and the ones it sends are written here.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from typing import NamedTuple

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


# Version nibble 4 and variant bits 10 of RFC 4122, ORed into 128 random bits (the two bits
# below them are cleared by _UUID4_MASK first).
_UUID4_MASK = ~((0xF << 76) | (0x3 << 62))
_UUID4_BITS = (0x4 << 76) | (0x2 << 62)

# The request headers build_request_head looks at; the others are copied as they are.
_REQUEST_SCANNED = HOP_BY_HOP | _SET_BY_ROUTER | {b"x-request-start"}
_NOTHING: frozenset[bytes] = frozenset()

_UPGRADE_HEADERS = frozenset({b"upgrade", b"connection"})
_CONTENT_LENGTH = frozenset({b"content-length"})


class Framing(enum.Enum):
    """How the router delimits a response body it sends to the client."""

    NONE = "none"            # no body: HEAD, 1xx, 204, 304
    LENGTH = "length"        # Content-Length passed through, body copied as is
    CHUNKED = "chunked"      # the router chunks the body (backend chunked, or sent no length)
    CLOSE = "close"          # body ends when the router closes the connection (HTTP/1.0 client)


class HeadFacts(NamedTuple):
    """What the proxy needs to know about a message's headers, found in one pass.

    A NamedTuple: one is made per message, and a frozen dataclass is several times slower to
    build.
    """

    names: tuple[bytes, ...]     # lower-cased names, in the order of `headers`
    hop: frozenset[bytes]        # hop-by-hop names for this message, Connection-named included
    chunked: bool                # the last transfer coding is chunked (RFC 9112 6.3)
    length: int | None           # Content-Length, if given and a number


# Hop-by-hop names for the Connection values nearly every message carries, so that the usual
# case builds no set. `close` names no header, but a header named `close` would be dropped.
_new_tuple = tuple.__new__

_CONNECTION_HOP = {
    b"keep-alive": HOP_BY_HOP,
    b"upgrade": HOP_BY_HOP,
    b"close": HOP_BY_HOP | {b"close"},
}


def scan(headers: Sequence[Header]) -> HeadFacts:
    names: list[bytes] = []
    append = names.append
    hop = HOP_BY_HOP
    last_coding = b""
    length: int | None = None
    for name, value in headers:
        lname = name.lower()
        append(lname)
        if lname == b"connection":
            common = _CONNECTION_HOP.get(value.strip().lower())
            if common is not None:
                hop = common if hop is HOP_BY_HOP else hop | common
            else:
                tokens = {t.strip().lower() for t in value.split(b",")}
                tokens.discard(b"")
                hop = hop | tokens
        elif lname == b"transfer-encoding":
            coding = value.rsplit(b",", 1)[-1].strip().lower()
            if coding:
                last_coding = coding
        elif lname == b"content-length" and length is None:
            try:
                length = int(value.strip())
            except ValueError:
                length = None
    # tuple.__new__ directly: HeadFacts(...) goes through a generated Python __new__.
    return _new_tuple(HeadFacts, (tuple(names), hop, last_coding == b"chunked", length))


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
    # One pass over the headers; a second one only if Connection names other headers to drop
    # (rare: clients send `keep-alive`, `close` or `upgrade`, which are dropped anyway) or a
    # Content-Length comes with a chunked body.
    kept: list[tuple[bytes, bytes, bytes]] = []
    forwarded_for: list[bytes] | None = None
    tokens: set[bytes] | None = None
    upgrade_to = b""
    last_coding = b""
    has_request_start = False
    for name, value in headers:
        lname = name.lower()
        if lname in _REQUEST_SCANNED:
            if lname in HOP_BY_HOP:
                if lname == b"connection":
                    if tokens is None:
                        tokens = set()
                    tokens.update(t.strip().lower() for t in value.split(b","))
                elif lname == b"transfer-encoding":
                    last_coding = value.rsplit(b",", 1)[-1].strip().lower() or last_coding
                elif lname == b"upgrade":
                    upgrade_to = value
                continue
            if lname in _SET_BY_ROUTER:
                if lname == b"x-forwarded-for":
                    if forwarded_for is None:
                        forwarded_for = []
                    forwarded_for.append(value)
                continue
            has_request_start = True      # the one other name scanned: x-request-start
        kept.append((lname, name, value))
    chunked = last_coding == b"chunked"
    drop: set[bytes] | frozenset[bytes] = _NOTHING
    if tokens is not None:
        drop = tokens - HOP_BY_HOP
        drop.discard(b"")
    if chunked:
        # Chunked wins over a length (RFC 9112 6.3): sending both invites request smuggling.
        drop = drop | _CONTENT_LENGTH
    lines = [b"%s %s HTTP/1.1\r\n" % (method, target)]
    for lname, name, value in kept:
        if not drop or lname not in drop:
            lines += (name, b": ", value, b"\r\n")
    if forwarded_for is None:
        lines.append(b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n" % client_ip)
    else:
        forwarded_for.append(client_ip)
        lines.append(
            b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: http\r\n" % b", ".join(forwarded_for)
        )
    if not has_request_start:
        lines.append(b"X-Request-Start: %d\r\n" % now_ms)
    lines.append(b"X-Vcap-Request-Id: %s\r\n%s" % (request_id, endpoint.app_headers))
    if chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    if upgrade and upgrade_to:
        lines.append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % upgrade_to)
    lines.append(b"\r\n")
    return b"".join(lines), chunked


def response_framing(
    status: int, facts: HeadFacts, *, head_request: bool, client_http_10: bool
) -> Framing:
    if head_request or status < 200 or status in (204, 304):
        return Framing.NONE
    if not facts.chunked and facts.length is not None:
        return Framing.LENGTH
    # No usable length: HTTP/1.1 clients get chunks; HTTP/1.0 ones cannot, so the connection
    # closing marks the end.
    return Framing.CLOSE if client_http_10 else Framing.CHUNKED


def build_response_head(
    status: int,
    reason: bytes,
    headers: Sequence[Header],
    facts: HeadFacts,
    *,
    framing: Framing,
    keep_alive: bool,
    client_http_10: bool,
    upgrade: bool = False,
    extra: bytes = b"",
) -> bytes:
    """The head sent to the client. `upgrade`: a 101 answer, which keeps Connection/Upgrade.
    `extra`: header lines the router adds (each ending with CRLF)."""
    hop = facts.hop - _UPGRADE_HEADERS if upgrade else facts.hop
    if framing is not Framing.LENGTH and facts.chunked:
        hop = hop | _CONTENT_LENGTH
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    # A plain loop: on Python 3.11 a comprehension costs a function call of its own.
    for (name, value), lname in zip(headers, facts.names, strict=True):
        if lname not in hop:
            lines += (name, b": ", value, b"\r\n")
    if extra:
        lines.append(extra)
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


# Request ids: a random version-4 UUID drawn once per process, whose last group (48 bits) then
# counts up by one per request. Ids only have to be unique, not secret or unguessable; drawing
# 128 random bits and formatting them per request cost 0.6 us, this 0.15 us.
_ID_COUNTER_END = 1 << 48
_id_prefix = b""        # the first four groups and their dashes: "xxxxxxxx-xxxx-4xxx-yxxx-"
_id_next = 0            # the last group of the next id


def _draw_request_id_base() -> None:
    """A new random base: at import, in a forked child (which must not repeat its parent's
    ids), and when the counter has used up its 48 bits."""
    global _id_prefix, _id_next
    # os.urandom, not the random module: once per process, and independent of how (or
    # whether) the random module was reseeded after a fork.
    bits = (int.from_bytes(os.urandom(16)) & _UUID4_MASK) | _UUID4_BITS
    r = f"{bits:032x}"
    _id_prefix = f"{r[:8]}-{r[8:12]}-{r[12:16]}-{r[16:20]}-".encode()
    _id_next = bits & (_ID_COUNTER_END - 1)


_draw_request_id_base()
os.register_at_fork(after_in_child=_draw_request_id_base)


def new_request_id() -> bytes:
    """A new id in the format of a version 4 UUID, unique per request (see above)."""
    global _id_next
    n = _id_next
    if n >= _ID_COUNTER_END:
        _draw_request_id_base()
        n = _id_next
    _id_next = n + 1
    return b"%s%012x" % (_id_prefix, n)
