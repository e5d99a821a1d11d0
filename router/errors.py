"""The router's errors: on the wire in gorouter's format, and in the code as one hierarchy.

On the wire, every error the router itself answers has a body `"<code> <Reason>: <message>"`
and a stable code in the `X-Cf-RouterError` header, so clients and tests can tell a router
error from an app's own 404 or 502:

    unknown_route      404  no route or service has this host name
    no_endpoints       503  the route exists but has no RUNNING instance
    endpoint_failure   502  the backend could not be reached or failed mid-request
    empty_host         400  the request has no Host header
    bad_request        400  the request could not be parsed
    invalid_cf_app_instance_header
                       400  X-Cf-App-Instance is not APP_GUID:INDEX
    unknown_route      400  X-Cf-App-Instance names an instance the route does not have

In the code:

    RouterError
    └── DialError      a backend could not be connected to; nothing was sent to it
"""

from __future__ import annotations

from dataclasses import dataclass

from router.pool import Endpoint


@dataclass(frozen=True)
class ErrorKind:
    status: int
    reason: str
    code: str


UNKNOWN_ROUTE = ErrorKind(404, "Not Found", "unknown_route")
NO_ENDPOINTS = ErrorKind(503, "Service Unavailable", "no_endpoints")
ENDPOINT_FAILURE = ErrorKind(502, "Bad Gateway", "endpoint_failure")
EMPTY_HOST = ErrorKind(400, "Bad Request", "empty_host")
BAD_REQUEST = ErrorKind(400, "Bad Request", "bad_request")
INVALID_APP_INSTANCE = ErrorKind(400, "Bad Request", "invalid_cf_app_instance_header")
UNKNOWN_INSTANCE = ErrorKind(400, "Bad Request", "unknown_route")


def error_body(kind: ErrorKind, message: str) -> bytes:
    # gorouter writes this with Go's http.Error, which ends the body with a newline.
    return f"{kind.status} {kind.reason}: {message}\n".encode()


def error_response(kind: ErrorKind, message: str, *, keep_alive: bool) -> bytes:
    body = error_body(kind, message)
    connection = b"" if keep_alive else b"Connection: close\r\n"
    return b"".join(
        (
            f"HTTP/1.1 {kind.status} {kind.reason}\r\n".encode(),
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"X-Content-Type-Options: nosniff\r\n",
            f"X-Cf-RouterError: {kind.code}\r\n".encode(),
            f"Content-Length: {len(body)}\r\n".encode(),
            connection,
            b"\r\n",
            body,
        )
    )


def unknown_route_message(host: str) -> str:
    return f"Requested route ('{host}') does not exist."


def no_endpoints_message(host: str) -> str:
    return f"Requested route ('{host}') has no available endpoints."


def not_ready_message(host: str, seconds: float) -> str:
    return (f"Requested route ('{host}') has no available endpoints: the app is starting "
            f"(scaled to zero) and did not become ready within {seconds:g} s.")


def invalid_app_instance_message(value: str) -> str:
    return f"Invalid X-CF-App-Instance Header {value!r}: expected APP_GUID:INDEX."


def unknown_instance_message(value: str) -> str:
    return f"Requested instance ('{value}') does not exist for this route."


ENDPOINT_FAILURE_MESSAGE = "Registered endpoint failed to handle the request."
EMPTY_HOST_MESSAGE = "Request had empty Host header"


class RouterError(Exception):
    """Base of the errors the router raises."""


class DialError(RouterError):
    """Connecting to a backend failed (refused, unreachable or timed out); nothing was sent."""

    def __init__(self, endpoint: Endpoint, reason: str) -> None:
        super().__init__(f"cannot connect to {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
