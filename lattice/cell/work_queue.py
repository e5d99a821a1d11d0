"""An idempotent queue of keys (instance guids), as Diego's rep keeps its operations.

Many triggers may push the same key (an assignment change, a `die` event, a periodic sync); it
is queued once. A key is never handed to two workers at once; pushed again while a worker has
it, it is handed out again after `done`, because the newer trigger may have seen newer state.
"""

from __future__ import annotations

import asyncio


class KeyedWorkQueue:
    def __init__(self) -> None:
        self._pending: dict[str, None] = {}    # insertion-ordered set
        self._active: set[str] = set()
        self._changed = asyncio.Event()

    def push(self, key: str) -> None:
        if key not in self._pending:
            self._pending[key] = None
            self._changed.set()

    async def get(self) -> str:
        while True:
            for key in self._pending:
                if key not in self._active:
                    del self._pending[key]
                    self._active.add(key)
                    return key
            self._changed.clear()
            await self._changed.wait()

    def done(self, key: str) -> None:
        self._active.discard(key)
        if key in self._pending:
            self._changed.set()

    def __len__(self) -> int:
        return len(self._pending)
