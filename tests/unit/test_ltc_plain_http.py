"""ltc's HTTP/1.1 client: the requests it writes (pure). Its answers are read from real sockets
in tests/integration/test_ltc_plain_http.py."""

from __future__ import annotations

import pytest

from lattice.client.plain_http import request_bytes


def test_a_post_is_one_message_with_its_length() -> None:
    assert request_bytes("POST", "/v1/desired_lrps", {"Host": "receptor.box:8080"}, b'{"a":1}') \
        == (b"POST /v1/desired_lrps HTTP/1.1\r\nHost: receptor.box:8080\r\n"
            b"Content-Length: 7\r\n\r\n{\"a\":1}")


def test_a_get_has_no_length_and_a_bodiless_put_says_zero() -> None:
    assert request_bytes("GET", "/v1/info?x=1", {"Accept": "application/json"}, None) \
        == b"GET /v1/info?x=1 HTTP/1.1\r\nAccept: application/json\r\n\r\n"
    assert request_bytes("PUT", "/v1/x", {}, None) \
        == b"PUT /v1/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"


def test_header_values_go_out_as_latin_1() -> None:
    assert b"X-Name: caf\xe9\r\n" in request_bytes("GET", "/", {"X-Name": "caf\u00e9"}, None)


@pytest.mark.parametrize(("method", "path", "headers", "problem"), [
    ("GET", "/a b", {}, "invalid request path '/a b'"),
    ("GET", "/a\r\nX: y", {}, "invalid request path"),
    ("GET", "v1/info", {}, "invalid request path 'v1/info'"),
    ("GET", "/caf\u00e9", {}, "invalid request path"),
    ("GE T", "/", {}, "invalid HTTP method 'GE T'"),
    ("GET", "/", {"X-A": "1\r\nX-Injected: 2"}, "invalid value of header X-A"),
    ("GET", "/", {"X-A": "1\n"}, "invalid value of header X-A"),
    ("GET", "/", {"Bad Name": "1"}, "invalid header name 'Bad Name'"),
    ("GET", "/", {"": "1"}, "invalid header name ''"),
])
def test_what_http_cannot_carry_is_refused_before_anything_is_sent(
    method: str, path: str, headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem.replace("?", r"\?")):
        request_bytes(method, path, headers, None)
