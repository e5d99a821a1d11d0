"""The router's own error answers, in gorouter's format."""

from __future__ import annotations

import httptools
import pytest

from router import errors
from router.errors import ErrorKind


class Parsed:
    def __init__(self, raw: bytes) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.body = b""
        self.parser = httptools.HttpResponseParser(self)
        self.parser.feed_data(raw)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body += body


@pytest.mark.parametrize(
    ("kind", "message", "status", "code", "body"),
    [
        (errors.UNKNOWN_ROUTE, errors.unknown_route_message("web.x"), 404, b"unknown_route",
         b"404 Not Found: Requested route ('web.x') does not exist.\n"),
        (errors.NO_ENDPOINTS, errors.no_endpoints_message("web.x"), 503, b"no_endpoints",
         b"503 Service Unavailable: Requested route ('web.x') has no available endpoints.\n"),
        (errors.ENDPOINT_FAILURE, errors.ENDPOINT_FAILURE_MESSAGE, 502, b"endpoint_failure",
         b"502 Bad Gateway: Registered endpoint failed to handle the request.\n"),
        (errors.EMPTY_HOST, errors.EMPTY_HOST_MESSAGE, 400, b"empty_host",
         b"400 Bad Request: Request had empty Host header\n"),
    ],
)
def test_error_response_format(kind: ErrorKind, message: str, status: int, code: bytes,
                               body: bytes) -> None:
    parsed = Parsed(errors.error_response(kind, message, keep_alive=True))
    assert parsed.parser.get_status_code() == status
    assert parsed.headers[b"x-cf-routererror"] == code
    assert parsed.headers[b"content-length"] == str(len(body)).encode()
    assert parsed.body == body
    assert b"connection" not in parsed.headers


def test_error_response_can_close() -> None:
    parsed = Parsed(errors.error_response(errors.BAD_REQUEST, "nope", keep_alive=False))
    assert parsed.headers[b"connection"] == b"close"
    assert parsed.body == b"400 Bad Request: nope\n"
