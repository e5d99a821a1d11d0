"""What the API tells about the box itself: its version and domain, and its cells.

Apart from receptor.py, which imports these only in the calls that return them: `ltc create`
does without them, and each dataclass costs about 0.3 ms to set up at import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lattice.models.cell import CellPresence


@dataclass(frozen=True)
class Info:
    version: str
    domain: str


@dataclass(frozen=True)
class CellUsage:
    memory_mb: int
    disk_mb: int
    containers: int


@dataclass(frozen=True)
class CellState:
    presence: CellPresence
    used: CellUsage
    instances_by_app: dict[str, int]
