"""The target: which box ltc talks to (`DOMAIN[:PORT]` of its router), and where that is saved.

The router serves the API at `receptor.<domain>`, the log stream at `doppler.<domain>` and each
app at `<route>`, all on one port. The target is saved as `{"domain", "port"}`, plus
`{"username", "password"}` for a box that requires credentials, in the config file
(`$LATTICE_CONFIG`, default `~/.lattice/config.json`), readable by its owner only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from lattice.auth import Credentials
from lattice.client.errors import ConfigError, InvalidInput
from lattice.models import FieldError
from lattice.models.desired import HOSTNAME_PATTERN

DEFAULT_PORT = 80
CONFIG_ENV = "LATTICE_CONFIG"
FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass(frozen=True)
class Target:
    domain: str
    port: int = DEFAULT_PORT
    # Sent with every request; never part of the target's text (`__str__`) or its equality.
    credentials: Credentials | None = field(default=None, compare=False)

    def with_credentials(self, credentials: Credentials | None) -> Target:
        return replace(self, credentials=credentials)

    def __str__(self) -> str:
        return self.domain if self.port == DEFAULT_PORT else f"{self.domain}:{self.port}"

    def url_for(self, hostname: str) -> str:
        """The URL of `hostname` served by this box's router (port 80 left implicit)."""
        if self.port == DEFAULT_PORT:
            return f"http://{hostname}"
        return f"http://{hostname}:{self.port}"

    @property
    def receptor_url(self) -> str:
        return self.url_for(f"receptor.{self.domain}")

    @property
    def doppler_url(self) -> str:
        return self.url_for(f"doppler.{self.domain}")


def auth_headers(target: Target) -> dict[str, str]:
    """Credentials reach every request: API calls, event streams and the log WebSocket."""
    if target.credentials is None:
        return {}
    return {"Authorization": target.credentials.header()}


def parse_target(text: str) -> Target:
    """`DOMAIN[:PORT]` -> Target; InvalidInput naming what is wrong."""
    raw = text.strip()
    if "://" in raw:
        raise InvalidInput([FieldError("target", f"give DOMAIN[:PORT], not a URL: {text!r}")])
    domain, sep, port_text = raw.partition(":")
    domain = domain.rstrip(".").lower()
    problems: list[FieldError] = []
    port = DEFAULT_PORT
    if sep:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            problems.append(FieldError("target", f"port {port_text!r} is not in 1-65535"))
        else:
            port = int(port_text)
    if not domain:
        problems.append(FieldError("target", "the domain is empty"))
    elif _is_ip(domain):
        problems.append(
            FieldError(
                "target",
                f"{domain} is an address, not a domain: the router needs host names such as "
                f"receptor.<domain>; use {domain}.nip.io",
            )
        )
    elif not HOSTNAME_PATTERN.match(domain) or domain.startswith("*."):
        problems.append(FieldError("target", f"{domain!r} is not a valid domain name"))
    if problems:
        raise InvalidInput(problems)
    return Target(domain, port)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def default_config_path() -> Path:
    return Path.home() / ".lattice" / "config.json"


def load_target(path: Path) -> Target | None:
    """The saved target, or None when none was saved yet."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(raw)
        credentials = None
        if data.get("username") is not None:
            credentials = Credentials(str(data["username"]), str(data["password"]))
        return Target(domain=str(data["domain"]), port=int(data["port"]),
                      credentials=credentials)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a valid ltc config ({exc}); set the target again")\
            from exc


def save_target(path: Path, target: Target) -> None:
    """Write the target atomically, the file 0600 and any directory made for it 0700."""
    # Here, not at the top: tempfile brings shutil, random and the compressors (about 4 ms),
    # which only `ltc target` needs.
    import tempfile

    try:
        _make_dirs(path.parent)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".tmp")
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp says 0600, but say so here where it matters
            with os.fdopen(fd, "w") as tmp:
                data: dict[str, object] = {"domain": target.domain, "port": target.port}
                if target.credentials is not None:
                    data["username"] = target.credentials.username
                    data["password"] = target.credentials.password
                json.dump(data, tmp)
                tmp.write("\n")
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _make_dirs(directory: Path) -> None:
    """Create missing directories 0700; existing ones (maybe /tmp) keep their mode."""
    missing = []
    for parent in (directory, *directory.parents):
        if parent.exists():
            break
        missing.append(parent)
    for new in reversed(missing):
        new.mkdir(mode=DIR_MODE)
        new.chmod(DIR_MODE)  # mkdir's mode is filtered by the umask
