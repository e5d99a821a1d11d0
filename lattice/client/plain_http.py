"""A small HTTP/1.1 client over a plain socket: what ltc's API calls and event stream need.

Not http.client, for start-up time: importing it costs about 13 ms (its header parsing imports
the email package, and it imports ssl for HTTPS), a sixth of ltc's own start before
`ltc create` sends its request. ltc speaks plain http to its box (Target's URLs are http://;
api_transport refuses any other scheme), so a request is one write of the request line, the
headers and a JSON body of known length, and an answer is a status line, headers and a body
framed as RFC 9112 section 6 says: none (HEAD, 1xx, 204, 304), chunked, Content-Length, or
up to the end of the connection.

Failures are OSErrors, as the socket's: `RemoteDisconnected` (a ConnectionResetError) when the
peer closes without answering, as a kept-alive connection that it closed meanwhile does;
`BadResponse` (a ConnectionError) when the answer is not HTTP/1.x as framed above; TimeoutError
when the peer is silent longer than the connection's timeout. A request that cannot be written
as HTTP (a line break in a header, a space in the path) is a ValueError: nothing is sent.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Mapping

# As http.client: longer lines or more headers than this are no answer of a box.
MAX_LINE = 65536
MAX_HEADERS = 100
# How much of a close-delimited or Content-Length body one read takes at most.
READ_SIZE = 65536
# Statuses whose answers have no body, whatever their headers say (RFC 9112 section 6.3).
NO_BODY_STATUSES = frozenset({204, 304})
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


class BadResponse(ConnectionError):
    """The peer's answer is not HTTP/1.x as this client reads it."""


class RemoteDisconnected(ConnectionResetError):
    """The peer closed the connection without answering."""


class Response:
    """A status line and headers; the body is read from the connection (`Connection.body`).

    A plain class, not a dataclass: setting one up costs about 0.4 ms at import (its methods are
    compiled from source), and ltc imports this module before it sends its first request."""

    __slots__ = ("body_framing", "headers", "length", "reason", "status", "will_close")

    def __init__(self, status: int, reason: str, headers: dict[str, str], will_close: bool,
                 body_framing: str, length: int = 0) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers          # lower-case names; a repeated one's values joined by ", "
        self.will_close = will_close    # the connection cannot carry another request
        self.body_framing = body_framing    # "none", "chunked", "length" or "close"
        self.length = length            # the body's size, for "length"

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason!r}, {self.body_framing})"

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Connection:
    """One HTTP/1.1 connection: requests one after the other, each answer read in full."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host = host          # an address or a name for the system resolver
        self.port = port
        self.timeout_s = timeout_s
        self.sock: socket.socket | None = None
        self._reader: _Reader | None = None

    def connect(self) -> None:
        # socket.getaddrinfo encodes a str host with the idna codec, whose first use imports
        # encodings.idna, stringprep and unicodedata (about 1.5 ms); ASCII as bytes needs none.
        host: str | bytes = self.host.encode("ascii") if self.host.isascii() else self.host
        sock = socket.create_connection((host, self.port), self.timeout_s)  # type: ignore[arg-type]
        # A request is one write, but the answer must not wait on Nagle's delay either.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self._reader = _Reader(sock)

    def close(self) -> None:
        sock, reader, self.sock, self._reader = self.sock, self._reader, None, None
        if reader is not None:
            reader.close()      # else the socket's descriptor stays open while its file does
        if sock is not None:
            sock.close()

    def request(self, method: str, path: str, headers: Mapping[str, str],
                body: bytes | None = None) -> Response:
        """Send a request and read its answer's status line and headers (connecting first
        if need be); the caller then reads the body with `body` or `lines`."""
        message = request_bytes(method, path, headers, body)
        if self.sock is None:
            self.connect()
        assert self.sock is not None, "connect() sets it or raises"
        assert self._reader is not None, "connect() sets it or raises"
        self.sock.sendall(message)
        return read_response_head(self._reader, method)

    def body(self, response: Response) -> bytes:
        """The whole body of `response`, the answer just read."""
        return b"".join(self.pieces(response))

    def lines(self, response: Response) -> Iterator[bytes]:
        """The body of `response`, line by line (each with its b"\\n") as it arrives: for a
        stream of events. A last line without b"\\n" comes out as it is."""
        pending = b""
        for piece in self.pieces(response):
            pending += piece
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
            if len(pending) > MAX_LINE:     # no stream of events has such lines: not one
                raise BadResponse(f"a line of the answer is longer than {MAX_LINE} bytes")
        if pending:
            yield pending

    def pieces(self, response: Response) -> Iterator[bytes]:
        """The body of `response` in the pieces it arrives in."""
        assert self._reader is not None, "connect() first"
        reader = self._reader
        if response.body_framing == "chunked":
            yield from reader.chunks()
        elif response.body_framing == "length":
            left = response.length
            while left:
                piece = reader.read_some(min(left, READ_SIZE))
                if not piece:
                    raise BadResponse(f"the answer ended {left} bytes short of its "
                                      f"Content-Length ({response.length})")
                left -= len(piece)
                yield piece
        elif response.body_framing == "close":
            while piece := reader.read_some(READ_SIZE):
                yield piece


def request_bytes(method: str, path: str, headers: Mapping[str, str],
                  body: bytes | None) -> bytes:
    """The request as written on the wire; a ValueError for what HTTP cannot carry."""
    if not method.isalpha() or not method.isascii():
        raise ValueError(f"invalid HTTP method {method!r}")
    if not path.startswith("/") or not path.isascii() or any(c <= " " or c == "\x7f"
                                                             for c in path):
        raise ValueError(f"invalid request path {path!r}: ASCII without spaces or controls")
    lines = [f"{method} {path} HTTP/1.1"]
    for name, value in headers.items():
        if not _is_token(name):
            raise ValueError(f"invalid header name {name!r}")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"invalid value of header {name}: {value!r} has a line break")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def read_response_head(reader: _Reader, method: str) -> Response:
    """Read a status line and headers (passing over 1xx interim answers) and tell how the
    body is framed."""
    while True:
        line = reader.line()
        if not line:
            raise RemoteDisconnected("the peer closed the connection without answering")
        version, status, reason = _status_line(line)
        headers = _headers(reader)
        if not 100 <= status < 200 or status == 101:
            break
    connection_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.0":
        will_close = "keep-alive" not in connection_tokens
    else:
        will_close = "close" in connection_tokens
    if method == "HEAD" or status in NO_BODY_STATUSES or 100 <= status < 200:
        return Response(status, reason, headers, will_close, "none")
    coding = headers.get("transfer-encoding")
    if coding is not None:
        if coding.rsplit(",", 1)[-1].strip().lower() == "chunked":
            return Response(status, reason, headers, will_close, "chunked")
        return Response(status, reason, headers, True, "close")
    length = headers.get("content-length")
    if length is not None:
        return Response(status, reason, headers, will_close, "length", _content_length(length))
    return Response(status, reason, headers, True, "close")


def _status_line(line: bytes) -> tuple[str, int, str]:
    text = line.decode("latin-1").rstrip("\r\n")
    version, _, rest = text.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.0", "HTTP/1.1") or len(code) != 3 or not code.isdigit() \
            or code[0] == "0":
        raise BadResponse(f"not an HTTP/1.x status line: {text[:120]!r}")
    return version, int(code), reason.strip()


def _headers(reader: _Reader) -> dict[str, str]:
    headers: dict[str, str] = {}
    last: str | None = None
    for _ in range(MAX_HEADERS + 1):
        line = reader.line()
        if not line:
            raise BadResponse("the answer ended within its headers")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return headers
        if text[0] in " \t" and last is not None:   # an obsolete folded line continues
            headers[last] += " " + text.strip()
            continue
        name, colon, value = text.partition(":")
        if not colon or not _is_token(name):
            raise BadResponse(f"not a header line: {text[:120]!r}")
        last = name.lower()
        value = value.strip()
        headers[last] = f"{headers[last]}, {value}" if last in headers else value
    raise BadResponse(f"more than {MAX_HEADERS} headers")


def _content_length(text: str) -> int:
    # A repeated Content-Length is acceptable when every copy says the same (RFC 9110 8.6).
    values = {v.strip() for v in text.split(",")}
    if len(values) != 1 or not (value := values.pop()).isdigit() or not value.isascii():
        raise BadResponse(f"invalid Content-Length {text!r}")
    return int(value)


def _is_token(text: str) -> bool:
    return bool(text) and text.isascii() and all(c.isalnum() or c in "!#$%&'*+-.^_`|~"
                                                 for c in text)


class _Reader:
    """Buffered reads from a socket: lines of the head, chunks and pieces of a body."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rb")

    def line(self) -> bytes:
        line = self._file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise BadResponse(f"a line of the answer is longer than {MAX_LINE} bytes")
        return line

    def read_some(self, size: int) -> bytes:
        """Up to `size` bytes, as soon as any are there; b"" at the end of the connection."""
        return self._file.read1(size)

    def close(self) -> None:
        self._file.close()

    def read_exactly(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise BadResponse(f"the answer ended {size - len(data)} bytes short of a chunk")
        return data

    def chunks(self) -> Iterator[bytes]:
        """The data of a chunked body, one chunk at a time; the trailer is read and dropped."""
        while True:
            line = self.line()
            if not line:
                raise BadResponse("the answer ended within its chunked body")
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or not all(c in HEX_DIGITS for c in size_text):
                raise BadResponse(f"not a chunk size line: {line[:120]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            data = self.read_exactly(size)
            if self.read_exactly(2) != b"\r\n":
                raise BadResponse("a chunk does not end with CRLF")
            yield data
        while self.line().rstrip(b"\r\n"):
            pass    # trailer fields: none that ltc reads
