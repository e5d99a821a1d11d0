"""Every error the ltc client raises; aiohttp's are translated at the boundary (`raise ... from`).

    ClientError
    ├── InvalidInput        bad flags or arguments, refused before any request; lists every field
    ├── ConfigError         the config file cannot be read or written
    ├── BadTarget           no target set, the target cannot be reached, or it is not a lattice
    ├── ProtocolError       the answer does not follow the API contract
    ├── ApiError            the API answered with an error (status, type, message, fields)
    │   ├── InvalidRequest      400: one or more fields are invalid (all of them listed)
    │   ├── Unauthorized        401: the box requires credentials, none or wrong ones sent
    │   ├── AppNotFound         404: no app by that name
    │   └── AppAlreadyExists    409: an app by that name exists
    ├── LogStreamFailed     the log stream could not be opened or broke
    └── WaitFailed          the app did not reach the wanted state
        ├── PlacementFailed     an instance could not be placed on any cell
        ├── InstancesCrashed    instances crashed repeatedly
        └── WaitTimedOut        the deadline passed first
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lattice.models import FieldError


class ClientError(Exception):
    """Base of every error the client raises."""


class InvalidInput(ClientError):
    def __init__(self, fields: list[FieldError]) -> None:
        super().__init__("; ".join(str(f) for f in fields))
        self.fields = fields


class ConfigError(ClientError):
    """The config file cannot be read or written (permissions, a directory in the way, bad JSON)."""


class BadTarget(ClientError):
    """No target is set, the target does not answer, or what answers is not a lattice API."""


class ProtocolError(ClientError):
    """The API answered something the contract does not allow (not JSON, missing fields)."""


class ApiError(ClientError):
    """An error answer of the API: `{"error": {"type", "message", "fields"}}`."""

    def __init__(self, status: int, type_: str, message: str, fields: list[FieldError]) -> None:
        super().__init__(f"{type_}: {message}" if message else type_)
        self.status = status
        self.type = type_
        self.message = message
        self.fields = fields

    @staticmethod
    def from_body(status: int, body: Any) -> ApiError:
        """Build the most specific error from a decoded error body; ProtocolError if malformed."""
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("type"), str):
            raise ProtocolError(f"the API answered {status} without an error object: {body!r}")
        fields = [
            FieldError(str(f.get("field", "")), str(f.get("message", "")))
            for f in error.get("fields") or []
            if isinstance(f, dict)
        ]
        kind = _BY_TYPE.get(error["type"], ApiError)
        return kind(status, error["type"], str(error.get("message", "")), fields)


class InvalidRequest(ApiError):
    pass


class Unauthorized(ApiError):
    pass


class AppNotFound(ApiError):
    pass


class AppAlreadyExists(ApiError):
    pass


_BY_TYPE: dict[str, type[ApiError]] = {
    "InvalidRequest": InvalidRequest,
    "InvalidJSON": InvalidRequest,
    "Unauthorized": Unauthorized,
    "DesiredLRPNotFound": AppNotFound,
    "DesiredLRPAlreadyExists": AppAlreadyExists,
}


class LogStreamFailed(ClientError):
    """The log aggregator could not be reached, refused the stream, or the stream broke."""


class WaitFailed(ClientError):
    """The app did not reach the wanted number of RUNNING instances."""


@dataclass(frozen=True)
class InstanceProblem:
    """One instance's reason for failing a wait: its placement error or its crash reason."""

    index: int
    reason: str
    crash_count: int = 0


class PlacementFailed(WaitFailed):
    def __init__(self, app: str, problems: list[InstanceProblem]) -> None:
        super().__init__(f"{app}: " + "; ".join(f"[{p.index}] {p.reason}" for p in problems))
        self.app = app
        self.problems = problems


class InstancesCrashed(WaitFailed):
    def __init__(self, app: str, problems: list[InstanceProblem]) -> None:
        super().__init__(f"{app}: " + "; ".join(f"[{p.index}] {p.reason}" for p in problems))
        self.app = app
        self.problems = problems


class WaitTimedOut(WaitFailed):
    def __init__(self, app: str, running: int, desired: int, timeout_s: float) -> None:
        super().__init__(f"{app}: {running}/{desired} running after {timeout_s:g} s")
        self.app = app
        self.running = running
        self.desired = desired
        self.timeout_s = timeout_s
