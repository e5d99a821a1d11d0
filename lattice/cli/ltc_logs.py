"""ltc's log commands beyond `ltc logs`: `ltc debug-logs`, and crash logs in `ltc status`.

Crash logs live in the log aggregator, not in the brain: `ltc status` asks both, and still
answers for a removed app whose crash logs the aggregator keeps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from lattice.cli import messages
from lattice.client.app_runner import AppStatus
from lattice.client.connection import Connection
from lattice.client.errors import AppNotFound, LogStreamFailed

if TYPE_CHECKING:
    from logagg.crashes import CrashRecord  # a type only: `ltc create` does without logagg


@dataclass(frozen=True)
class StatusWithCrashes:
    app: str
    status: AppStatus | None              # None: the app was removed
    crashes: tuple[CrashRecord, ...]
    crashes_unavailable: str | None = None   # why the aggregator could not be asked
    scaling: dict[str, Any] | None = None    # scale to zero: state and cold starts

    def text(self) -> str:
        if self.status is None:
            return messages.removed_app_crashes(self.app, self.crashes)
        text = messages.app_status(self.status)
        if self.scaling is not None:
            text += messages.scaling_status(self.scaling)
        text += messages.crash_logs(self.crashes)
        if self.crashes_unavailable is not None:
            text += messages.crash_logs_unavailable(self.crashes_unavailable)
        return text

    def json(self) -> str:
        data: dict[str, Any]
        if self.status is None:
            data = {"process_guid": self.app, "removed": True}
        else:
            data = json.loads(messages.app_status_json(self.status))
        if self.scaling is not None:
            data["scaling"] = self.scaling
        data["crash_logs"] = messages.crash_logs_json(self.crashes)
        if self.crashes_unavailable is not None:
            data["crash_logs_unavailable"] = self.crashes_unavailable
        return json.dumps(data, indent=2)


async def status_with_crashes(connection: Connection, app: str) -> StatusWithCrashes:
    """The app's status and its crash logs; AppNotFound only if neither knows the app."""
    from lattice.client.logs import crash_logs  # on aiohttp: imported when used

    not_found: AppNotFound | None = None
    status: AppStatus | None = None
    try:
        status = await connection.apps.status(app)
    except AppNotFound as exc:
        not_found = exc
    scaling = None
    if status is not None and status.desired.scheduling.autoscale is not None:
        scaling = await connection.receptor.scaling(app)
    try:
        records = await crash_logs(connection.session, connection.target, app)
    except LogStreamFailed as exc:
        if not_found is not None:
            raise not_found from exc
        return StatusWithCrashes(app, status, (), str(exc), scaling=scaling)
    if not_found is not None and not records:
        raise not_found
    return StatusWithCrashes(app, status, tuple(records), scaling=scaling)


@click.command("debug-logs")
@click.option("--recent", is_flag=True,
              help="Print the recent lines and exit (with -f: then follow).")
@click.option("-f", "--follow", is_flag=True, help="With --recent: keep following afterwards.")
@click.pass_context
def debug_logs(ctx: click.Context, recent: bool, follow: bool) -> None:
    """Stream the box's own components' logs (app id lattice-debug); Ctrl-C ends."""
    from lattice.cli.ltc import LtcContext, reported_errors  # ltc imports this module
    from lattice.client.logs import DEBUG_APP_ID

    obj: LtcContext = ctx.obj
    with reported_errors():
        try:
            obj.run(lambda connection: print_logs(connection, DEBUG_APP_ID, recent=recent,
                                                  follow=follow))
        except KeyboardInterrupt:
            return  # the usual way to stop tailing: not a failure


async def print_logs(connection: Connection, app: str, *, recent: bool, follow: bool) -> None:
    """`ltc logs`: recent lines only, live lines only, or recent then live with no gap."""
    from lattice.client.logs import recent_logs, tail_logs  # on aiohttp: imported when used

    if recent and not follow:
        for envelope in await recent_logs(connection.session, connection.target, app):
            click.echo(messages.log_line(envelope))
        return
    async for envelope in tail_logs(connection.session, connection.target, app,
                                    with_recent=recent):
        click.echo(messages.log_line(envelope))


COMMANDS = (debug_logs,)
