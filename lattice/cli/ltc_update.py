"""ltc's update commands: `ltc update APP` and `ltc submit-lrp FILE.json`.

Both wait until the app runs what was asked for everywhere: for a new image or env that is
the end of the brain's rolling, health-gated replacement of every instance.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lattice.cli import messages
from lattice.cli.ltc_autoscale import autoscale_options
from lattice.client.autoscale_flags import AutoscaleFlags
from lattice.client.connection import Connection

if TYPE_CHECKING:
    from lattice.cli.ltc import LtcContext  # ltc imports this module: no import at run time

TIMEOUT_HELP = "How long to wait until every instance runs the update: 30, 30s, 2m."


@click.command("update")
@click.argument("app")
@click.option("-i", "--instances", type=int, help="Number of instances.")
@click.option("-R", "--http-route", "routes", multiple=True, metavar="HOST[:PORT]",
              help="Replace the routes; a name without a dot is under the box's domain. "
                   "Repeatable.")
@click.option("--no-routes", is_flag=True, help="Remove every route.")
@click.option("--share-routes/--no-share-routes", "share_routes", default=None,
              help="Let another app that shares them route the same hosts, or stop that.")
@click.option("-e", "--env", multiple=True, metavar="NAME=VALUE",
              help="Replace the environment (rolls every instance). Repeatable.")
@click.option("--image", help="Run another image (rolls every instance).")
@click.option("--syslog-drain", "syslog_drains", multiple=True, metavar="tcp://HOST:PORT",
              help="Replace the syslog drains (no restart). Repeatable.")
@click.option("--no-syslog-drains", is_flag=True, help="Remove every syslog drain.")
@click.option("-t", "--timeout", envvar="LTC_TIMEOUT", default="120s", show_default=True,
              help=TIMEOUT_HELP)
@click.pass_context
@autoscale_options
def update(ctx: click.Context, app: str, instances: int | None, routes: tuple[str, ...],
           no_routes: bool, env: tuple[str, ...], image: str | None, timeout: str,
           syslog_drains: tuple[str, ...] = (), no_syslog_drains: bool = False,
           autoscale: AutoscaleFlags | None = None,
           share_routes: bool | None = None) -> None:
    """Change APP's instances, routes, env or image, and wait until it runs the change.

    A new image or env replaces the instances one at a time: each new one must pass its
    health check before an old one is stopped, and no request is lost meanwhile.
    """
    from lattice.cli.ltc import progress_printer, reported_errors
    from lattice.client.app_updater import (  # here: every ltc command loads this module
        UpdateFlags,
        parse_update_flags,
        update_app,
    )

    obj: LtcContext = ctx.obj
    with reported_errors():
        spec, timeout_s = parse_update_flags(UpdateFlags(
            name=app, instances=instances, routes=routes, no_routes=no_routes, env=env,
            image=image, timeout=timeout, syslog_drains=syslog_drains,
            no_syslog_drains=no_syslog_drains, autoscale=autoscale or AutoscaleFlags(),
            share_routes=share_routes,
        ))

        async def work(connection: Connection) -> None:
            await update_app(connection.receptor, spec, connection.target.domain,
                             timeout_s=timeout_s, on_progress=progress_printer())

        obj.run(work)
    click.echo(messages.app_updated(app, spec.rolls))


@click.command("submit-lrp")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-t", "--timeout", envvar="LTC_TIMEOUT", default="120s", show_default=True,
              help=TIMEOUT_HELP)
@click.pass_context
def submit_lrp_command(ctx: click.Context, file: Path, timeout: str) -> None:
    """Create the app described in FILE (a DesiredLRP as JSON), or update it if it exists."""
    from lattice.cli.ltc import progress_printer, reported_errors
    from lattice.client.app_spec import parse_duration
    from lattice.client.app_updater import read_lrp_file, submit_lrp

    obj: LtcContext = ctx.obj
    with reported_errors():
        timeout_s = parse_duration(timeout)
        lrp = read_lrp_file(file)

        async def work(connection: Connection) -> tuple[str, bool]:
            return await submit_lrp(connection.receptor, lrp, timeout_s=timeout_s,
                                    on_progress=progress_printer())

        guid, created = obj.run(work)
    click.echo(messages.lrp_submitted(guid, created))


COMMANDS = (update, submit_lrp_command)
