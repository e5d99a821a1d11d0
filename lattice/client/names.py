"""Name resolution for the box's host names, without wildcard DNS.

The router tells apps and services apart by the Host header alone, so ltc must send
`receptor.<domain>` or `doppler.<domain>` while connecting to the router's address. Names that
need no DNS are resolved here; the request keeps its real name in the Host header:

- `localhost` and `*.localhost` are loopback (RFC 6761); glibc here does not resolve them.
- `*.nip.io`, `*.xip.io`, `*.sslip.io` embed their address: `10.0.0.1.nip.io`,
  `app.10.0.0.1.nip.io`, `10-0-0-1.nip.io`, `app-10-0-0-1.nip.io`. Those services cannot be
  reached from every machine, and they answer with the embedded address anyway.
- IP literals are themselves. Anything else goes to the system resolver.

The rules live here, apart from the aiohttp resolver (resolve.py) that applies them, so that
ltc's plain API calls (api_transport.py) use them without importing aiohttp.
"""

from __future__ import annotations

import ipaddress
import re

LOOPBACK = "127.0.0.1"
WILDCARD_DNS_SUFFIXES = ("nip.io", "xip.io", "sslip.io")
_DASHED_IPV4 = re.compile(r"(?:^|-)(\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3})$")


def _ipv4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text))
    except ipaddress.AddressValueError:
        return None


def _embedded_ipv4(prefix: str) -> str | None:
    """The address a wildcard-DNS name carries before its suffix, if any."""
    labels = prefix.split(".")
    if len(labels) >= 4:
        dotted = _ipv4(".".join(labels[-4:]))
        if dotted is not None:
            return dotted
    dashed = _DASHED_IPV4.search(labels[-1])
    return _ipv4(dashed.group(1).replace("-", ".")) if dashed else None


def static_address(host: str) -> str | None:
    """The address `host` stands for without asking DNS, or None when DNS must answer."""
    name = host.rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass  # not an IP literal: a name, handled below
    if name == "localhost" or name.endswith(".localhost"):
        return LOOPBACK
    for suffix in WILDCARD_DNS_SUFFIXES:
        if name.endswith("." + suffix):
            return _embedded_ipv4(name[: -len(suffix) - 1])
    return None
