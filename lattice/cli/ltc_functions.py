"""ltc's function commands: `ltc function create NAME IMAGE -- COMMAND`, `list`, `remove`.

A function runs COMMAND in a new container of IMAGE for each `POST http://NAME.<domain>/`:
the request body is its stdin, its stdout the answer (docs/architecture.md, "Functions").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from lattice.cli import messages
from lattice.client.connection import Connection
from lattice.models.errors import Problems
from lattice.models.function import (
    DEFAULT_CONCURRENCY,
    DEFAULT_CPU_WEIGHT,
    DEFAULT_MEMORY_MB,
    DEFAULT_QUEUE,
    DEFAULT_TIMEOUT_S,
    Function,
    check_function_name,
)

if TYPE_CHECKING:
    from lattice.cli.ltc import LtcContext  # ltc imports this module: no import at run time


def _context(ctx: click.Context) -> LtcContext:
    obj: LtcContext = ctx.obj
    return obj


@click.group("function")
def function() -> None:
    """Functions: a container run once per HTTP request to NAME.<domain>."""


@function.command("create", context_settings={"show_default": True})
@click.argument("name")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND ARGS...]")
@click.option("-m", "--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
              help="Memory limit of each run (0: none).")
@click.option("-c", "--cpu-weight", type=int, default=DEFAULT_CPU_WEIGHT,
              help="Relative CPU weight, 1-100.")
@click.option("-e", "--env", multiple=True, metavar="NAME=VALUE",
              help="Environment variable; repeatable.")
@click.option("--concurrency", type=int, default=DEFAULT_CONCURRENCY,
              help="Runs at once (per brain); more requests wait in line.")
@click.option("--queue", type=int, default=DEFAULT_QUEUE,
              help="Requests that may wait for a run (per brain); beyond: 429.")
@click.option("-t", "--timeout", default=f"{DEFAULT_TIMEOUT_S}s",
              help="A run longer than this is killed and answers 504: 30s, 2m.")
@click.pass_context
def create(ctx: click.Context, name: str, image: str, command: tuple[str, ...],
           memory_mb: int, cpu_weight: int, env: tuple[str, ...], concurrency: int,
           queue: int, timeout: str) -> None:
    """Create function NAME: each POST to NAME.<domain> runs COMMAND in IMAGE once."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.functions import function_client, function_request, wait_routed

    with reported_errors():
        request = function_request(
            name=name, image=image, command=command, memory_mb=memory_mb,
            cpu_weight=cpu_weight, env=env, concurrency=concurrency, queue=queue,
            timeout=timeout)

        async def work(connection: Connection) -> tuple[Function, str, bool]:
            created = await function_client(connection.session, connection.target
                                            ).create_function(request)
            url = connection.target.url_for(created.hostname(connection.target.domain))
            return created, url, await wait_routed(connection.session, url)

        created, url, live = _context(ctx).run(work)
    click.echo(messages.function_created(created, url))
    if not live:
        click.echo(messages.function_route_pending(url), err=True)


@function.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, the API's fields.")
@click.pass_context
def list_functions(ctx: click.Context, as_json: bool) -> None:
    """List the functions, with their URLs."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.functions import function_client

    with reported_errors():
        async def work(connection: Connection) -> tuple[list[Function], list[str]]:
            found = await function_client(connection.session, connection.target).functions()
            target = connection.target
            return found, [target.url_for(f.hostname(target.domain)) for f in found]

        found, urls = _context(ctx).run(work)
    click.echo(messages.function_list_json(found, urls) if as_json
               else messages.function_list(found, urls))


@function.command("remove")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Remove function NAME; runs in flight finish."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.errors import InvalidInput
    from lattice.client.functions import function_client

    with reported_errors():
        problems = Problems()
        check_function_name(problems, name)
        if problems.errors:
            raise InvalidInput(problems.errors)

        async def work(connection: Connection) -> None:
            await function_client(connection.session, connection.target).remove_function(name)

        _context(ctx).run(work)
    click.echo(messages.function_removed(name))


COMMANDS = (function,)
