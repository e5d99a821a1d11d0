"""Errors of the cell. Docker's (docker-py's and aiohttp's) are translated here, at the boundary.

    CellError
    ├── DockerError               the engine refused or failed a request
    │   ├── DockerUnavailable     the engine cannot be reached; try again later
    │   ├── ImageNotFound         the instance's image is not in the engine
    │   ├── ContainerNotFound     the container is gone (removed behind our back)
    │   └── ContainerStartFailed  create or start was refused (bad user, missing binary, ...)
    └── DockerStreamError         an events or logs stream broke off or sent garbage

ImageNotFound and ContainerStartFailed are the instance's fault: the cell reports it CRASHED
with the message as its crash reason. DockerUnavailable is the cell's: it retries.
"""

from __future__ import annotations


class CellError(Exception):
    """Base of every error the cell raises."""


class DockerError(CellError):
    """The Docker engine refused or failed a request."""


class DockerUnavailable(DockerError):
    """The Docker engine cannot be reached right now."""


class ImageNotFound(DockerError):
    def __init__(self, image: str) -> None:
        super().__init__(f"image not found: {image}")
        self.image = image


class ContainerNotFound(DockerError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container not found: {container_id}")
        self.container_id = container_id


class ContainerStartFailed(DockerError):
    """The engine would not create or start the container; the message says why."""


class DockerStreamError(CellError):
    """A streaming response (events, logs) broke off or could not be parsed."""
