"""DesiredLRP: what the user asked for, split as Diego splits it.

`SchedulingInfo` is small and read by every convergence pass and every routing update;
`RunInfo` is large and read only when a container starts. They live under separate etcd keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lattice.models.autoscale import Autoscale, parse_autoscale, stored_autoscale
from lattice.models.errors import Problems
from lattice.models.syslog_drain import parse_syslog_drains

APP_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
# A host name, maybe a wildcard (`*.example.com`), maybe with a path route (`host/api/v1`).
HOSTNAME_PATTERN = re.compile(
    r"^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*"
    r"(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$"
)
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_PORT = 8080
MAX_INSTANCES = 1000


@dataclass(frozen=True)
class ModificationTag:
    """Changes on every write; `epoch` is fixed at creation, `index` counts updates."""

    epoch: str
    index: int = 0

    def bumped(self) -> ModificationTag:
        return ModificationTag(self.epoch, self.index + 1)


@dataclass(frozen=True)
class Route:
    """One HTTP route: these host names reach `port` of every instance.

    `shared`: another app may route the same host names if its route is shared too (both
    apps opt in, as for a blue-green switch); otherwise a host name belongs to one app.
    """

    hostnames: tuple[str, ...]
    port: int
    shared: bool = False


@dataclass(frozen=True)
class SchedulingInfo:
    process_guid: str
    instances: int
    memory_mb: int
    disk_mb: int
    cpu_weight: int
    routes: tuple[Route, ...]
    modification_tag: ModificationTag
    annotation: str = ""
    run_version: int = 0       # the RunInfo.version that instances should run
    # Syslog drain URLs (lattice.models.syslog_drain): here, not in RunInfo, because the log
    # aggregator already watches scheduling info, and a drain change must not roll instances.
    syslog_drains: tuple[str, ...] = ()
    # Scale to zero (models/autoscale.py); None: `instances` changes only when a user asks.
    autoscale: Autoscale | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for route in data["routes"]:
            if not route["shared"]:      # absent unless shared: Diego's route JSON otherwise
                del route["shared"]
        data.pop("autoscale")
        if self.autoscale is not None:   # absent when off: older records read the same
            data["autoscale"] = self.autoscale.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedulingInfo:
        return cls(
            process_guid=data["process_guid"],
            instances=int(data["instances"]),
            memory_mb=int(data["memory_mb"]),
            disk_mb=int(data["disk_mb"]),
            cpu_weight=int(data["cpu_weight"]),
            routes=tuple(
                Route(hostnames=tuple(r["hostnames"]), port=int(r["port"]),
                      shared=bool(r.get("shared", False)))
                for r in data["routes"]
            ),
            modification_tag=ModificationTag(**data["modification_tag"]),
            annotation=data.get("annotation", ""),
            run_version=int(data.get("run_version", 0)),
            syslog_drains=tuple(str(url) for url in data.get("syslog_drains", ())),
            autoscale=stored_autoscale(data.get("autoscale")),
        )


DEFAULT_MONITOR_TIMEOUT_S = 1.0
MAX_MONITOR_TIMEOUT_S = 60.0
DEFAULT_START_TIMEOUT_S = 60.0
MAX_START_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class PortMonitor:
    """A port health check; `port` None means no health check at all (`--no-monitor`)."""

    port: int | None
    timeout_s: float = DEFAULT_MONITOR_TIMEOUT_S


@dataclass(frozen=True)
class HttpMonitor:
    """An HTTP health check: `GET path` on the published `port` passes on a 200."""

    port: int
    path: str
    timeout_s: float = DEFAULT_MONITOR_TIMEOUT_S


@dataclass(frozen=True)
class CommandMonitor:
    """A health check run inside the container (`docker exec`): passes on exit status 0."""

    command: tuple[str, ...]
    timeout_s: float = DEFAULT_MONITOR_TIMEOUT_S

    @property
    def port(self) -> None:
        """No port to publish or dial: the check runs inside the container."""
        return None


Monitor = PortMonitor | HttpMonitor | CommandMonitor


def monitor_to_dict(monitor: Monitor) -> dict[str, Any]:
    """The JSON form. A port check with the default timeout stays exactly `{"port": N}`, as
    before the other kinds existed; a timeout is written only when it is not the default."""
    data: dict[str, Any]
    if isinstance(monitor, HttpMonitor):
        data = {"http": {"port": monitor.port, "path": monitor.path}}
    elif isinstance(monitor, CommandMonitor):
        data = {"command": list(monitor.command)}
    else:
        data = {"port": monitor.port}
    if monitor.timeout_s != DEFAULT_MONITOR_TIMEOUT_S:
        data["timeout_s"] = monitor.timeout_s
    return data


def describe_monitor(monitor: Monitor) -> str:
    """For people: `port 8080`, `http 8080:/health`, `command pgrep app`, or `none`."""
    if isinstance(monitor, HttpMonitor):
        return f"http {monitor.port}:{monitor.path}"
    if isinstance(monitor, CommandMonitor):
        return "command " + " ".join(monitor.command)
    return "none" if monitor.port is None else f"port {monitor.port}"


@dataclass(frozen=True)
class RunInfo:
    process_guid: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[int, ...] = ()
    monitor: Monitor = field(default_factory=lambda: PortMonitor(port=None))
    user: str = ""
    working_dir: str = ""
    privileged: bool = False
    # An instance whose health check has not passed this long after its start crashes.
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S
    # Counts changes of what a container runs (image, env): instances of an older version are
    # replaced, one at a time, by a rolling update. Mirrored in SchedulingInfo.run_version.
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["env"] = [{"name": k, "value": v} for k, v in self.env]
        data["monitor"] = monitor_to_dict(self.monitor)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunInfo:
        return cls(
            process_guid=data["process_guid"],
            image=data["image"],
            command=tuple(data.get("command", ())),
            args=tuple(data.get("args", ())),
            env=tuple((e["name"], e["value"]) for e in data.get("env", ())),
            ports=tuple(int(p) for p in data.get("ports", ())),
            monitor=_stored_monitor(data.get("monitor")),
            user=data.get("user", ""),
            working_dir=data.get("working_dir", ""),
            privileged=bool(data.get("privileged", False)),
            start_timeout_s=float(data.get("start_timeout_s", DEFAULT_START_TIMEOUT_S)),
            version=int(data.get("version", 0)),
        )


def _stored_monitor(raw: Any) -> Monitor:
    """A monitor as stored (written by `monitor_to_dict`, or before timeouts existed)."""
    data = raw or {}
    timeout_s = float(data.get("timeout_s", DEFAULT_MONITOR_TIMEOUT_S))
    if "http" in data:
        return HttpMonitor(int(data["http"]["port"]), str(data["http"]["path"]), timeout_s)
    if "command" in data:
        return CommandMonitor(tuple(str(c) for c in data["command"]), timeout_s)
    port = data.get("port")
    return PortMonitor(None if port is None else int(port), timeout_s)


@dataclass(frozen=True)
class DesiredLRP:
    """The whole desired record as the API shows it: scheduling and run info together."""

    scheduling: SchedulingInfo
    run: RunInfo

    @property
    def process_guid(self) -> str:
        return self.scheduling.process_guid

    def to_dict(self) -> dict[str, Any]:
        data = self.run.to_dict()
        data.update(self.scheduling.to_dict())
        return data


@dataclass(frozen=True)
class DesiredLRPUpdate:
    """The fields an update may change (Diego's DesiredLRPUpdate)."""

    instances: int | None = None
    routes: tuple[Route, ...] | None = None
    annotation: str | None = None
    image: str | None = None                          # a change rolls every instance
    env: tuple[tuple[str, str], ...] | None = None    # likewise
    syslog_drains: tuple[str, ...] | None = None      # replaces them all; () removes them
    autoscale: Autoscale | None = None                # replaces the whole block
    remove_autoscale: bool = False                    # `"autoscale": null`

    def apply_run(self, run: RunInfo, info: SchedulingInfo) -> RunInfo | None:
        """The new run info, one version up, if the image or env change; else None."""
        image = run.image if self.image is None else self.image
        env = run.env if self.env is None else self.env
        if image == run.image and env == run.env:
            return None
        version = max(run.version, info.run_version) + 1
        return replace(run, image=image, env=env, version=version)

    def apply(self, info: SchedulingInfo, new_run: RunInfo | None = None) -> SchedulingInfo:
        autoscale = None if self.remove_autoscale else (self.autoscale or info.autoscale)
        instances = info.instances if self.instances is None else self.instances
        if autoscale is not None:
            instances = autoscale.clamp(instances)
        return replace(
            info,
            instances=instances,
            autoscale=autoscale,
            routes=info.routes if self.routes is None else self.routes,
            annotation=info.annotation if self.annotation is None else self.annotation,
            syslog_drains=(info.syslog_drains if self.syslog_drains is None
                           else self.syslog_drains),
            run_version=info.run_version if new_run is None else new_run.version,
            modification_tag=info.modification_tag.bumped(),
        )


# ---------------------------------------------------------------------------------------------
# Parsing and validation of API input. Every problem is collected so the user fixes all at once.
# ---------------------------------------------------------------------------------------------


def _int_field(
    problems: Problems, data: dict[str, Any], name: str, default: int, minimum: int, maximum: int
) -> int:
    value = data.get(name, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(name, f"must be an integer, got {value!r}")
        return default
    if not minimum <= value <= maximum:
        problems.add(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


def _seconds_field(
    problems: Problems, data: dict[str, Any], name: str, default: float, maximum: float,
    label: str = "",
) -> float:
    value = data.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(label or name, f"must be a number of seconds, got {value!r}")
        return default
    if not 0 < value <= maximum:  # written so that NaN is refused too
        problems.add(label or name,
                     f"must be more than 0 and at most {maximum:g} s, got {value}")
        return default
    return float(value)


MONITOR_FORMS = (
    '{"port": N}, {"port": null} (no check), {"http": {"port": N, "path": "/..."}} or '
    '{"command": ["cmd", "arg", ...]}, each with an optional "timeout_s" (alone: the default '
    'port check with that timeout)'
)


def parse_monitor(problems: Problems, raw: Any, first_port: int | None) -> Monitor:
    """The health check of a create request; absent means a port check on the first port."""
    if raw is None:
        return PortMonitor(port=first_port)
    if not isinstance(raw, dict):
        problems.add("monitor", f"must be one of {MONITOR_FORMS}")
        return PortMonitor(port=first_port)
    kinds = [kind for kind in ("port", "http", "command") if kind in raw]
    for name in sorted(set(raw) - {"port", "http", "command", "timeout_s"}):
        problems.add(f"monitor.{name}", f"is not a monitor field; use one of {MONITOR_FORMS}")
    if len(kinds) > 1:
        problems.add("monitor", f"give one of port, http, command: {MONITOR_FORMS}")
        return PortMonitor(port=first_port)
    timeout_s = _seconds_field(
        problems, raw, "timeout_s", DEFAULT_MONITOR_TIMEOUT_S, MAX_MONITOR_TIMEOUT_S,
        "monitor.timeout_s",
    )
    if not kinds:      # only a timeout: the default port check, with that timeout
        return PortMonitor(first_port, timeout_s)
    if kinds == ["http"]:
        http = raw["http"]
        if not isinstance(http, dict):
            problems.add("monitor.http", 'must be an object like {"port": 8080, "path": "/"}')
            return PortMonitor(port=first_port)
        port_value = http.get("port", first_port)
        port = _port(problems, "monitor.http.port", port_value)
        path = http.get("path", "/")
        if not isinstance(path, str) or not path.startswith("/") or any(
            c.isspace() for c in path
        ):
            problems.add("monitor.http.path",
                         f"must start with '/' and hold no spaces, got {path!r}")
            path = "/"
        return HttpMonitor(port or 0, path, timeout_s)
    if kinds == ["command"]:
        command = raw["command"]
        if (
            not isinstance(command, list) or not command
            or not all(isinstance(c, str) and c for c in command)
        ):
            problems.add("monitor.command", "must be a non-empty list of non-empty strings")
            return PortMonitor(port=first_port)
        return CommandMonitor(tuple(command), timeout_s)
    if raw["port"] is None:
        return PortMonitor(None, timeout_s)
    return PortMonitor(_port(problems, "monitor.port", raw["port"]), timeout_s)


def _port(problems: Problems, name: str, value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(name, f"must be an integer port, got {value!r}")
        return None
    if not 1 <= value <= 65535:
        problems.add(name, f"port {value} is outside 1-65535")
        return None
    return value


def _string_list(problems: Problems, data: dict[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(name, "must be a list of strings")
        return ()
    return tuple(value)


def validate_process_guid(problems: Problems, value: Any, name: str = "process_guid") -> str:
    if not isinstance(value, str) or not value:
        problems.add(name, "is required")
        return ""
    if not APP_NAME_PATTERN.match(value):
        problems.add(name, f"{value!r} may only contain letters, digits, '_' and '-'")
    elif len(value) > 63:
        problems.add(name, "must be at most 63 characters")
    return value


def parse_routes(problems: Problems, value: Any, default_port: int | None) -> tuple[Route, ...]:
    """Routes as `[{"hostnames": [...], "port": N}]`; a missing port means the first app port."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("routes", "must be a list of {hostnames, port}")
        return ()
    routes: list[Route] = []
    for i, raw in enumerate(value):
        where = f"routes[{i}]"
        if not isinstance(raw, dict):
            problems.add(where, "must be an object with hostnames and port")
            continue
        hostnames = raw.get("hostnames")
        if not isinstance(hostnames, list) or not hostnames:
            problems.add(f"{where}.hostnames", "must be a non-empty list of host names")
            continue
        good = True
        for host in hostnames:
            if not isinstance(host, str) or not HOSTNAME_PATTERN.match(host) or len(host) > 253:
                problems.add(f"{where}.hostnames", f"{host!r} is not a valid host name")
                good = False
        port_value = raw.get("port", default_port)
        port = _port(problems, f"{where}.port", port_value) if port_value is not None else None
        shared = raw.get("shared", False)
        if not isinstance(shared, bool):
            problems.add(f"{where}.shared", "must be true or false")
            good = False
        if good and port is not None:
            routes.append(Route(tuple(h.lower() for h in hostnames), port, shared))
    return tuple(routes)


def _check_route_ports(problems: Problems, routes: tuple[Route, ...], ports: Sequence[int]) -> None:
    for i, route in enumerate(routes):
        if route.port not in ports:
            problems.add(f"routes[{i}].port", f"port {route.port} is not one of the app's ports")


def parse_env(problems: Problems, value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("env", "must be a list of {name, value}")
        return ()
    env: list[tuple[str, str]] = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not isinstance(item.get("value", ""), str)
        ):
            problems.add(f"env[{i}]", "must be an object with string name and value")
            continue
        if not ENV_NAME_PATTERN.match(item["name"]):
            problems.add(f"env[{i}].name", f"{item['name']!r} is not a valid variable name")
            continue
        env.append((item["name"], item.get("value", "")))
    return tuple(env)


def parse_desired_lrp(data: Any, *, epoch: str, image_ports: tuple[int, ...] = ()) -> DesiredLRP:
    """Build a DesiredLRP from API input, filling Lattice's defaults.

    `image_ports` are the image's EXPOSEd ports: with no `ports` given, the first of them (else
    8080) is the app's port. A route without a port goes to the app's first port.
    Raises ValidationError listing every invalid field.
    """
    problems = Problems()
    if not isinstance(data, dict):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError("unreachable")
    guid = validate_process_guid(problems, data.get("process_guid"))
    image = data.get("image")
    if not isinstance(image, str) or not image.strip():
        problems.add("image", "is required")
        image = ""
    autoscale = parse_autoscale(problems, data.get("autoscale"), MAX_INSTANCES)
    instances = _int_field(problems, data, "instances",
                           1 if autoscale is None else autoscale.initial_instances(),
                           0, MAX_INSTANCES)
    if autoscale is not None and data.get("instances") is not None and (
        autoscale.clamp(instances) != instances
    ):
        problems.add("instances", f"must be between autoscale.min_instances "
                                  f"({autoscale.min_instances}) and autoscale.max_instances "
                                  f"({autoscale.max_instances}), got {instances}")
    memory_mb = _int_field(problems, data, "memory_mb", 128, 0, 1 << 20)
    disk_mb = _int_field(problems, data, "disk_mb", 0, 0, 1 << 24)
    cpu_weight = _int_field(problems, data, "cpu_weight", 100, 1, 100)

    raw_ports = data.get("ports")
    ports: list[int] = []
    if raw_ports is None or raw_ports == []:
        ports = [image_ports[0] if image_ports else DEFAULT_PORT]
    elif not isinstance(raw_ports, list):
        problems.add("ports", "must be a list of port numbers")
    else:
        for i, p in enumerate(raw_ports):
            port = _port(problems, f"ports[{i}]", p)
            if port is not None and port not in ports:
                ports.append(port)
    first_port = ports[0] if ports else None

    routes = parse_routes(problems, data.get("routes"), first_port)
    _check_route_ports(problems, routes, ports)

    monitor = parse_monitor(problems, data.get("monitor"), first_port)
    start_timeout_s = _seconds_field(
        problems, data, "start_timeout_s", DEFAULT_START_TIMEOUT_S, MAX_START_TIMEOUT_S
    )

    command = _string_list(problems, data, "command")
    args = _string_list(problems, data, "args")
    env = parse_env(problems, data.get("env"))
    user = data.get("user", "") or ""
    working_dir = data.get("working_dir", "") or ""
    annotation = data.get("annotation", "") or ""
    privileged = data.get("privileged", False)
    syslog_drains = parse_syslog_drains(problems, data.get("syslog_drains"))
    for name, value in (("user", user), ("working_dir", working_dir), ("annotation", annotation)):
        if not isinstance(value, str):
            problems.add(name, "must be a string")
    if not isinstance(privileged, bool):
        problems.add("privileged", "must be true or false")
    problems.raise_if_any()

    scheduling = SchedulingInfo(
        process_guid=guid,
        instances=instances,
        memory_mb=memory_mb,
        disk_mb=disk_mb,
        cpu_weight=cpu_weight,
        routes=routes,
        modification_tag=ModificationTag(epoch=epoch, index=0),
        annotation=annotation,
        syslog_drains=syslog_drains,
        autoscale=autoscale,
    )
    run = RunInfo(
        process_guid=guid,
        image=image.strip(),
        command=command,
        args=args,
        env=env,
        ports=tuple(ports),
        monitor=monitor,
        user=user,
        working_dir=working_dir,
        privileged=privileged,
        start_timeout_s=start_timeout_s,
    )
    return DesiredLRP(scheduling, run)


def parse_desired_lrp_update(data: Any, ports: tuple[int, ...]) -> DesiredLRPUpdate:
    """Parse a PUT body; only instances, routes and annotation may change."""
    problems = Problems()
    if not isinstance(data, dict):
        problems.add("body", "must be a JSON object")
        problems.raise_if_any()
        raise AssertionError("unreachable")
    allowed = {"instances", "routes", "annotation", "image", "env", "syslog_drains", "autoscale"}
    for name in sorted(set(data) - allowed):
        problems.add(name, f"cannot be updated (updatable: {', '.join(sorted(allowed))})")
    instances = None
    if "instances" in data:
        instances = _int_field(problems, data, "instances", 0, 0, MAX_INSTANCES)
    routes = None
    if "routes" in data:
        routes = parse_routes(problems, data["routes"], ports[0] if ports else None)
        _check_route_ports(problems, routes, ports)
    annotation = data.get("annotation")
    if annotation is not None and not isinstance(annotation, str):
        problems.add("annotation", "must be a string")
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not image.strip()):
        problems.add("image", "must be a non-empty image name")
    env = parse_env(problems, data["env"]) if data.get("env") is not None else None
    syslog_drains = None
    if "syslog_drains" in data:
        syslog_drains = parse_syslog_drains(problems, data["syslog_drains"] or [])
    autoscale = parse_autoscale(problems, data.get("autoscale"), MAX_INSTANCES)
    problems.raise_if_any()
    return DesiredLRPUpdate(
        instances=instances, routes=routes, annotation=annotation,
        image=image.strip() if isinstance(image, str) else None, env=env,
        syslog_drains=syslog_drains, autoscale=autoscale,
        remove_autoscale="autoscale" in data and data["autoscale"] is None,
    )
