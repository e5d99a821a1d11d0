"""ltc's HTTP/1.1 client (lattice/client/plain_http.py) reading answers from real loopback
sockets: every framing a server may use, kept-alive connections, and the broken answers it must
refuse with an OSError that names what is wrong. The answers are written byte for byte by a
small TCP server, so each case is exactly the one named; test_ltc_transport.py runs the same
client against aiohttp's server."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from lattice.client.api_transport import HttpTransport
from lattice.client.errors import BadTarget
from lattice.client.plain_http import BadResponse, Connection, RemoteDisconnected
from lattice.client.receptor import BlockingReceptorClient

pytestmark = pytest.mark.integration

HOLD = b"<hold>"     # an "answer" that answers nothing: the server keeps the connection silent
CLOSE = b"<close>"   # one that closes the connection instead of answering


class CannedServer:
    """Answers the requests of each connection, in turn, with the next canned answers; closes
    a connection once its answers are written (or, with `keep_open`, once the client does)."""

    def __init__(self, *connections: list[bytes], keep_open: bool = False) -> None:
        self.requests: list[bytes] = []
        self._connections = list(connections)
        self._keep_open = keep_open
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(10)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.failure: BaseException | None = None

    def _serve(self) -> None:
        try:
            for answers in self._connections:
                peer, _ = self._listener.accept()
                with peer:
                    peer.settimeout(10)
                    self._converse(peer, answers)
        except BaseException as exc:  # noqa: BLE001 - reported by the test through `failure`
            self.failure = exc

    def _converse(self, peer: socket.socket, answers: list[bytes]) -> None:
        buffered = b""
        for answer in answers:
            request, buffered = read_request(peer, buffered)
            if request is None:
                return
            self.requests.append(request)
            if answer is CLOSE:
                return
            if answer is HOLD:
                break
            peer.sendall(answer)
        if self._keep_open or HOLD in answers:
            while peer.recv(4096):
                pass    # until the client closes its end

    def __enter__(self) -> CannedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the canned server did not finish"
        assert self.failure is None, self.failure


def read_request(peer: socket.socket, buffered: bytes) -> tuple[bytes | None, bytes]:
    """One request (head and Content-Length body) and what was read past it."""
    while b"\r\n\r\n" not in buffered:
        data = peer.recv(4096)
        if not data:
            return None, b""
        buffered += data
    head, _, rest = buffered.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(found.group(1)) if found else 0
    while len(rest) < length:
        data = peer.recv(4096)
        assert data, "the client closed within its body"
        rest += data
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


@contextlib.contextmanager
def connected(server: CannedServer, timeout_s: float = 5.0) -> Iterator[Connection]:
    connection = Connection("127.0.0.1", server.port, timeout_s)
    connection.connect()
    try:
        yield connection
    finally:
        connection.close()


def exchange(connection: Connection, method: str = "GET") -> tuple[int, bytes, bool]:
    response = connection.request(method, "/x", {"Host": "box"})
    return response.status, connection.body(response), response.will_close


def test_answers_with_a_length_share_one_connection() -> None:
    with CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                       b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}"]) as server, \
            connected(server) as connection:
        assert exchange(connection) == (200, b"hello", False)
        response = connection.request("POST", "/y", {"Host": "box"}, b'{"a": 1}')
        assert (response.status, response.reason) == (201, "Created")
        assert connection.body(response) == b"{}"
    assert server.requests == [b"GET /x HTTP/1.1\r\nHost: box\r\n\r\n",
                               b"POST /y HTTP/1.1\r\nHost: box\r\nContent-Length: 8\r\n\r\n"
                               b'{"a": 1}']


def test_a_chunked_answer_is_joined_and_the_connection_goes_on() -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\nA\r\n, chunked!\r\n0\r\nX-Trailer: 1\r\n\r\n")
    with CannedServer([chunked, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]) as server, \
            connected(server) as connection:
        assert exchange(connection) == (200, b"hello, chunked!", False)
        assert exchange(connection) == (200, b"ok", False)


def test_an_answer_without_a_length_runs_to_the_end_of_the_connection() -> None:
    with CannedServer([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"]) \
            as server, connected(server) as connection:
        assert exchange(connection) == (200, b"all of it", True)


@pytest.mark.parametrize(("answer", "will_close"), [
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", False),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", False),
])
def test_whether_the_connection_can_carry_another_request(answer: bytes,
                                                          will_close: bool) -> None:
    with CannedServer([answer]) as server, connected(server) as connection:
        assert exchange(connection) == (200, b"", will_close)


def test_answers_that_have_no_body_whatever_their_headers_say() -> None:
    with CannedServer([b"HTTP/1.1 204 No Content\r\n\r\n",
                       b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",    # to a HEAD
                       b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                       b"\r\n!"]) as server, connected(server) as connection:
        assert exchange(connection) == (204, b"", False)
        assert exchange(connection, "HEAD") == (200, b"", False)
        assert exchange(connection) == (200, b"!", False)     # the interim answer passed over


def test_headers_are_found_whatever_their_case_repeated_or_folded() -> None:
    with CannedServer([b"HTTP/1.1 502 Bad Gateway\r\nX-Cf-RouterError: endpoint_failure\r\n"
                       b"Vary: a\r\nvary: b\r\nX-Long: one\r\n two\r\nContent-Length: 0\r\n\r\n"]) \
            as server, connected(server) as connection:
        response = connection.request("GET", "/", {})
        assert response.header("x-cf-routererror") == "endpoint_failure"
        assert response.header("VARY") == "a, b"
        assert response.header("X-Long") == "one two"
        assert response.header("X-Missing") is None


def test_a_stream_comes_out_line_by_line_across_chunks() -> None:
    stream = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"2\r\nab\r\n4\r\nc\nde\r\n2\r\nf\n\r\n3\r\nend\r\n0\r\n\r\n")
    with CannedServer([stream]) as server, connected(server) as connection:
        response = connection.request("GET", "/v1/events", {})
        assert list(connection.lines(response)) == [b"abc\n", b"def\n", b"end"]


def test_a_stream_line_without_end_is_refused_past_the_line_limit() -> None:
    endless = b"x" * 70000
    with CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(endless),
                                                                         endless)]) as server, \
            connected(server) as connection, \
            pytest.raises(BadResponse, match="a line of the answer is longer than 65536 bytes"):
        list(connection.lines(connection.request("GET", "/v1/events", {})))


@pytest.mark.parametrize(("answer", "problem"), [
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not an HTTP/1.x status line: 'SSH-2.0-OpenSSH_9.2'"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "not an HTTP/1.x status line: 'HTTP/1.1 2000 OK'"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "not a header line: 'no colon here'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "the answer ended within its headers"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length '-1'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     "invalid Content-Length '1, 2'"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ended 5 bytes short of its "
                                                            "Content-Length (10)"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not a chunk size line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
     "not a chunk size line"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
     "ended 2 bytes short of a chunk"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello",
     "ended within its chunked body|short of a chunk"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 101 + b"\r\n", "more than 100 headers"),
])
def test_a_broken_answer_is_a_connection_error_naming_the_problem(answer: bytes,
                                                                  problem: str) -> None:
    with CannedServer([answer]) as server, connected(server) as connection, \
            pytest.raises(BadResponse, match=problem.replace("(", r"\(").replace(")", r"\)")):
        exchange(connection)
    assert issubclass(BadResponse, ConnectionError)


def test_a_peer_that_closes_without_answering_is_told_apart() -> None:
    with CannedServer([CLOSE]) as server, connected(server) as connection, \
            pytest.raises(RemoteDisconnected, match="closed the connection without answering"):
        exchange(connection)


def test_a_silent_peer_times_out() -> None:
    with CannedServer([HOLD]) as server, connected(server, timeout_s=0.2) as connection:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            exchange(connection)
        assert time.monotonic() - started < 5


def test_the_transport_reports_a_non_http_answer_as_a_bad_target() -> None:
    """What ltc says when something else listens on the box's port."""
    with CannedServer([b"SSH-2.0-OpenSSH_9.2\r\n"]) as server:
        transport = HttpTransport()
        api = BlockingReceptorClient(transport, f"http://receptor.box.localhost:{server.port}")
        try:
            with pytest.raises(BadTarget, match=r"cannot reach http://receptor\.box\.localhost:"
                                                r"\d+: not an HTTP/1\.x status line"):
                api.actual_lrps("web")
        finally:
            transport.close()


def test_the_transport_sends_a_post_again_on_no_stale_connection() -> None:
    """A POST is not idempotent: when its kept-alive connection turns out closed, it fails
    rather than being sent twice; a GET is sent again on a new connection."""
    with CannedServer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"],
                      [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"]) as server:
        transport = HttpTransport()
        url = f"http://receptor.box.localhost:{server.port}/v1/x"
        try:
            assert transport.request_blocking("GET", url).text == "{}"
            # The server closed the first connection after its one answer.
            with pytest.raises(ConnectionError):
                transport.request_blocking("POST", url, {"a": 1})
            assert transport.request_blocking("GET", url).text == "[]"
        finally:
            transport.close()
    assert [r.split(b" ", 1)[0] for r in server.requests] == [b"GET", b"GET"]
