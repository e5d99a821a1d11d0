"""The brain's image check against the real Docker engine: over its Unix socket with aiohttp,
and through the Docker SDK for an engine named otherwise (brain/images.py)."""

from __future__ import annotations

import pytest

from lattice.brain.images import ImageFacts, ImageInspector
from lattice.etcd_server import free_port

pytestmark = pytest.mark.integration


async def test_an_image_on_the_engine_is_found_with_its_exposed_ports(demo_image: str) -> None:
    inspector = ImageInspector()
    try:
        assert await inspector.inspect(demo_image) == ImageFacts(True, (8080,))
        assert await inspector.inspect("no-such-image:never") == ImageFacts(False)
        # A name that would climb out of /images/ in the URL is no image's.
        assert await inspector.inspect("../../containers/json") == ImageFacts(False)
        assert await inspector.inspect(f"{demo_image}/../..") == ImageFacts(False)
    finally:
        await inspector.close()


async def test_without_an_engine_the_image_cannot_be_checked() -> None:
    for environ in ({"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
                    {"DOCKER_HOST": f"tcp://127.0.0.1:{free_port()}"}):
        inspector = ImageInspector(environ)
        try:
            assert await inspector.inspect("anything:1") == ImageFacts(None), environ
        finally:
            await inspector.close()
