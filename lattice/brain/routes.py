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
) -> list[FieldError]:
    """Every hostname in `routes` that the box owns, or that another app routes and does not
    share (a host name is shared only when both apps' routes to it say `shared`)."""
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
            if name in reserved:
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
