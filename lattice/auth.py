"""The box's credentials: HTTP Basic authentication shared by every component that serves.

A box started with credentials (`LATTICE_USERNAME` and `LATTICE_PASSWORD`, or flags that set
them) answers 401 to any request without them, except health checks. The password never
appears in a repr, a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only the servers need aiohttp here; `ltc` reads Credentials and must not pay its import.
    from aiohttp import web
    from aiohttp.typedefs import Middleware

USERNAME_ENV = "LATTICE_USERNAME"
PASSWORD_ENV = "LATTICE_PASSWORD"  # noqa: S105 - the name of a variable, not a password
REALM = "lattice"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        """The value of an Authorization header carrying these credentials."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"

    def matches(self, authorization: str | None) -> bool:
        """Constant-time check of an Authorization header against these credentials."""
        import hmac  # only the servers check credentials; ltc, which only sends them, skips it

        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, sep, password = decoded.partition(":")
        if not sep:
            return False
        # Compare both parts even when the first differs, so timing says nothing.
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return user_ok and password_ok


def from_env(environ: dict[str, str] | None = None) -> Credentials | None:
    """Credentials from LATTICE_USERNAME/LATTICE_PASSWORD; None when the box is open."""
    env = os.environ if environ is None else environ
    username, password = env.get(USERNAME_ENV, ""), env.get(PASSWORD_ENV, "")
    if not username and not password:
        return None
    if not username or not password:
        raise ValueError(f"set both {USERNAME_ENV} and {PASSWORD_ENV}, or neither")
    return Credentials(username, password)


Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


def unauthorized_body() -> dict[str, object]:
    return {"error": {"type": "Unauthorized", "message": "credentials are required"}}


def basic_auth_middleware(
    credentials: Credentials | None, *, open_paths: Iterable[str] = ("/health",)
) -> Middleware:
    """aiohttp middleware: 401 without the box's credentials (no-op for an open box)."""
    from aiohttp import web

    exempt = frozenset(open_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if credentials is None or request.path in exempt:
            return await handler(request)
        if not credentials.matches(request.headers.get("Authorization")):
            return web.json_response(
                unauthorized_body(), status=401,
                headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
            )
        return await handler(request)

    return middleware
