"""A small typed face over aetcd: the only module in the box that imports it.

Keys are `str`, values are `bytes`. Every aetcd or grpc error is translated into a StoreError
with `raise ... from`, so callers never see a third-party exception.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aetcd
import aetcd.exceptions
import aetcd.transactions
import grpc

from lattice.store.batches import MAX_TXN_OPS
from lattice.store.errors import StoreError, StoreUnavailable, TxnTooLarge, WatchLost

REQUEST_TIMEOUT_S = 5
# gRPC's default 4 MiB limit on a reply is one list of ~13,000 ActualLRPs: past that an informer's
# relist failed and the brain died (bench/scheduler/scale.py, 100,000 instances). etcd's own Go
# client allows math.MaxInt32; so does this one.
CHANNEL_OPTIONS = {"grpc.max_receive_message_length": 2**31 - 1}


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True)
class WatchEvent:
    kind: Literal["put", "delete"]
    key: str
    value: bytes          # empty for a delete
    mod_revision: int


# -- transaction building blocks: plain data, turned into aetcd objects only in `txn` ----------


@dataclass(frozen=True)
class ModRevisionIs:
    """Compare: the key was last written at `revision` (0 means: the key does not exist)."""

    key: str
    revision: int


@dataclass(frozen=True)
class Exists:
    """Compare: the key exists, whatever its revision (a write only while its owner lives)."""

    key: str


Compare = ModRevisionIs | Exists


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int | None = None


@dataclass(frozen=True)
class Delete:
    key: str


@dataclass(frozen=True)
class DeletePrefix:
    prefix: str


Operation = Put | Delete | DeletePrefix


# -- reads made together, at one revision, by `read` -----------------------------------------


@dataclass(frozen=True)
class Get:
    """Read: one key (nothing when it does not exist)."""

    key: str


@dataclass(frozen=True)
class GetPrefix:
    """Read: every key under `prefix`."""

    prefix: str


Read = Get | GetPrefix


def parse_endpoints(endpoints: str) -> list[tuple[str, int]]:
    """`http://127.0.0.1:2379,127.0.0.2:2379` -> [(host, port), ...]."""
    result: list[tuple[str, int]] = []
    for raw in endpoints.split(","):
        raw = raw.strip()
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"http://{raw}")
        if not parts.hostname:
            raise ValueError(f"bad etcd endpoint {raw!r}: expected host:port")
        result.append((parts.hostname, parts.port or 2379))
    if not result:
        raise ValueError("no etcd endpoint given")
    return result


def _prefix_end(prefix: str) -> bytes:
    return aetcd.utils.prefix_range_end(prefix.encode())  # type: ignore[no-any-return]


def _to_kv(kv: aetcd.rtypes.KeyValue) -> KeyValue:
    return KeyValue(
        key=kv.key.decode(),
        value=kv.value,
        mod_revision=kv.mod_revision,
        create_revision=kv.create_revision,
        lease=kv.lease,
    )


class _ChannelClosed(Exception):
    """A request in flight on a channel that another request's failure closed (see below)."""


@contextlib.contextmanager
def _closed_channel_is_unavailable() -> Iterator[None]:
    """grpc.aio ends the calls in flight on a channel that is closed with CancelledError. When
    `_reset` closes the shared channel because one request failed, the others in flight must fail
    as an unavailable store, not cancel the tasks that made them: that silently ended the brain's
    leader election, or a component's service record, while etcd was unreachable. A task that
    is really being cancelled still is."""
    try:
        yield
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is None or task.cancelling():
            raise
        raise _ChannelClosed("the connection to etcd was closed under the request") from exc


_UNAVAILABLE = (
    _ChannelClosed,
    aetcd.exceptions.ConnectionFailedError,
    aetcd.exceptions.ConnectionTimeoutError,
    aetcd.exceptions.InternalError,
    grpc.RpcError,
    asyncio.TimeoutError,
    OSError,
)


class Etcd:
    """One connection to an etcd cluster, given as a comma-separated endpoint list."""

    def __init__(self, endpoints: str) -> None:
        self.endpoints = endpoints
        self._targets = parse_endpoints(endpoints)
        self._client: aetcd.Client | None = None
        self._connect_lock = asyncio.Lock()

    async def _conn(self) -> aetcd.Client:
        if self._client is not None:
            return self._client
        async with self._connect_lock:
            if self._client is not None:
                return self._client
            last: BaseException | None = None
            for host, port in self._targets:
                client = aetcd.Client(host=host, port=port, timeout=REQUEST_TIMEOUT_S,
                                      options=CHANNEL_OPTIONS)
                try:
                    await client.connect()
                    await client.status()
                except _UNAVAILABLE as exc:
                    last = exc
                    await client.close()
                    continue
                self._client = client
                return client
            raise StoreUnavailable(f"cannot reach etcd at {self.endpoints}") from last

    async def _reset(self, used: aetcd.Client | None) -> None:
        """Drop the connection `used` by a request that failed (None: whichever is open). One
        that another request has already replaced is left alone: closing the new one would fail
        every request in flight on it too."""
        if used is not None and used is not self._client:
            return
        client, self._client = self._client, None
        if client is not None:
            # The connection may already be broken; then there is nothing left to close.
            with contextlib.suppress(*_UNAVAILABLE), _closed_channel_is_unavailable():
                await client.close()

    async def close(self) -> None:
        await self._reset(None)

    @contextlib.asynccontextmanager
    async def _request(
        self, client: aetcd.Client, what: str, *, lease: bool = False, reset: bool = True
    ) -> AsyncIterator[None]:
        """One request on `client`: a failure to reach etcd is StoreUnavailable("etcd WHAT:
        ..."), after dropping the connection (`reset`). `lease`: aetcd's ClientError, which its
        lease calls raise when etcd is away, counts as such a failure too."""
        errors = (*_UNAVAILABLE, aetcd.exceptions.ClientError) if lease else _UNAVAILABLE
        try:
            with _closed_channel_is_unavailable():
                yield
        except errors as exc:
            if reset:
                await self._reset(client)
            raise StoreUnavailable(f"etcd {what}: {exc}") from exc

    # -- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        client = await self._conn()
        async with self._request(client, f"get {key}"):
            result = await client.get(key.encode())
        return None if result is None else _to_kv(result)

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under `prefix`, and the store revision the read was made at."""
        client = await self._conn()
        async with self._request(client, f"get_prefix {prefix}"):
            result = await client.get_prefix(prefix.encode())
        return [_to_kv(kv) for kv in result], result.header.revision

    async def read(self, reads: Sequence[Read]) -> list[list[KeyValue]]:
        """What each of `reads` finds, all at one store revision, in one round trip: a
        transaction of reads only, so no write can fall between two of them."""
        if len(reads) > MAX_TXN_OPS:
            raise TxnTooLarge(f"{len(reads)} reads in one transaction; etcd accepts at most "
                              f"{MAX_TXN_OPS}")
        ranges = [
            aetcd.transactions.Get(r.key.encode()) if isinstance(r, Get)
            else aetcd.transactions.Get(r.prefix.encode(), range_end=_prefix_end(r.prefix))
            for r in reads
        ]
        client = await self._conn()
        async with self._request(client, "read"):
            _, responses = await client.transaction(compare=[], success=ranges, failure=[])
        # aetcd answers each range with a list of (value, KeyValue) pairs.
        return [[_to_kv(kv) for _, kv in found] for found in responses]

    # -- writes ---------------------------------------------------------------------------

    async def put(self, key: str, value: bytes, lease: int | None = None) -> int:
        client = await self._conn()
        async with self._request(client, f"put {key}"):
            result = await client.put(key.encode(), value, lease=lease)
        return int(result.header.revision)

    async def delete_prefix(self, prefix: str) -> None:
        client = await self._conn()
        async with self._request(client, f"delete_prefix {prefix}"):
            await client.delete_prefix(prefix.encode())

    async def txn(self, compare: Sequence[Compare], success: Sequence[Operation]) -> bool:
        """Apply `success` atomically if every comparison holds; True if it was applied."""
        succeeded, _ = await self._txn(compare, success)
        return succeeded

    async def txn_revision(
        self, compare: Sequence[Compare], success: Sequence[Operation]
    ) -> int | None:
        """`txn`, telling the store revision the writes were made at (every key they put has
        that mod_revision), or None when a comparison failed and nothing was written."""
        if not success:
            raise ValueError("a transaction without operations has no revision of its own")
        succeeded, responses = await self._txn(compare, success)
        if not succeeded:
            return None
        # etcd stamps each write's answer with the transaction's revision.
        first = responses[0]
        answer = first.response_put if first.HasField("response_put") else (
            first.response_delete_range)
        return int(answer.header.revision)

    async def _txn(
        self, compare: Sequence[Compare], success: Sequence[Operation]
    ) -> tuple[bool, list[Any]]:
        if len(compare) > MAX_TXN_OPS or len(success) > MAX_TXN_OPS:
            # Refused here with what went wrong, rather than by etcd with an InvalidArgument
            # the caller cannot tell from a bad request.
            raise TxnTooLarge(
                f"a transaction of {len(compare)} compares and {len(success)} operations; "
                f"etcd accepts at most {MAX_TXN_OPS} of each (split it: store/batches.py)"
            )
        client = await self._conn()
        comparisons = []
        for c in compare:
            if isinstance(c, Exists):
                comparisons.append(aetcd.transactions.Version(c.key.encode()) > 0)
            else:
                comparisons.append(aetcd.transactions.Mod(c.key.encode()) == c.revision)
        ops: list[object] = []
        for op in success:
            if isinstance(op, Put):
                ops.append(aetcd.transactions.Put(op.key.encode(), op.value, lease=op.lease))
            elif isinstance(op, Delete):
                ops.append(aetcd.transactions.Delete(op.key.encode()))
            else:
                ops.append(
                    aetcd.transactions.Delete(op.prefix.encode(), range_end=_prefix_end(op.prefix))
                )
        async with self._request(client, "txn"):
            succeeded, responses = await client.transaction(
                compare=comparisons, success=ops, failure=[]
            )
        return bool(succeeded), list(responses)

    # -- leases ---------------------------------------------------------------------------

    async def grant_lease(self, ttl_s: int) -> int:
        client = await self._conn()
        async with self._request(client, "lease grant", lease=True):
            lease = await client.lease(ttl_s)
        return int(lease.id)

    async def keep_alive(self, lease_id: int) -> bool:
        """Refresh a lease once; False if it has already expired."""
        client = await self._conn()
        async with self._request(client, "lease keep-alive", lease=True):
            reply = await client.refresh_lease(lease_id)
        return reply is not None and int(reply.TTL) > 0

    async def revoke_lease(self, lease_id: int) -> None:
        client = await self._conn()
        async with self._request(client, "lease revoke", lease=True, reset=False):
            await client.revoke_lease(lease_id)

    # -- watches --------------------------------------------------------------------------

    async def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Events under `prefix` from `start_revision` on. Raises WatchLost when the stream ends."""
        client = await self._conn()
        try:
            with _closed_channel_is_unavailable():
                watch = await client.watch_prefix(prefix.encode(), start_revision=start_revision)
        except (*_UNAVAILABLE, aetcd.exceptions.ClientError) as exc:
            # ClientError covers aetcd's WatchTimeoutError, seen while etcd restarts.
            await self._reset(client)
            raise WatchLost(f"cannot watch {prefix}: {exc}") from exc
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Python 3.11's wait_for, used inside aetcd's watch set-up, can swallow a cancel
            # that arrives as the set-up completes; the task still counts the request. Honour it
            # here, or the caller would wait for events forever.
            with contextlib.suppress(
                *_UNAVAILABLE, aetcd.exceptions.ClientError, RuntimeError, AttributeError
            ):
                await asyncio.wait_for(watch.cancel(), timeout=1)
            raise asyncio.CancelledError
        lost: BaseException | None = None
        try:
            with _closed_channel_is_unavailable():
                async for event in watch:
                    kind: Literal["put", "delete"] = "put" if event.kind == "PUT" else "delete"
                    yield WatchEvent(
                        kind=kind,
                        key=event.kv.key.decode(),
                        value=event.kv.value if kind == "put" else b"",
                        mod_revision=event.kv.mod_revision,
                    )
        except (*_UNAVAILABLE, aetcd.exceptions.ClientError) as exc:
            lost = exc
        finally:
            # Cancel before any reset: aetcd's cancel needs the client it was made with. When
            # the stream is already gone (AttributeError, RuntimeError from a closed channel)
            # there is nothing left to cancel.
            with contextlib.suppress(
                *_UNAVAILABLE, aetcd.exceptions.ClientError, RuntimeError, AttributeError
            ):
                await asyncio.wait_for(watch.cancel(), timeout=1)
        await self._reset(client)
        raise WatchLost(f"watch on {prefix} ended: {lost or 'stream closed'}") from lost


__all__ = [
    "Compare",
    "Delete",
    "DeletePrefix",
    "Etcd",
    "Exists",
    "Get",
    "GetPrefix",
    "KeyValue",
    "ModRevisionIs",
    "Operation",
    "Put",
    "Read",
    "StoreError",
    "StoreUnavailable",
    "TxnTooLarge",
    "WatchEvent",
    "WatchLost",
    "parse_endpoints",
]
