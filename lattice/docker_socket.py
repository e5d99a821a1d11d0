"""Where the Docker engine's Unix socket is, for the components that speak its HTTP API on it
directly with aiohttp (the cell's event and log streams, the brain's image check)."""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_SOCKET = "/var/run/docker.sock"
# The host part of the URL is ignored on a Unix socket; it only has to be a valid name.
BASE_URL = "http://docker"


def unix_socket(environ: Mapping[str, str]) -> str | None:
    """The engine's Unix socket as the Docker SDK would find it; None when DOCKER_HOST names
    an engine reached otherwise (tcp://, ssh://)."""
    host = environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://") and len(host) > len("unix://"):
        return host[len("unix://"):]
    return None
