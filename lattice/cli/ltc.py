"""`ltc`: the user's client. A thin shell: parse arguments, call `lattice.client`, print.

The click context object (`LtcContext`) carries the config path and the target; each command
opens one connection (`lattice.client.connect`) and runs its work in one event loop, except
`ltc create`, which runs without one (lattice/client/app_creator.py: start-up time). Failures
come out of `lattice.client` as `ClientError`s and leave here with the message from
`messages` and the exit code from `exit_codes`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from lattice import __version__
from lattice.auth import Credentials
from lattice.cli import messages
from lattice.cli.exit_codes import ExitCode, exit_code_for
from lattice.cli.ltc_autoscale import autoscale_options
from lattice.client.app_creator import create_app
from lattice.client.app_spec import (
    CreateFlags,
    check_app_name,
    check_instances,
    parse_create_flags,
    parse_duration,
)
from lattice.client.autoscale_flags import AutoscaleFlags
from lattice.client.errors import BadTarget, ClientError, InvalidInput, Unauthorized
from lattice.client.target import (
    CONFIG_ENV,
    Target,
    default_config_path,
    load_target,
    parse_target,
    save_target,
)
from lattice.models import FieldError

if TYPE_CHECKING:
    # Types only: `ltc create` imports the waiting code once its request is sent
    # (lattice/client/app_creator.py), and needs no event loop nor Connection.
    from lattice.client.app_runner import Progress
    from lattice.client.box_info import Info
    from lattice.client.connection import Connection

T = TypeVar("T")

TIMEOUT_HELP = "How long to wait for every instance to be RUNNING: 30, 30s, 2m."

# The commands other modules define (each in its COMMANDS), by name: a module is imported when
# one of its commands runs or `ltc --help` lists them, so `ltc create` does without them all
# (3.5 ms; tests/unit/test_ltc_imports.py, which also checks this table against the modules).
COMMAND_MODULES = {
    **dict.fromkeys(["cells", "visualize", "version", "test"], "lattice.cli.ltc_cluster"),
    "function": "lattice.cli.ltc_functions",
    "debug-logs": "lattice.cli.ltc_logs",
    **dict.fromkeys(["submit-task", "task", "cancel-task", "delete-task", "run-task"],
                    "lattice.cli.ltc_tasks"),
    **dict.fromkeys(["update", "submit-lrp"], "lattice.cli.ltc_update"),
}


@dataclass(frozen=True)
class LtcContext:
    config_path: Path
    target_text: str | None = None   # --target / $LATTICE_TARGET, ahead of the saved target
    target_override: Target | None = None   # `ltc target` checking a new target

    def target(self) -> Target:
        if self.target_override is not None:
            return self.target_override
        if self.target_text:
            # The saved credentials go with --target when it names the saved box.
            given = parse_target(self.target_text)
            saved = load_target(self.config_path)
            if saved is not None and saved == given:
                return saved
            return given
        saved = load_target(self.config_path)
        if saved is None:
            raise BadTarget(messages.NO_TARGET)
        return saved

    def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Connect to the target and run `work` in a fresh event loop."""
        # Imported here: `ltc create` and `ltc --help` do without asyncio (app_creator.py).
        import asyncio

        from lattice.client.connection import connect

        target = self.target()

        async def main() -> T:
            async with connect(target) as connection:
                return await work(connection)

        return asyncio.run(main())


def fail(message: str, exit_code: int) -> NoReturn:
    """Print `Error: message` to stderr and leave with `exit_code` (see exit_codes)."""
    click.echo(f"Error: {message}", err=True)
    raise click.exceptions.Exit(exit_code)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        fail(messages.error_message(exc), exit_code_for(exc))
    except KeyboardInterrupt:
        fail(messages.INTERRUPTED, ExitCode.INTERRUPTED)


@contextlib.contextmanager
def syntax_errors() -> Iterator[None]:
    """Usage errors (missing argument, bad option value) leave with Lattice's InvalidSyntax."""
    try:
        yield
    except click.UsageError as exc:
        exc.show()
        raise click.exceptions.Exit(ExitCode.INVALID_SYNTAX) from exc


class LtcGroup(click.Group):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with syntax_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with syntax_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if cmd_name not in self.commands and module_name is not None:
            module = __import__(module_name, fromlist=["COMMANDS"])
            for command in module.COMMANDS:
                self.add_command(command)
        return self.commands.get(cmd_name)


def progress_printer() -> Callable[[Progress], None]:
    """Print a progress line each time it reads differently from the last one."""
    last: list[str] = []

    def show(update: Progress) -> None:
        line = messages.progress(update)
        if last != [line]:
            click.echo(line)
            last[:] = [line]

    return show


@click.group(cls=LtcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    envvar=CONFIG_ENV, default=None,
    help="Config file holding the target [default: ~/.lattice/config.json].",
)
@click.option(
    "--target", "target_text", envvar="LATTICE_TARGET", metavar="DOMAIN[:PORT]",
    help="Use this box instead of the saved target.",
)
@click.version_option(__version__, prog_name="ltc")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, target_text: str | None) -> None:
    """ltc: deploy and run Docker images on a lattice box."""
    ctx.obj = LtcContext(config_path or default_config_path(), target_text)


@cli.command()
@click.argument("domain", required=False, metavar="DOMAIN[:PORT]")
@click.option("--username", default=None,
              help="The box's username; the password is read from standard input when no "
                   "terminal is attached, else asked for.")
@click.pass_obj
def target(obj: LtcContext, domain: str | None, username: str | None) -> None:
    """Set the box to talk to (its router), or show the current one.

    A box that requires credentials answers 401: then they are asked for (as Lattice's ltc
    did) and saved with the target, in a file only its owner can read.
    """
    with reported_errors():
        if domain is None:
            click.echo(messages.current_target(load_target(obj.config_path)))
            return
        new = parse_target(domain)
        if username is not None:
            new = new.with_credentials(ask_credentials(username))
        try:
            info = check_target(obj, new)
        except Unauthorized:
            if username is not None or not sys.stdin.isatty():
                raise
            new = new.with_credentials(ask_credentials(None))
            info = check_target(obj, new)
        save_target(obj.config_path, new)
    click.echo(messages.target_set(new, info))


def check_target(obj: LtcContext, new: Target) -> Info:
    async def check(connection: Connection) -> Info:
        return await connection.receptor.info()

    return LtcContext(obj.config_path, target_override=new).run(check)


def ask_credentials(username: str | None) -> Credentials:
    """Prompt on a terminal; for scripts, the password is the first line of standard input."""
    if not sys.stdin.isatty():
        if username is None:
            raise BadTarget(messages.CREDENTIALS_NEEDED_NO_TERMINAL)
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput([FieldError("password", messages.NO_PASSWORD)])
        return Credentials(username, password)
    if username is None:
        username = str(click.prompt(messages.USERNAME_PROMPT))
    password = str(click.prompt(messages.PASSWORD_PROMPT, hide_input=True))
    return Credentials(username, password)


@cli.command(context_settings={"show_default": True})
@click.argument("app")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND ARGS...]")
@click.option("-i", "--instances", type=int, default=1, help="Number of instances.")
@click.option("-m", "--memory-mb", type=int, default=128, help="Memory limit (0: none).")
@click.option("-c", "--cpu-weight", type=int, default=100, help="Relative CPU weight, 1-100.")
@click.option("-p", "--ports", metavar="PORT[,PORT...]",
              help="Container ports [default: the image's first EXPOSEd port, else 8080].")
@click.option("-e", "--env", multiple=True, metavar="NAME=VALUE",
              help="Environment variable; repeatable.")
@click.option("-M", "--monitor-port", type=int, help="Port to health-check [default: first].")
@click.option("--no-monitor", is_flag=True, help="No health check: RUNNING once started.")
@click.option("-U", "--monitor-url", metavar="PORT:/PATH",
              help="HTTP health check: passes on a 200 from GET PATH on PORT.")
@click.option("--monitor-command", metavar="'CMD ARGS'",
              help="Health check run inside the container: passes on exit status 0.")
@click.option("--monitor-timeout", metavar="DURATION",
              help="Timeout of one health check [default: 1s].")
@click.option("-R", "--http-route", "routes", multiple=True, metavar="HOST[:PORT]",
              help="Route; a name without a dot is under the box's domain. Repeatable. "
                   "[default: APP.<domain>]")
@click.option("--no-routes", is_flag=True, help="Do not route HTTP to the app.")
@click.option("--share-routes", is_flag=True,
              help="Let another app that shares them route the same hosts (blue-green).")
@click.option("-t", "--timeout", envvar="LTC_TIMEOUT", default="120s", help=TIMEOUT_HELP)
@click.option("--syslog-drain", "syslog_drains", multiple=True, metavar="tcp://HOST:PORT",
              help="Forward the app's lines as RFC 5424 syslog over TCP. Repeatable.")
@click.pass_obj
@autoscale_options
def create(
    obj: LtcContext, app: str, image: str, command: tuple[str, ...], instances: int,
    memory_mb: int, cpu_weight: int, ports: str | None, env: tuple[str, ...],
    monitor_port: int | None, no_monitor: bool, monitor_url: str | None,
    monitor_command: str | None, monitor_timeout: str | None, routes: tuple[str, ...],
    no_routes: bool, timeout: str, syslog_drains: tuple[str, ...] = (),
    share_routes: bool = False, autoscale: AutoscaleFlags | None = None,
) -> None:
    """Run IMAGE as APP and wait until every instance is RUNNING."""
    with reported_errors():
        spec, timeout_s = parse_create_flags(
            CreateFlags(
                autoscale=autoscale or AutoscaleFlags(),
                name=app, image=image, instances=instances, memory_mb=memory_mb,
                cpu_weight=cpu_weight, ports=ports, env=env, command=command,
                monitor_port=monitor_port, no_monitor=no_monitor, monitor_url=monitor_url,
                monitor_command=monitor_command, monitor_timeout=monitor_timeout, routes=routes,
                no_routes=no_routes, timeout=timeout, syslog_drains=syslog_drains,
                share_routes=share_routes,
            )
        )

        target = obj.target()
        click.echo(messages.creating(spec.name, spec.instances))
        created = create_app(target, spec, timeout_s=timeout_s, on_progress=progress_printer())
        from lattice.client.app_runner import route_urls  # loaded by the wait already

        urls = route_urls(created, target)
    click.echo(messages.app_running(created, urls))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("app")
@click.argument("instances", type=int)
@click.option("-t", "--timeout", envvar="LTC_TIMEOUT", default="120s", show_default=True,
              help=TIMEOUT_HELP)
@click.pass_obj
def scale(obj: LtcContext, app: str, instances: int, timeout: str) -> None:
    """Change the number of instances of APP and wait until they are RUNNING."""
    with reported_errors():
        check_app_name(app)
        check_instances(instances)
        timeout_s = parse_duration(timeout)

        async def work(connection: Connection) -> None:
            await connection.apps.scale(
                app, instances, timeout_s=timeout_s, on_progress=progress_printer()
            )

        obj.run(work)
    click.echo(messages.scaled(app, instances))


@cli.command()
@click.argument("apps", nargs=-1, required=True, metavar="APP...")
@click.pass_obj
def remove(obj: LtcContext, apps: tuple[str, ...]) -> None:
    """Stop and remove apps."""

    async def work(connection: Connection) -> None:
        for app in apps:
            await connection.apps.remove(app)
            click.echo(messages.removed(app))

    with reported_errors():
        for app in apps:
            check_app_name(app)
        obj.run(work)


cli.add_command(remove, "rm")


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, Diego's field names.")
@click.pass_obj
def list_apps(obj: LtcContext, as_json: bool) -> None:
    """List the apps: instances running/desired, memory, routes."""
    with reported_errors():
        apps = obj.run(lambda connection: connection.apps.list_apps())
    click.echo(messages.app_list_json(apps) if as_json else messages.app_list(apps))


@cli.command()
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable, Diego's field names.")
@click.pass_obj
def status(obj: LtcContext, app: str, as_json: bool) -> None:
    """Show APP and each of its instances."""
    with reported_errors():
        check_app_name(app)
        # With each crashed instance's last lines, also for a removed app (ltc_logs).
        from lattice.cli.ltc_logs import status_with_crashes

        found = obj.run(lambda connection: status_with_crashes(connection, app))
    click.echo(found.json() if as_json else found.text())


@cli.command()
@click.argument("app")
@click.option("--recent", is_flag=True,
              help="Print APP's recent lines (the last 1,000) and exit; with -f, then follow.")
@click.option("-f", "--follow", is_flag=True,
              help="With --recent: go on with live lines, no gap and no duplicate between.")
@click.pass_obj
def logs(obj: LtcContext, app: str, recent: bool, follow: bool) -> None:
    """Stream APP's log lines as they are written (nothing old); Ctrl-C ends."""
    from lattice.cli.ltc_logs import print_logs

    with reported_errors():
        check_app_name(app)
        try:
            obj.run(lambda connection: print_logs(connection, app, recent=recent,
                                                  follow=follow))
        except KeyboardInterrupt:
            return  # the usual way to stop tailing: not a failure


def main() -> None:
    try:
        cli(prog_name="ltc")
        code = 0
    except SystemExit as exc:   # click's standalone mode always leaves this way
        code = exit_status(exc.code)
    # The command is done and its output written: leave without tearing the interpreter down
    # (freeing every module and object costs 15-50 ms, a tenth of an `ltc create`). ltc
    # registers no exit handlers and leaves no work to threads; the event loop is closed.
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        code = code or SHORT_WRITE_STATUS
    os._exit(code)


# What Python exits with when flushing standard output fails at exit (a closed pipe).
SHORT_WRITE_STATUS = 120


def exit_status(code: object) -> int:
    """The process status for SystemExit's code, as Python's own exit would make it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
