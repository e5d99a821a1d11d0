"""What the brain learns about an image before accepting an app: does it exist, which ports.

No registry may be reachable, so images live in the cells' Docker engines. On one host the
brain asks the same engine. A brain with no Docker engine cannot check, and says so: the cell
then reports a missing image as the instance's crash reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import docker
import docker.errors
import structlog

log = structlog.get_logger("lattice.brain.images")


@dataclass(frozen=True)
class ImageFacts:
    exists: bool | None            # None: could not be checked (no Docker engine reachable)
    exposed_ports: tuple[int, ...] = ()


def _exposed_ports(attrs: dict[str, object]) -> tuple[int, ...]:
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
    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None

    def _inspect(self, image: str) -> ImageFacts:
        try:
            if self._client is None:
                self._client = docker.from_env()
            attrs = self._client.images.get(image).attrs
        except docker.errors.ImageNotFound:
            return ImageFacts(exists=False)
        except docker.errors.DockerException as exc:
            log.warning("image-check-unavailable", image=image, error=str(exc))
            return ImageFacts(exists=None)
        return ImageFacts(exists=True, exposed_ports=_exposed_ports(attrs))

    async def inspect(self, image: str) -> ImageFacts:
        return await asyncio.to_thread(self._inspect, image)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
