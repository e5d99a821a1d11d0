"""What `ltc create` asks for: flags parsed and checked, then the API's create request.

Every problem with the flags is collected and reported at once (like the API's own
validation), before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lattice.client.autoscale_flags import (
    AutoscaleFlags,
    check_instances_in_range,
    merged_block,
    parse_autoscale_flags,
)
from lattice.client.errors import InvalidInput
from lattice.models.desired import (
    APP_NAME_PATTERN,
    ENV_NAME_PATTERN,
    HOSTNAME_PATTERN,
    MAX_MONITOR_TIMEOUT_S,
    MAX_START_TIMEOUT_S,
)
from lattice.models.errors import Problems
from lattice.models.syslog_drain import MAX_DRAINS, drain_url_problem

DEFAULT_INSTANCES = 1
DEFAULT_MEMORY_MB = 128
DEFAULT_CPU_WEIGHT = 100
DEFAULT_TIMEOUT_S = 120.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class RouteSpec:
    """One `--http-route`: a host name, and the container port (None: the app's first port).

    A host name without a dot is a name under the box's domain, completed by `qualified`.
    """

    hostname: str
    port: int | None = None

    def qualified(self, domain: str) -> str:
        return self.hostname if "." in self.hostname else f"{self.hostname}.{domain}"


@dataclass(frozen=True, kw_only=True)
class AppSpec:
    name: str
    image: str
    instances: int = DEFAULT_INSTANCES
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_weight: int = DEFAULT_CPU_WEIGHT
    ports: tuple[int, ...] = ()              # empty: the image's first EXPOSEd port, else 8080
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()            # empty: the image's own command
    monitor_port: int | None = None          # None: the API's default, the first port
    no_monitor: bool = False
    monitor_url: tuple[int, str] | None = None      # (port, path): an HTTP check
    monitor_command: tuple[str, ...] = ()           # a check run inside the container
    monitor_timeout_s: float | None = None          # None: the API's default (1 s)
    start_timeout_s: float | None = None            # None: the API's default (60 s)
    routes: tuple[RouteSpec, ...] = ()       # empty: APP.<domain> (unless no_routes)
    no_routes: bool = False
    share_routes: bool = False               # other apps sharing theirs may route them too
    syslog_drains: tuple[str, ...] = ()      # tcp:// or syslog:// URLs
    autoscale: dict[str, Any] | None = None  # the API's block; None: a fixed count


@dataclass(frozen=True, kw_only=True)
class CreateFlags:
    """`ltc create`'s arguments as typed on the command line."""

    name: str
    image: str
    instances: int = DEFAULT_INSTANCES
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_weight: int = DEFAULT_CPU_WEIGHT
    ports: str | None = None
    env: Sequence[str] = ()
    command: Sequence[str] = ()
    monitor_port: int | None = None
    no_monitor: bool = False
    monitor_url: str | None = None
    monitor_command: str | None = None
    monitor_timeout: str | None = None
    routes: Sequence[str] = ()
    no_routes: bool = False
    share_routes: bool = False
    timeout: str | None = None
    syslog_drains: Sequence[str] = ()
    autoscale: AutoscaleFlags = field(default_factory=AutoscaleFlags)


# -- single flags -------------------------------------------------------------------------------


def check_app_name(name: str, problems: Problems | None = None) -> str:
    """An app name is a process_guid: `[a-zA-Z0-9_-]`, at most 63 characters."""
    own = problems if problems is not None else Problems()
    if not name:
        own.add("app", "the app name is empty")
    elif not APP_NAME_PATTERN.match(name):
        own.add("app", f"{name!r} may only contain letters, digits, '_' and '-'")
    elif len(name) > 63:
        own.add("app", f"{name!r} is longer than 63 characters")
    if problems is None and own.errors:
        raise InvalidInput(own.errors)
    return name


def check_instances(count: int, problems: Problems | None = None) -> int:
    own = problems if problems is not None else Problems()
    if count < 0:
        own.add("instances", f"must be 0 or more, got {count}")
    if problems is None and own.errors:
        raise InvalidInput(own.errors)
    return count


def parse_ports(text: str, problems: Problems, name: str = "ports") -> tuple[int, ...]:
    """`8080,9090` -> (8080, 9090); each must be a port in 1-65535."""
    ports: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        port = _port(part, problems, name)
        if port is not None and port not in ports:
            ports.append(port)
    if not ports and not problems.errors:
        problems.add(name, "give at least one port, e.g. 8080 or 8080,9090")
    return tuple(ports)


def _port(text: str, problems: Problems, name: str) -> int | None:
    if not text.isdigit():
        problems.add(name, f"{text!r} is not a port number")
        return None
    port = int(text)
    if not 1 <= port <= 65535:
        problems.add(name, f"port {port} is outside 1-65535")
        return None
    return port


def parse_env(item: str, problems: Problems) -> tuple[str, str] | None:
    """`NAME=VALUE` (the value may be empty or contain '=')."""
    name, sep, value = item.partition("=")
    if not sep:
        problems.add("env", f"{item!r} is not NAME=VALUE")
        return None
    if not ENV_NAME_PATTERN.match(name):
        problems.add("env", f"{name!r} in {item!r} is not a valid variable name")
        return None
    return name, value


def parse_syslog_drains(urls: Sequence[str], problems: Problems) -> tuple[str, ...]:
    """`--syslog-drain` URLs, checked as the API checks them; duplicates count once."""
    drains: list[str] = []
    for url in urls:
        problem = drain_url_problem(url.strip())
        if problem is not None:
            problems.add("syslog-drain", problem)
        elif url.strip() not in drains:
            drains.append(url.strip())
    if len(drains) > MAX_DRAINS:
        problems.add("syslog-drain", f"at most {MAX_DRAINS} drains per app, got {len(drains)}")
    return tuple(drains)


def parse_route(text: str, problems: Problems) -> RouteSpec | None:
    """`HOST[:PORT]`; a host without a dot is a name under the box's domain."""
    host, sep, port_text = text.strip().partition(":")
    host = host.rstrip(".").lower()
    port: int | None = None
    if sep:
        port = _port(port_text, problems, "http-route")
        if port is None:
            return None
    if not host or not HOSTNAME_PATTERN.match(host) or len(host) > 200:
        problems.add("http-route", f"{text!r} is not a valid host name")
        return None
    return RouteSpec(host, port)


def parse_duration(text: str) -> float:
    """`30`, `30s`, `2m`, `1m30s`, `1h`, `500ms` -> seconds; InvalidInput if malformed or <= 0."""
    problems = Problems()
    seconds = _duration(text, problems, "timeout")
    if problems.errors:
        raise InvalidInput(problems.errors)
    return seconds


def _duration(text: str, problems: Problems, name: str) -> float:
    raw = text.strip().lower()
    total = 0.0
    try:
        total = float(raw)  # a bare number is seconds
    except ValueError:
        position = 0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != position:
                break
            total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            position = match.end()
        if position != len(raw) or not raw:
            problems.add(name, f"{text!r} is not a duration such as 30, 30s, 2m or 1m30s")
            return 0.0
    if not total > 0:  # written so that NaN is refused too
        problems.add(name, f"must be more than 0, got {text!r}")
    elif total == float("inf"):
        problems.add(name, f"{text!r} is too long")
    return total


def default_route(name: str) -> RouteSpec:
    """`APP.<domain>`; '_' is allowed in app names but not in host names."""
    return RouteSpec(name.lower().replace("_", "-"))


# -- all of create's flags ----------------------------------------------------------------------


def parse_create_flags(flags: CreateFlags) -> tuple[AppSpec, float]:
    """The spec and the wait timeout (s); InvalidInput listing every bad flag."""
    problems = Problems()
    check_app_name(flags.name, problems)
    if not flags.image.strip():
        problems.add("image", "the image name is empty")
    check_instances(flags.instances, problems)
    if flags.memory_mb < 0:
        problems.add("memory-mb", f"must be 0 (no limit) or more, got {flags.memory_mb}")
    if not 1 <= flags.cpu_weight <= 100:
        problems.add("cpu-weight", f"must be between 1 and 100, got {flags.cpu_weight}")
    ports = parse_ports(flags.ports, problems) if flags.ports is not None else ()
    env = tuple(pair for item in flags.env if (pair := parse_env(item, problems)) is not None)
    if flags.monitor_port is not None:
        _port(str(flags.monitor_port), problems, "monitor-port")
        if flags.no_monitor:
            problems.add("monitor-port", "--monitor-port and --no-monitor exclude each other")
        elif ports and flags.monitor_port not in ports:
            problems.add("monitor-port", f"{flags.monitor_port} is not one of --ports")
    monitor_url, monitor_command, monitor_timeout_s = _monitor_flags(flags, ports, problems)
    routes = tuple(
        route for text in flags.routes if (route := parse_route(text, problems)) is not None
    )
    if flags.no_routes and flags.routes:
        problems.add("http-route", "--http-route and --no-routes exclude each other")
    if flags.no_routes and flags.share_routes:
        problems.add("share-routes", "--share-routes and --no-routes exclude each other")
    for route in routes:
        if route.port is not None and ports and route.port not in ports:
            problems.add("http-route", f"{route.hostname}:{route.port} is not one of --ports")
    syslog_drains = parse_syslog_drains(flags.syslog_drains, problems)
    timeout = DEFAULT_TIMEOUT_S
    if flags.timeout is not None:
        timeout = _duration(flags.timeout, problems, "timeout")
        if timeout > MAX_START_TIMEOUT_S:
            problems.add("timeout", f"must be at most {MAX_START_TIMEOUT_S:g} s")
    instances, autoscale = flags.instances, None
    if flags.autoscale.given():
        autoscale = merged_block(parse_autoscale_flags(flags.autoscale, problems), None,
                                 problems)
        if instances == DEFAULT_INSTANCES:
            # Not asked for: an autoscaled app starts with one instance (at least min).
            instances = min(max(autoscale["min_instances"], 1), autoscale["max_instances"])
        check_instances_in_range(instances, autoscale, problems)
    if problems.errors:
        raise InvalidInput(problems.errors)
    spec = AppSpec(
        name=flags.name,
        image=flags.image.strip(),
        instances=instances,
        memory_mb=flags.memory_mb,
        cpu_weight=flags.cpu_weight,
        ports=ports,
        env=env,
        command=tuple(flags.command),
        monitor_port=flags.monitor_port,
        no_monitor=flags.no_monitor,
        monitor_url=monitor_url,
        monitor_command=monitor_command,
        monitor_timeout_s=monitor_timeout_s,
        # The instance gets as long to pass its check as ltc waits for it.
        start_timeout_s=timeout if flags.timeout is not None else None,
        routes=routes,
        no_routes=flags.no_routes,
        share_routes=flags.share_routes,
        syslog_drains=syslog_drains,
        autoscale=autoscale,
    )
    return spec, timeout


def parse_monitor_url(text: str, problems: Problems) -> tuple[int, str] | None:
    """`PORT:/path` -> (port, "/path")."""
    port_text, sep, path = text.strip().partition(":")
    port = _port(port_text, problems, "monitor-url")
    if not sep or not path.startswith("/") or any(c.isspace() for c in path):
        problems.add("monitor-url", f"{text!r} is not PORT:/path, e.g. 8080:/health")
        return None
    return None if port is None else (port, path)


def _monitor_flags(
    flags: CreateFlags, ports: tuple[int, ...], problems: Problems
) -> tuple[tuple[int, str] | None, tuple[str, ...], float | None]:
    """--monitor-url, --monitor-command and --monitor-timeout, checked together with the other
    monitor flags: at most one kind of check may be asked for."""
    chosen = [name for name, given in (
        ("--monitor-port", flags.monitor_port is not None),
        ("--monitor-url", flags.monitor_url is not None),
        ("--monitor-command", flags.monitor_command is not None),
        ("--no-monitor", flags.no_monitor),
    ) if given]
    if len(chosen) > 1 and chosen != ["--monitor-port", "--no-monitor"]:  # that pair: above
        problems.add("monitor", f"{' and '.join(chosen)} exclude each other")
    url = None
    if flags.monitor_url is not None:
        url = parse_monitor_url(flags.monitor_url, problems)
        if url is not None and ports and url[0] not in ports:
            problems.add("monitor-url", f"{url[0]} is not one of --ports")
    command: tuple[str, ...] = ()
    if flags.monitor_command is not None:
        try:
            import shlex  # here: only --monitor-command needs it

            command = tuple(shlex.split(flags.monitor_command))
        except ValueError as exc:
            problems.add("monitor-command", f"{flags.monitor_command!r}: {exc}")
        else:
            if not command:
                problems.add("monitor-command", "the command is empty")
    timeout_s = None
    if flags.monitor_timeout is not None:
        timeout_s = _duration(flags.monitor_timeout, problems, "monitor-timeout")
        if flags.no_monitor:
            problems.add("monitor-timeout", "--monitor-timeout and --no-monitor exclude each other")
        elif timeout_s > MAX_MONITOR_TIMEOUT_S:
            problems.add("monitor-timeout", f"must be at most {MAX_MONITOR_TIMEOUT_S:g} s")
    return url, command, timeout_s


def build_create_request(spec: AppSpec, domain: str) -> dict[str, Any]:
    """The body of `POST /v1/desired_lrps`. Unset fields are left to the API's defaults."""
    request: dict[str, Any] = {
        "process_guid": spec.name,
        "image": spec.image,
        "instances": spec.instances,
        "memory_mb": spec.memory_mb,
        "cpu_weight": spec.cpu_weight,
        "env": [{"name": name, "value": value} for name, value in spec.env],
        "routes": _routes(spec, domain),
    }
    if spec.ports:
        request["ports"] = list(spec.ports)
    if spec.command:
        # Lattice's `-- COMMAND ARGS...`: the first word runs, the rest are its arguments.
        request["command"] = [spec.command[0]]
        request["args"] = list(spec.command[1:])
    monitor = _monitor_request(spec)
    if monitor is not None:
        request["monitor"] = monitor
    if spec.start_timeout_s is not None:
        request["start_timeout_s"] = spec.start_timeout_s
    if spec.syslog_drains:
        request["syslog_drains"] = list(spec.syslog_drains)
    if spec.autoscale is not None:
        request["autoscale"] = spec.autoscale
    return request


def _monitor_request(spec: AppSpec) -> dict[str, Any] | None:
    """The API's `monitor`; None leaves the default (a port check on the first port)."""
    monitor: dict[str, Any]
    if spec.no_monitor:
        return {"port": None}
    if spec.monitor_url is not None:
        monitor = {"http": {"port": spec.monitor_url[0], "path": spec.monitor_url[1]}}
    elif spec.monitor_command:
        monitor = {"command": list(spec.monitor_command)}
    elif spec.monitor_port is not None:
        monitor = {"port": spec.monitor_port}
    elif spec.monitor_timeout_s is not None:
        monitor = {}    # a timeout alone: the default check (the first port) with it
    else:
        return None
    if spec.monitor_timeout_s is not None:
        monitor["timeout_s"] = spec.monitor_timeout_s
    return monitor


def _routes(spec: AppSpec, domain: str) -> list[dict[str, Any]]:
    if spec.no_routes:
        return []
    wanted = spec.routes or (default_route(spec.name),)
    # One route per port, in the order the ports first appear; no port means the first port.
    by_port: dict[int | None, list[str]] = {}
    for route in wanted:
        hostnames = by_port.setdefault(route.port, [])
        if route.qualified(domain) not in hostnames:
            hostnames.append(route.qualified(domain))
    routes: list[dict[str, Any]] = []
    for port, hostnames in by_port.items():
        entry: dict[str, Any] = {"hostnames": hostnames}
        if port is not None:
            entry["port"] = port
        if spec.share_routes:
            entry["shared"] = True
        routes.append(entry)
    return routes
