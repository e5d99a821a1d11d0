"""What the brain learns about an image before accepting an app: does it exist, which ports.

No registry may be reachable, so images live in the cells' Docker engines. On one host the
brain asks the same engine. A brain with no Docker engine cannot check, and says so: the cell
then reports a missing image as the instance's crash reason.

The question is one `GET /images/NAME/json`, on every create. Over the engine's Unix socket it
is asked with aiohttp, on the event loop: the Docker SDK is blocking, and its call from a thread
took ~2 ms in the brain (the thread hop and the GIL shared with etcd's gRPC client) against
~0.5 ms. An engine reached otherwise (DOCKER_HOST=tcp://..., maybe with TLS) is asked through
the SDK, which knows those set-ups, in a thread.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import docker
import docker.errors
import structlog

from lattice.docker_socket import BASE_URL, unix_socket

log = structlog.get_logger("lattice.brain.images")

REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ImageFacts:
    exists: bool | None            # None: could not be checked (no Docker engine reachable)
    exposed_ports: tuple[int, ...] = ()


def _exposed_ports(attrs: Mapping[str, object]) -> tuple[int, ...]:
    config = attrs.get("Config") or {}
    exposed = config.get("ExposedPorts") if isinstance(config, dict) else None
    ports = []
    for spec in exposed or {}:
        number, _, protocol = str(spec).partition("/")
        if protocol in ("", "tcp") and number.isdigit():
            ports.append(int(number))
    # Docker reports a map, whose order carries no meaning; the lowest port is "the first".
    return tuple(sorted(ports))


class ImageInspector:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._socket = unix_socket(self._environ)
        self._session: aiohttp.ClientSession | None = None
        self._client: docker.DockerClient | None = None

    async def inspect(self, image: str) -> ImageFacts:
        if any(part in (".", "..") for part in image.split("/")):
            # No image reference has such a path segment, and in the request's URL it would
            # climb out of /images/ (to another endpoint of the engine).
            return ImageFacts(exists=False)
        if self._socket is None:
            return await asyncio.to_thread(self._inspect_with_sdk, image)
        return await self._inspect_on_socket(self._socket, image)

    async def _inspect_on_socket(self, socket: str, image: str) -> ImageFacts:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=socket),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            )
        # Quoted as the SDK does: a name's '/' and ':' stay, anything else is escaped.
        url = f"{BASE_URL}/images/{quote(image, safe='/:')}/json"
        try:
            async with self._session.get(url) as response:
                if response.status == 404:
                    return ImageFacts(exists=False)
                if response.status != 200:
                    detail = (await response.text()).strip()
                    log.warning("image-check-unavailable", image=image,
                                error=f"HTTP {response.status}: {detail}")
                    return ImageFacts(exists=None)
                attrs: Any = await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            log.warning("image-check-unavailable", image=image, error=repr(exc))
            return ImageFacts(exists=None)
        if not isinstance(attrs, dict):
            log.warning("image-check-unavailable", image=image, error="not a JSON object")
            return ImageFacts(exists=None)
        return ImageFacts(exists=True, exposed_ports=_exposed_ports(attrs))

    def _inspect_with_sdk(self, image: str) -> ImageFacts:
        try:
            if self._client is None:
                self._client = docker.from_env(environment=self._environ)
            attrs = self._client.images.get(image).attrs
        except docker.errors.ImageNotFound:
            return ImageFacts(exists=False)
        except (docker.errors.DockerException, OSError) as exc:
            # OSError: requests' ConnectionError, when no engine answers.
            log.warning("image-check-unavailable", image=image, error=str(exc))
            return ImageFacts(exists=None)
        return ImageFacts(exists=True, exposed_ports=_exposed_ports(attrs))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._client is not None:
            self._client.close()
            self._client = None
