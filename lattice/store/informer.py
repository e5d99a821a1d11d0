"""List-then-watch caches of an etcd prefix, shared by the brain, the cells and the router.

An Informer lists every key under its prefix, then watches from the revision of that list, so
no change falls between the two. When the watch is lost (etcd restarted, compacted, or cut off)
it keeps its last copy, waits, relists, and reports only what differs: a reader never sees the
cache emptied by an outage.

A process may also tell its informer of a write it has just made (`learn`), so that its own
readers see it one watch round trip sooner. The cache then holds each key at the newest revision
it knows, from either source, and ignores what is older: the watch's later report of the same
write, or an earlier change to the key still on its way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from lattice.store.errors import StoreError
from lattice.store.etcd import Etcd, KeyValue

log = structlog.get_logger("lattice.store.informer")

RETRY_INITIAL_S = 0.1
RETRY_MAX_S = 2.0


@dataclass(frozen=True)
class Change:
    key: str
    old: bytes | None     # None: the key is new
    new: bytes | None     # None: the key was deleted
    revision: int = 0     # the key's mod_revision after the change (0 for a delete)


ChangeHandler = Callable[[Change], None]


class Informer:
    def __init__(self, etcd: Etcd, prefix: str, on_change: ChangeHandler | None = None) -> None:
        self._etcd = etcd
        self.prefix = prefix
        self._on_change = on_change
        self.items: dict[str, KeyValue] = {}
        self.synced = asyncio.Event()      # set once the first list has been loaded
        self.connected = False             # False while the watch is down and the copy may be stale
        self.revision = 0

    def values(self) -> list[bytes]:
        return [kv.value for kv in self.items.values()]

    def learn(self, key: str, value: bytes, revision: int) -> bool:
        """This process put `value` at `key` at store `revision`: hold it and report it now,
        unless the cache is not loaded yet or its watch has already passed that revision (then
        it holds this write or a newer state already). True if the change was reported."""
        if not key.startswith(self.prefix):
            raise ValueError(f"{key!r} is not under this informer's prefix {self.prefix!r}")
        if not self.synced.is_set() or revision <= self.revision:
            return False
        before = self.items.get(key)
        if before is not None and revision <= before.mod_revision:
            return False
        self.items[key] = KeyValue(key, value, revision, 0, 0)
        self._emit(Change(key, None if before is None else before.value, value, revision))
        return True

    def _emit(self, change: Change) -> None:
        if self._on_change is not None:
            self._on_change(change)

    async def _relist(self) -> int:
        listed, revision = await self._etcd.get_prefix(self.prefix)
        fresh = {kv.key: kv for kv in listed}
        old = self.items
        # Kept: what was learnt from a write made after the list was read. The watch, which
        # starts after the list, reports that write (and whatever followed it) again.
        newer = {key: kv for key, kv in old.items() if kv.mod_revision > revision}
        self.items = fresh
        fresh.update(newer)
        for key, kv in fresh.items():
            before = old.get(key)
            if before is None or before.mod_revision != kv.mod_revision:
                self._emit(Change(key, None if before is None else before.value, kv.value,
                                  kv.mod_revision))
        for key, kv in old.items():
            if key not in fresh:
                self._emit(Change(key, kv.value, None))
        self.revision = revision
        self.synced.set()
        return revision

    async def run(self) -> None:
        """List and watch until cancelled; never returns on its own."""
        delay = RETRY_INITIAL_S
        while True:
            try:
                revision = await self._relist()
                self.connected = True
                delay = RETRY_INITIAL_S
                async for event in self._etcd.watch_prefix(self.prefix, revision + 1):
                    self.revision = event.mod_revision
                    before = self.items.get(event.key)
                    if before is not None and event.mod_revision <= before.mod_revision:
                        continue        # learnt already (`learn`), or older than what was
                    if event.kind == "put":
                        self.items[event.key] = KeyValue(
                            event.key, event.value, event.mod_revision, 0, 0
                        )
                        self._emit(Change(event.key, None if before is None else before.value,
                                          event.value, event.mod_revision))
                    elif before is not None:
                        del self.items[event.key]
                        self._emit(Change(event.key, before.value, None))
            except StoreError as exc:
                if self.connected:
                    log.warning("watch-lost", prefix=self.prefix, error=str(exc))
                self.connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
