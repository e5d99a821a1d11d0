"""The cell: runs the instances assigned to it as Docker containers (Diego's rep + executor).

Public surface: `CellConfig`, `serve` (run until cancelled) and `remove_cell_containers`
(what `lattice up` calls on shutdown). Everything else is internal to this package.
"""

from lattice.cell.config import CellConfig
from lattice.cell.main import remove_cell_containers, serve

__all__ = ["CellConfig", "remove_cell_containers", "serve"]
