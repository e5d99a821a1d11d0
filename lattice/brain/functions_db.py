"""The brain's storage operations on functions and on their invocations' tasks.

A function is one key, written once (create) and deleted (remove); there is no update. An
invocation writes its stdin and its PENDING task in one transaction, so a cell never sees a
task whose input is missing.
"""

from __future__ import annotations

import json

from lattice.brain import route_claims
from lattice.brain.tasks_db import encode as encode_task
from lattice.models import Task
from lattice.models.function import Function
from lattice.store import Delete, Etcd, ModRevisionIs, Put, keys
from lattice.store.etcd import Compare, Operation


def encode(function: Function) -> bytes:
    return json.dumps(function.to_dict(), separators=(",", ":")).encode()


class FunctionDB(route_claims.ClaimsRoutes):
    def __init__(self, etcd: Etcd) -> None:
        self._etcd = etcd

    async def create(self, function: Function, *, route_claim: int | None = None) -> bool:
        """Write a new function; False if the name is taken, or if `route_claim` is given and
        route claims moved past it (its host name is a route: brain/route_claims.py)."""
        key = keys.function(function.name)
        compare: list[Compare] = [ModRevisionIs(key, 0)]
        ops: list[Operation] = [Put(key, encode(function))]
        if route_claim is not None:
            claim_compare, claim_ops = route_claims.guard(route_claim)
            compare += claim_compare
            ops += claim_ops
        return await self._etcd.txn(compare, ops)

    async def get(self, name: str) -> Function | None:
        kv = await self._etcd.get(keys.function(name))
        return None if kv is None else Function.from_dict(json.loads(kv.value))

    async def list_functions(self) -> list[Function]:
        kvs, _ = await self._etcd.get_prefix(keys.FUNCTIONS)
        return sorted((Function.from_dict(json.loads(kv.value)) for kv in kvs),
                      key=lambda f: f.name)

    async def remove(self, name: str) -> bool:
        """Delete the function; False if it did not exist. Invocations in flight finish."""
        kv = await self._etcd.get(keys.function(name))
        if kv is None:
            return False
        key = keys.function(name)
        return await self._etcd.txn([ModRevisionIs(key, kv.mod_revision)], [Delete(key)])

    async def submit(self, task: Task, stdin: bytes) -> bool:
        """The invocation's stdin and its PENDING task, in one transaction."""
        key = keys.task(task.task_guid)
        return await self._etcd.txn(
            [ModRevisionIs(key, 0)],
            [Put(keys.task_stdin(task.task_guid), stdin), Put(key, encode_task(task))],
        )

    async def output(self, task_guid: str) -> tuple[bytes, bytes]:
        """(stdout, stderr's last lines) a cell kept for a completed invocation."""
        stdout = await self._etcd.get(keys.task_stdout(task_guid))
        stderr = await self._etcd.get(keys.task_stderr(task_guid))
        return (b"" if stdout is None else stdout.value, b"" if stderr is None else stderr.value)
