"""The autoscaling flags of `ltc create` and `ltc update`, declared once for both commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from lattice.client.autoscale_flags import AutoscaleFlags

F = TypeVar("F", bound=Callable[..., Any])

NAMES = ("min_instances", "max_instances", "idle_timeout", "idle_mode", "target_concurrency")


def autoscale_options(command: F) -> F:
    """Add the five flags; the command receives them as one `autoscale: AutoscaleFlags`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = AutoscaleFlags(**{name: kwargs.pop(name) for name in NAMES})
        return command(*args, autoscale=flags, **kwargs)

    options = [
        click.option("--min-instances", type=int, default=None,
                     help="Scale to zero: the instances an idle app keeps (0: none)."),
        click.option("--max-instances", type=int, default=None,
                     help="The most instances concurrent requests may ask for."),
        click.option("--idle-timeout", metavar="DURATION", default=None,
                     help="No request this long: the app is idle (e.g. 60s) [default: 60s]."),
        click.option("--idle-mode", default=None, metavar="stop|pause",
                     help="Idle instances are removed (stop), or the last one is frozen "
                          "with docker pause and thawed by the next request (pause) "
                          "[default: stop]."),
        click.option("--target-concurrency", type=int, default=None,
                     help="Requests in flight per instance above which the app scales up "
                          "[default: 10]."),
    ]
    decorated: Callable[..., Any] = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)    # click's decorators lose the signature
