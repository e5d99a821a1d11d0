"""A package's names imported from their modules on first use (PEP 562).

Used by the package `__init__`s that `ltc` imports on every start (lattice.models,
lattice.client, logagg): a command that needs one small module of a package must not pay for
all of them (tests/unit/test_ltc_imports.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, module_of: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: `name` is imported from the submodule
    `module_of[name]` and bound in the package, so that later look-ups skip this function."""

    def load(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        # __import__ rather than importlib.import_module: the same import, but one that
        # `python -X importtime` reports, so the start-up cost of each module stays visible.
        value = getattr(__import__(f"{package}.{module}", fromlist=[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
