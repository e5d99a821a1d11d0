"""ltc's entry point: the command line imported with the cyclic garbage collector paused.

Importing ltc allocates tens of thousands of objects that live as long as the process (modules,
classes, functions, click's commands), and the collector ran about 40 times over them
meanwhile, freeing nothing: about 3 ms of every ltc start, 5% of `ltc create`'s time before it
sends its request. Paused for the imports, those objects are then frozen (`gc.freeze`: kept
where no later collection scans them), and the collector runs as usual for whatever the
command allocates.

`python -m lattice.cli.ltc_entry ARGS` and a console script `lattice.cli.ltc_entry:main` go
through here. Importing lattice.cli.ltc directly (tests, `python -m lattice.cli.ltc`) pauses
nothing: an import that froze its importer's objects would surprise it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable


def load() -> Callable[[], None]:
    """`lattice.cli.ltc.main`, imported with the collector paused, its objects frozen after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        from lattice.cli.ltc import main
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    return main


def main() -> None:
    load()()


if __name__ == "__main__":
    main()
