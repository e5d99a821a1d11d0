"""ltc's task commands: submit-task, task, cancel-task, delete-task and run-task.

`run-task` exits with the task's own exit status (0 on success), so scripts can use it like
`docker run`; failures before the task ran (bad target, bad input) keep ltc's exit codes, and a
task that never ran a process (cancelled, image missing) exits with CommandFailed (14).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lattice.cli import messages
from lattice.cli.exit_codes import ExitCode
from lattice.client.app_spec import parse_duration
from lattice.client.connection import Connection
from lattice.client.errors import InvalidInput
from lattice.models import FieldError
from lattice.models.desired import APP_NAME_PATTERN

if TYPE_CHECKING:
    from lattice.cli.ltc import LtcContext  # ltc imports this module: no import at run time
    from lattice.models import Task  # a type only: `ltc create` does without the task model


def _context(ctx: click.Context) -> LtcContext:
    obj: LtcContext = ctx.obj
    return obj


def _check_guid(guid: str) -> None:
    if not APP_NAME_PATTERN.match(guid) or len(guid) > 63:
        raise InvalidInput([FieldError("task_guid", f"{guid!r} must be 1-63 letters, digits, "
                                                    "'_' or '-'")])


@click.command("submit-task")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def submit_task(ctx: click.Context, file: Path) -> None:
    """Submit the task described in FILE (JSON, Diego's task fields)."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.tasks import read_task_file, task_client  # on aiohttp: imported when used

    with reported_errors():
        request = read_task_file(file)

        async def work(connection: Connection) -> Task:
            return await task_client(connection.session, connection.target).submit_task(request)

        submitted = _context(ctx).run(work)
    click.echo(messages.task_submitted(submitted.task_guid))


@click.command("task")
@click.argument("guid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, Diego's field names.")
@click.pass_context
def show_task(ctx: click.Context, guid: str, as_json: bool) -> None:
    """Show a task: its state and, once completed, failed, failure reason and result."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.tasks import task_client  # on aiohttp: imported when used

    with reported_errors():
        _check_guid(guid)

        async def work(connection: Connection) -> Task:
            return await task_client(connection.session, connection.target).task(guid)

        found = _context(ctx).run(work)
    click.echo(messages.task_json(found) if as_json else messages.task_detail(found))


@click.command("cancel-task")
@click.argument("guid")
@click.pass_context
def cancel_task(ctx: click.Context, guid: str) -> None:
    """Cancel a task: its container is killed and it completes as failed."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.tasks import task_client  # on aiohttp: imported when used

    with reported_errors():
        _check_guid(guid)

        async def work(connection: Connection) -> None:
            await task_client(connection.session, connection.target).cancel_task(guid)

        _context(ctx).run(work)
    click.echo(messages.task_cancelled(guid))


@click.command("delete-task")
@click.argument("guid")
@click.pass_context
def delete_task(ctx: click.Context, guid: str) -> None:
    """Delete a completed task."""
    from lattice.cli.ltc import reported_errors
    from lattice.client.tasks import task_client  # on aiohttp: imported when used

    with reported_errors():
        _check_guid(guid)

        async def work(connection: Connection) -> None:
            await task_client(connection.session, connection.target).delete_task(guid)

        _context(ctx).run(work)
    click.echo(messages.task_deleted(guid))


@click.command("run-task", context_settings={"show_default": True})
@click.argument("name")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND ARGS...]")
@click.option("-m", "--memory-mb", type=int, default=128, help="Memory limit (0: none).")
@click.option("-c", "--cpu-weight", type=int, default=100, help="Relative CPU weight, 1-100.")
@click.option("-e", "--env", multiple=True, metavar="NAME=VALUE",
              help="Environment variable; repeatable.")
@click.option("-t", "--timeout", default=None,
              help="Give up waiting after this long (30s, 2m) [default: no limit].")
@click.pass_context
def run_task(ctx: click.Context, name: str, image: str, command: tuple[str, ...],
             memory_mb: int, cpu_weight: int, env: tuple[str, ...], timeout: str | None
             ) -> None:
    """Run IMAGE once as task NAME-<id>, stream its logs, exit with its exit status.

    The task is deleted once it has completed.
    """
    from lattice.cli.ltc import reported_errors
    from lattice.client.tasks import run_and_follow  # on aiohttp: imported when used

    with reported_errors():
        problems: list[FieldError] = []
        if not APP_NAME_PATTERN.match(name) or len(name) > 50:
            problems.append(FieldError("name", f"{name!r} must be 1-50 letters, digits, '_' "
                                               "or '-'"))
        variables = []
        for item in env:
            key, sep, value = item.partition("=")
            if not sep or not key:
                problems.append(FieldError("env", f"{item!r} is not NAME=VALUE"))
            variables.append({"name": key, "value": value})
        timeout_s = parse_duration(timeout) if timeout is not None else None
        if problems:
            raise InvalidInput(problems)
        # A fresh guid per run: NAME may be run again while an earlier run is kept.
        guid = f"{name}-{uuid.uuid4().hex[:8]}"
        request: dict[str, Any] = {
            "task_guid": guid, "image": image, "memory_mb": memory_mb,
            "cpu_weight": cpu_weight, "env": variables,
        }
        if command:
            request["command"] = list(command)

        async def work(connection: Connection) -> Task:
            return await run_and_follow(
                connection.session, connection.target, request,
                lambda envelope: click.echo(messages.log_line(envelope)), timeout_s=timeout_s,
            )

        done = _context(ctx).run(work)
    if done.failed:
        click.echo(f"Error: {messages.task_run_failed(done)}", err=True)
    if done.exit_status is not None:
        raise click.exceptions.Exit(done.exit_status)
    raise click.exceptions.Exit(ExitCode.COMMAND_FAILED if done.failed else ExitCode.SUCCESS)


COMMANDS = (submit_task, show_task, cancel_task, delete_task, run_task)
