"""ltc commands that watch the cluster: `cells`, `visualize`, `version` and `test`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from lattice import __version__
from lattice.cli import messages
from lattice.cli.exit_codes import ExitCode
from lattice.client.app_spec import parse_duration
from lattice.client.box_info import CellState
from lattice.client.connection import Connection
from lattice.models import ActualLRP

if TYPE_CHECKING:
    from lattice.cli.ltc import LtcContext  # ltc imports this module: no import at run time

JSON_HELP = "Machine-readable output."
# lattice.images.DEMO_IMAGE (a unit test checks they agree): importing that module brings tarfile
# and shutil into every ltc start for the sake of this option's default.
DEMO_IMAGE = "lattice/demo-app:latest"


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """ltc's own error reporting (message and exit code), imported when a command runs."""
    from lattice.cli.ltc import reported_errors as ltc_reported_errors

    with ltc_reported_errors():
        yield


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def cells(obj: LtcContext, as_json: bool) -> None:
    """Each cell's capacity, free resources and instance count."""
    with reported_errors():
        found = obj.run(lambda connection: connection.receptor.cells())
    click.echo(messages.cells_json(found) if as_json else messages.cells_table(found))


async def _cells_and_actuals(connection: Connection) -> tuple[list[CellState], list[ActualLRP]]:
    return await connection.receptor.cells(), await connection.receptor.actual_lrps()


@click.command()
@click.option("--rate", default=None, metavar="DURATION",
              help="Refresh every DURATION (2s, 1m) until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def visualize(obj: LtcContext, rate: str | None, as_json: bool) -> None:
    """One mark per instance per cell, coloured by state; missing cells are flagged."""
    with reported_errors():
        interval = None if rate is None else parse_duration(rate)

        async def show(connection: Connection) -> None:
            import asyncio  # not at the top: `ltc create` and `ltc --help` do without it

            while True:
                found, actuals = await _cells_and_actuals(connection)
                if as_json:
                    click.echo(messages.visualize_json(found, actuals))
                else:
                    if interval is not None:
                        click.clear()
                    click.echo(messages.visualize(found, actuals))
                if interval is None:
                    return
                await asyncio.sleep(interval)

        try:
            obj.run(show)
        except KeyboardInterrupt:
            return   # the way to stop refreshing: not a failure


@click.command()
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_obj
def version(obj: LtcContext, as_json: bool) -> None:
    """The client's and the box's versions; warns when they differ."""
    with reported_errors():
        info = obj.run(lambda connection: connection.receptor.info())
    if as_json:
        click.echo(messages.version_json(__version__, info.version))
    else:
        click.echo(messages.version_lines(__version__, info.version))
    if info.version != __version__:
        click.echo(messages.version_mismatch(__version__, info.version), err=True)


@click.command(name="test")
@click.option("--image", default=DEMO_IMAGE, show_default=True,
              help="An image on the box that serves HTTP on its first EXPOSEd port.")
@click.option("-t", "--timeout", default="120s", show_default=True,
              help="How long each step may take.")
@click.pass_obj
def smoke_test(obj: LtcContext, image: str, timeout: str) -> None:
    """Smoke-test the box: create an app, route to it, scale to 3, read its logs, remove it."""
    # Imported here: the smoke test runs on aiohttp, which the other commands do without.
    from lattice.client.smoke import SmokeTestFailed, StepResult, run_smoke_test

    with reported_errors():
        timeout_s = parse_duration(timeout)

        def show(result: StepResult) -> None:
            click.echo(messages.smoke_step(result))

        started = time.monotonic()
        try:
            results = obj.run(lambda connection: run_smoke_test(
                connection, image=image, timeout_s=timeout_s, on_step=show))
        except SmokeTestFailed as exc:
            click.echo(f"Error: {messages.smoke_failed(exc.results)}", err=True)
            raise click.exceptions.Exit(ExitCode.COMMAND_FAILED) from exc
    click.echo(messages.smoke_passed(len(results), time.monotonic() - started))


COMMANDS = (cells, visualize, version, smoke_test)
