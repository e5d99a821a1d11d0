"""Route claims that cannot race: the rule of brain/routes.py, checked on etcd, not on a cache.

An app may not take a route another app holds unshared, nor a function's host name, and a
function may not take an app's host (routes.py holds these pure rules). Checked on a brain's
caches, which lag etcd, two creates (two clients, or two brains: every brain serves the API)
could both pass, and an app created just after another with the same route could too.

So every write that claims a route does it as one compare-and-swap over all route owners:
read the mod revision R of keys.ROUTE_CLAIMS_VERSION and the owners (every app's scheduling
info, every function) fresh from etcd, in one transaction of reads, check them, and write
guarded on the key still being at R, bumping it in the same transaction. Any other claim
that landed in between moved the key, so the write fails and is checked again on owners that
include it. Route writes are rare (a create or an update of routes), so serializing them
costs nothing that matters; deletes only free routes and do not take part.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lattice.brain.errors import InvalidRequest, ModificationConflict
from lattice.models import FieldError, SchedulingInfo
from lattice.store import Etcd, Get, GetPrefix, ModRevisionIs, Put, keys
from lattice.store.etcd import Compare, Operation

# A write that loses the race reads and checks again, for this long. Each loss means another
# claim was written, so the claims as a whole always progress: N writers racing at once are all
# through within N rounds. Only a stream of route writes that outlasts this answers 409 (retry).
CLAIM_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RouteOwners:
    """Who holds routes, as etcd had it just after `revision` (the claims key's mod revision,
    0 when no claim was ever written)."""

    revision: int
    apps: dict[str, SchedulingInfo] = field(default_factory=dict)
    function_names: tuple[str, ...] = ()

    def function_routes(self, domain: str) -> dict[str, str]:
        """host name -> function name (a function's route is NAME.<domain>, model/function)."""
        return {f"{name}.{domain}".lower(): name for name in self.function_names}


def guard(revision: int) -> tuple[list[Compare], list[Operation]]:
    """The compare and the bump a route-claiming transaction adds to its own."""
    # Only the key's mod revision counts: the put moves it whatever the value.
    key = keys.ROUTE_CLAIMS_VERSION
    return [ModRevisionIs(key, revision)], [Put(key, b"")]


async def read_owners(etcd: Etcd) -> RouteOwners:
    """The claims key's revision and the owners, in one read at one store revision: a
    claim that lands after it moves the key, so a write guarded on it cannot miss it."""
    found_version, scheduling, functions = await etcd.read([
        Get(keys.ROUTE_CLAIMS_VERSION), GetPrefix(keys.SCHEDULING), GetPrefix(keys.FUNCTIONS),
    ])
    version = found_version[0] if found_version else None
    apps = {}
    for kv in scheduling:
        info = SchedulingInfo.from_dict(json.loads(kv.value))
        apps[info.process_guid] = info
    return RouteOwners(
        revision=0 if version is None else version.mod_revision,
        apps=apps,
        function_names=tuple(kv.key[len(keys.FUNCTIONS):] for kv in functions),
    )


async def claim(
    read: Callable[[], Awaitable[RouteOwners]],
    *,
    check: Callable[[RouteOwners], list[FieldError]],
    write: Callable[[int], Awaitable[bool]],
    what: str,
    owners: RouteOwners | None = None,
) -> bool:
    """Write with `write(revision)` (which must add `guard(revision)` to its transaction) once
    `check` finds no problem in the owners `read` (read_owners) at that revision; False when
    the write failed for a reason of its own (the claims key had not moved: the name exists).

    `owners`: already read and checked by the caller (it lists the problems with the others
    of the request). InvalidRequest("invalid WHAT") when a route is taken, ModificationConflict
    when other route writes kept winning for CLAIM_TIMEOUT_S.
    """
    if owners is None:
        owners = await read()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CLAIM_TIMEOUT_S
    while True:
        problems = check(owners)
        if problems:
            raise InvalidRequest(f"invalid {what}", problems)
        if await write(owners.revision):
            return True
        fresh = await read()
        if fresh.revision == owners.revision:
            return False
        owners = fresh
        if loop.time() > deadline:
            raise ModificationConflict(
                f"other route writes kept landing first; retry the {what}")


class ClaimsRoutes:
    """For a store whose writes may claim routes (apps in db.py, functions in functions_db.py):
    the owners read fresh from its etcd, and `claim` run on them."""

    _etcd: Etcd

    async def route_owners(self) -> RouteOwners:
        """Every route's owner, read from etcd (not a cache), with the claims key's revision."""
        return await read_owners(self._etcd)

    async def claim_routes(
        self,
        check: Callable[[RouteOwners], list[FieldError]],
        write: Callable[[int], Awaitable[bool]],
        *, what: str, owners: RouteOwners | None = None,
    ) -> bool:
        """`claim` on this store."""
        return await claim(self.route_owners, check=check, write=write, what=what,
                           owners=owners)
