"""Who may own a route: the box's own hosts are reserved, and one app's route is not another's
unless both share it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lattice.models import FieldError, Route, SchedulingInfo

# Hosts the box itself serves under its domain, whether or not the service is up right now.
SYSTEM_SUBDOMAINS = ("receptor", "doppler")


def system_hostnames(domain: str) -> set[str]:
    return {f"{name}.{domain}".lower() for name in SYSTEM_SUBDOMAINS}


def conflicts(
    routes: Iterable[Route],
    *,
    process_guid: str,
    domain: str,
    taken: Mapping[str, SchedulingInfo],
    service_hostnames: set[str],
    functions: Mapping[str, str] | None = None,
) -> list[FieldError]:
    """Every hostname in `routes` that the box or a function owns, or that another app routes
    and does not share (a host name is shared only when both apps' routes to it say `shared`).

    `functions` maps each function's host name to its name (brain/function_view.py)."""
    functions = functions or {}
    reserved = system_hostnames(domain) | service_hostnames
    owners: dict[str, tuple[str, bool]] = {}     # host -> (an app routing it, whether shared)
    for guid, info in taken.items():
        if guid == process_guid:
            continue
        for route in info.routes:
            for host in route.hostnames:
                name = host.lower()
                # One app that does not share the host is enough to refuse it.
                if name not in owners or owners[name][1]:
                    owners[name] = (guid, route.shared)
    problems = []
    for i, route in enumerate(routes):
        for host in route.hostnames:
            name = host.lower()
            function = functions.get(name.partition("/")[0])
            if function is not None:
                problems.append(FieldError(
                    f"routes[{i}].hostnames", f"{host} is the route of function {function}"
                ))
            elif name in reserved:
                problems.append(
                    FieldError(f"routes[{i}].hostnames", f"{host} is reserved by the box")
                )
            elif name in owners and not (route.shared and owners[name][1]):
                owner, owner_shares = owners[name]
                how = ("it is shared there, so share it here too (--share-routes)"
                       if owner_shares else
                       "to share it, both apps must share their routes (--share-routes)")
                problems.append(
                    FieldError(
                        f"routes[{i}].hostnames",
                        f"{host} is already routed to app {owner}; {how}",
                    )
                )
    return problems


def route_host(hostname: str) -> str:
    """The host part of an app route (`web.example.com/api` -> `web.example.com`)."""
    return hostname.partition("/")[0].lower()


def function_conflicts(
    hostname: str,
    *,
    domain: str,
    taken: Mapping[str, SchedulingInfo],
    service_hostnames: set[str],
) -> list[FieldError]:
    """Why a function may not take `hostname`: the box's, another service's or an app's route.

    An app's path route on that host counts too: the router would send its path to the app.
    `service_hostnames` must not hold the functions' own host names."""
    name = hostname.lower()
    if name in system_hostnames(domain) | service_hostnames:
        return [FieldError("name", f"{hostname} is reserved by the box")]
    for guid, info in sorted(taken.items()):
        for route in info.routes:
            if any(route_host(host) == name for host in route.hostnames):
                return [FieldError("name", f"{hostname} is already routed to app {guid}")]
    return []
