"""Syslog drain URLs of an app: where the log aggregator forwards its lines. Pure, no I/O.

A drain is `tcp://HOST:PORT` or `syslog://HOST:PORT` (Cloud Foundry's name for the same thing:
RFC 5424 over TCP, RFC 6587 octet counting). A URL may carry credentials
(`tcp://user:secret@host:514`) because some drain services put a token there; plain syslog over
TCP has no place to send them, so they are kept only to be shown back redacted (`redact`), never
logged.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from lattice.models.errors import Problems

DRAIN_SCHEMES = ("tcp", "syslog")
MAX_DRAINS = 10                 # per app; each is one connection from the aggregator
MAX_URL_LENGTH = 2048
REDACTED = "***"
_HOST_LABEL = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")


@dataclass(frozen=True)
class DrainAddress:
    """Where one drain URL points: what a writer dials."""

    scheme: str
    host: str
    port: int


def redact(url: str) -> str:
    """`url` with any user name and password replaced by `***`: safe to log and to print."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return REDACTED if "@" in url else url
    # The authority ends at the first '/', '?' or '#'; credentials are what precedes its last '@'.
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if "@" not in authority:
        return url
    return f"{scheme}://{REDACTED}@{authority.rpartition('@')[2]}{rest[end:]}"


def _host_problem(host: str) -> str | None:
    if host.startswith("[") or ":" in host:
        try:
            ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return "has an invalid IPv6 address"
        return None
    if len(host) > 253 or not all(_HOST_LABEL.match(label) for label in host.split(".")):
        return f"has an invalid host name {host!r}"
    return None


def drain_url_problem(url: object) -> str | None:
    """Why `url` is not a drain URL, or None. The message never repeats credentials."""
    if not isinstance(url, str) or not url:
        return "must be a non-empty string like tcp://HOST:PORT"
    shown = redact(url)
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if any(c.isspace() or not c.isprintable() for c in url):
        return f"{shown!r} holds spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{shown!r} is not a URL with a numeric port, like tcp://HOST:PORT"
    if parts.scheme.lower() not in DRAIN_SCHEMES:
        schemes = " or ".join(f"{s}://" for s in DRAIN_SCHEMES)
        got = f"{parts.scheme}://" if parts.scheme else "no scheme"
        return f"{shown!r}: the scheme must be {schemes} (syslog over TCP), got {got}"
    problems: list[str] = []
    if not parts.hostname:
        problems.append("has no host")
    else:
        host_problem = _host_problem(parts.hostname)
        if host_problem is not None:
            problems.append(host_problem)
    if port is None:
        problems.append("has no port")
    elif not 1 <= port <= 65535:
        problems.append(f"port {port} is outside 1-65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append("must end after HOST:PORT (no path, query or fragment)")
    if problems:
        return f"{shown!r} " + "; ".join(problems)
    return None


def drain_address(url: str) -> DrainAddress:
    """The address of a URL that `drain_url_problem` accepted; ValueError for any other."""
    problem = drain_url_problem(url)
    if problem is not None:
        raise ValueError(f"not a syslog drain URL: {problem}")
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    if host is None or port is None:      # unreachable: checked above; narrows the types
        raise ValueError(f"not a syslog drain URL: {redact(url)!r} has no host or port")
    return DrainAddress(parts.scheme.lower(), host, port)


def parse_syslog_drains(problems: Problems, value: Any,
                        name: str = "syslog_drains") -> tuple[str, ...]:
    """A list of drain URLs from API input; every bad one is named. Duplicates count once."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(name, "must be a list of URLs like tcp://HOST:PORT")
        return ()
    drains: list[str] = []
    for i, url in enumerate(value):
        problem = drain_url_problem(url)
        if problem is not None:
            problems.add(f"{name}[{i}]", problem)
        elif url not in drains:
            drains.append(url)
    if len(drains) > MAX_DRAINS:
        problems.add(name, f"at most {MAX_DRAINS} drains per app, got {len(drains)}")
    return tuple(drains)
