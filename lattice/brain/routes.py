"""Who may own a route: the box's own hosts are reserved, and one app's route is not another's."""

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
) -> list[FieldError]:
    """Every hostname in `routes` that the box or another app already owns."""
    reserved = system_hostnames(domain) | service_hostnames
    owners: dict[str, str] = {}
    for guid, info in taken.items():
        if guid == process_guid:
            continue
        for route in info.routes:
            for host in route.hostnames:
                owners[host.lower()] = guid
    problems = []
    for i, route in enumerate(routes):
        for host in route.hostnames:
            name = host.lower()
            if name in reserved:
                problems.append(
                    FieldError(f"routes[{i}].hostnames", f"{host} is reserved by the box")
                )
            elif name in owners:
                problems.append(
                    FieldError(
                        f"routes[{i}].hostnames", f"{host} is already routed to app {owners[name]}"
                    )
                )
    return problems
