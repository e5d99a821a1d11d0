"""RouterConfig refuses bad values, naming every one."""

from __future__ import annotations

import pytest

from router import RouterConfig


def test_defaults() -> None:
    config = RouterConfig(etcd_endpoints="http://127.0.0.1:2379")
    assert (config.host, config.port, config.max_attempts) == ("127.0.0.1", 8080, 3)


def test_every_bad_field_is_named() -> None:
    with pytest.raises(ValueError, match="invalid router configuration") as info:
        RouterConfig(etcd_endpoints="", port=70000, dial_timeout_s=0, max_attempts=0,
                     max_idle_per_endpoint=-1)
    message = str(info.value)
    for field in ("etcd_endpoints", "port", "dial_timeout_s", "max_attempts",
                  "max_idle_per_endpoint"):
        assert field in message
