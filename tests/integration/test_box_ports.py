"""The box fixture's start when the router's chosen port is taken before the router binds it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration.box import running_box

pytestmark = pytest.mark.integration


def test_a_box_whose_router_port_is_taken_starts_again_on_another(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        with running_box(tmp_path / "box", router_port=taken) as box:
            assert box.router_port != taken
            status, cells = box.api("GET", "/v1/cells")
            assert status == 200, cells
            assert len(cells) == 1
