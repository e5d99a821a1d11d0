"""The brain's cache of every function, kept by an informer on /lattice/v1/functions/."""

from __future__ import annotations

import asyncio
import json

import structlog

from lattice.models.function import Function
from lattice.store import Change, Etcd, Informer, keys

log = structlog.get_logger("lattice.brain.function_view")


class FunctionView:
    def __init__(self, etcd: Etcd, domain: str) -> None:
        self._domain = domain
        self._functions: dict[str, Function] = {}
        self.changed = asyncio.Event()      # set on every change; the route publisher clears it
        self.informer = Informer(etcd, keys.FUNCTIONS, self._on_change)

    def _on_change(self, change: Change) -> None:
        name = change.key[len(keys.FUNCTIONS):]
        if change.new is None:
            self._functions.pop(name, None)
        else:
            try:
                self._functions[name] = Function.from_dict(json.loads(change.new))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("function-unreadable", key=change.key, error=str(exc))
                self._functions.pop(name, None)
        self.changed.set()

    def get(self, name: str) -> Function | None:
        return self._functions.get(name)

    def functions(self) -> list[Function]:
        return sorted(self._functions.values(), key=lambda f: f.name)

    def routes(self) -> dict[str, str]:
        """host name -> function name, for every function."""
        return {f.hostname(self._domain): f.name for f in self._functions.values()}

    def name_of_host(self, host: str) -> str | None:
        """The function a request's Host header names (case and `:port` ignored), if any."""
        name = host.strip().lower()
        head, colon, port = name.rpartition(":")
        if colon and port.isdigit():
            name = head
        name = name.rstrip(".")
        suffix = "." + self._domain.lower()
        if not name.endswith(suffix):
            return None
        function = name[: -len(suffix)]
        return function if function in self._functions else None
