"""Credentials in `lattice up`'s configuration and in ltc's saved target."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from lattice.auth import PASSWORD_ENV, USERNAME_ENV, Credentials
from lattice.client.target import Target, load_target, save_target
from lattice.up import UpConfig, UpError, check_config, component_env, component_specs

SECRET = Credentials("admin", "pw-123")


def test_listen_off_loopback_needs_credentials(tmp_path: Path) -> None:
    with pytest.raises(UpError, match="needs credentials"):
        check_config(UpConfig(data_dir=tmp_path, listen="0.0.0.0"))
    check_config(UpConfig(data_dir=tmp_path, listen="0.0.0.0", credentials=SECRET))
    check_config(UpConfig(data_dir=tmp_path, listen="127.0.0.1"))


def test_children_get_credentials_in_env_never_argv(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "stale")
    specs = component_specs(UpConfig(data_dir=tmp_path, cells=2, credentials=SECRET),
                            "http://127.0.0.1:2379")
    for spec in specs:
        assert spec.env is not None
        assert spec.env[USERNAME_ENV] == "admin"
        assert spec.env[PASSWORD_ENV] == "pw-123"
        assert not any("pw-123" in arg for arg in spec.argv)
    # An open box drops credentials inherited from the caller's environment.
    assert PASSWORD_ENV not in component_env(None)


def test_saved_target_keeps_credentials_private(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    save_target(path, Target("lattice.localhost", 8080, credentials=SECRET))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_target(path)
    assert loaded is not None
    assert loaded.credentials == SECRET
    assert json.loads(path.read_text())["username"] == "admin"
    assert "pw-123" not in repr(loaded)
    save_target(path, Target("lattice.localhost", 8080))
    reloaded = load_target(path)
    assert reloaded is not None
    assert reloaded.credentials is None
