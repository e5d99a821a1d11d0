"""`vagrant validate` of the Vagrantfile, for every provider, and its refusal of bad settings.

Real Debian `vagrant` (scripts/deps.sh installs it); nothing is booted. VirtualBox is not
installed on these machines and Vagrant refuses to load an unusable provider, so its settings
are validated with `--ignore-provider` (the machine config, network, provisioner); libvirt's
plugin loads without a hypervisor, so its provider block is validated in full.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def vagrant(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("vagrant") is None:
        pytest.fail("vagrant is not installed: run `make deps` (Debian: apt-get install vagrant)")
    settings = {k: v for k, v in os.environ.items() if not k.startswith(("LATTICE_", "VM_"))}
    settings.update(VAGRANT_CWD=str(ROOT), VAGRANT_DOTFILE_PATH=str(tmp_path / "dot"), **env)
    return subprocess.run(["vagrant", *args], env=settings, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("provider", "extra"), [
    ("docker", []),
    ("libvirt", []),
    ("virtualbox", ["--ignore-provider"]),
])
def test_vagrant_validate_passes_for_every_provider(
    tmp_path: Path, provider: str, extra: list[str]
) -> None:
    result = vagrant("validate", *extra, tmp_path=tmp_path, VAGRANT_DEFAULT_PROVIDER=provider)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout


@pytest.mark.parametrize(("name", "value"), [
    ("VM_CORES", "two"),
    ("LATTICE_IP", "192.168.11"),
])
def test_a_bad_setting_is_named_and_refused(tmp_path: Path, name: str, value: str) -> None:
    result = vagrant("validate", tmp_path=tmp_path, VAGRANT_DEFAULT_PROVIDER="docker",
                     **{name: value})
    assert result.returncode != 0
    assert f"{name}={value}" in result.stderr


def test_half_the_credentials_are_refused(tmp_path: Path) -> None:
    result = vagrant("validate", tmp_path=tmp_path, VAGRANT_DEFAULT_PROVIDER="docker",
                     LATTICE_USERNAME="alice")
    assert result.returncode != 0
    assert "LATTICE_USERNAME and LATTICE_PASSWORD" in result.stderr
