"""Which instance a request must or should reach: instance targeting and sticky sessions.

    X-Cf-App-Instance: APP_GUID:INDEX    must reach that instance (400 if malformed or unknown)
    Cookie: JSESSIONID=..; __VCAP_ID__=G  should reach instance G while it is in the pool

When a backend sets `JSESSIONID`, the router adds `__VCAP_ID__=<instance_guid>` to the same
response, with the session cookie's lifetime and security attributes (gorouter does the same),
so the browser sends both back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

VCAP_ID = b"__VCAP_ID__"
SESSION_COOKIE = b"JSESSIONID"
_APP_INSTANCE = re.compile(rb"([A-Za-z0-9_.-]+):(0|[1-9][0-9]{0,8})")
# Attributes of the session cookie that the __VCAP_ID__ cookie copies.
_COPIED_ATTRIBUTES = (b"max-age", b"expires", b"secure", b"samesite", b"partitioned")


def parse_app_instance(value: bytes) -> tuple[str, int] | None:
    """`APP_GUID:INDEX` -> (guid, index); None if the header is malformed."""
    match = _APP_INSTANCE.fullmatch(value.strip())
    if match is None:
        return None
    return match.group(1).decode(), int(match.group(2))


def sticky_instance(cookie_headers: Sequence[bytes]) -> str | None:
    """The instance guid in `__VCAP_ID__`, if the request carries it *and* `JSESSIONID`."""
    vcap_id: bytes | None = None
    has_session = False
    for header in cookie_headers:
        for pair in header.split(b";"):
            name, _, value = pair.strip().partition(b"=")
            if name == VCAP_ID and value:
                vcap_id = value
            elif name == SESSION_COOKIE:
                has_session = True
    if vcap_id is None or not has_session:
        return None
    return vcap_id.decode("latin-1")


def session_started(set_cookie_values: Sequence[bytes]) -> bytes | None:
    """The `Set-Cookie` value that starts a session (`JSESSIONID=...`), if the response has one."""
    for value in set_cookie_values:
        if value.lstrip().startswith(SESSION_COOKIE + b"="):
            return value
    return None


def vcap_cookie_header(instance_guid: str, session_cookie: bytes) -> bytes:
    """The `Set-Cookie: __VCAP_ID__=...` header line sent beside the session cookie."""
    parts = [VCAP_ID + b"=" + instance_guid.encode(), b"Path=/", b"HttpOnly"]
    for attribute in session_cookie.split(b";")[1:]:
        attribute = attribute.strip()
        if attribute.partition(b"=")[0].strip().lower() in _COPIED_ATTRIBUTES:
            parts.append(attribute)
    return b"Set-Cookie: " + b"; ".join(parts) + b"\r\n"
