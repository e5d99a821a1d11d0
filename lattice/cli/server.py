"""`lattice`: the server side. `lattice up` runs the whole box; one subcommand per component
lets a VM or a second host run each as its own service."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from lattice import __version__, auth
from lattice import logs as lattice_logs
from lattice.auth import Credentials

ETCD_OPTION = click.option(
    "--etcd", "etcd", required=True, envvar="LATTICE_ETCD",
    help="etcd endpoints, comma-separated (http://127.0.0.1:2379).",
)
DOMAIN_OPTION = click.option(
    "--domain", default="lattice.localhost", show_default=True, envvar="LATTICE_DOMAIN",
    help="The box's domain: apps are APP.DOMAIN, the API receptor.DOMAIN.",
)


def credentials_from_env() -> Credentials | None:
    """The box's credentials, which `lattice up` hands its children in the environment."""
    try:
        return auth.from_env()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


JSON_LOGS_OPTION = click.option(
    "--json-logs/--console-logs", default=False, envvar="LATTICE_JSON_LOGS",
    help="Log events as JSON lines (for machines) or as readable lines.",
)


def run_until_signalled(main: Coroutine[Any, Any, None], *, use_uvloop: bool = False) -> None:
    """Run `main` until it returns or SIGINT/SIGTERM cancels it (graceful shutdown)."""

    async def runner() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if use_uvloop:
        import uvloop

        uvloop.run(runner())
    else:
        asyncio.run(runner())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lattice")
def main() -> None:
    """Lattice: a cluster in a box."""


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path.home() / ".lattice" / "box", show_default=True,
              envvar="LATTICE_DATA_DIR", help="Where etcd keeps the box's state.")
@DOMAIN_OPTION
@click.option("--router-port", type=int, default=8080, show_default=True,
              envvar="LATTICE_ROUTER_PORT", help="The router's port.")
@click.option("--listen", default="127.0.0.1", show_default=True, envvar="LATTICE_LISTEN",
              help="The router's address. Loopback keeps the box off the network.")
@click.option("--etcd", "etcd", default=None, envvar="LATTICE_ETCD",
              help="Use these etcd endpoints instead of starting etcd.")
@click.option("--cells", type=int, default=1, show_default=True, help="How many cells to run.")
@click.option("--username", envvar=auth.USERNAME_ENV, default="",
              help="Require these credentials on every API and log request.")
@click.option("--password", envvar=auth.PASSWORD_ENV, default="",
              help=f"The password; prefer ${auth.PASSWORD_ENV}, which `ps` does not show.")
@JSON_LOGS_OPTION
def up(data_dir: Path, domain: str, router_port: int, listen: str, etcd: str | None,
       cells: int, username: str, password: str, json_logs: bool) -> None:
    """Start the whole box in the foreground; Ctrl-C stops it."""
    from lattice.up import UpConfig, UpError, run_up

    lattice_logs.configure("up", json=json_logs)
    try:
        credentials = auth.from_env({auth.USERNAME_ENV: username, auth.PASSWORD_ENV: password})
    except ValueError as exc:
        click.echo(f"lattice up: {exc} (--username and --password)", err=True)
        sys.exit(1)
    config = UpConfig(data_dir=data_dir, domain=domain, router_port=router_port,
                      listen=listen, etcd=etcd, cells=cells, credentials=credentials)
    try:
        asyncio.run(run_up(config, announce=lambda line: click.echo(line, err=True)))
    except UpError as exc:
        click.echo(f"lattice up: {exc}", err=True)
        sys.exit(1)


@main.command()
@ETCD_OPTION
@DOMAIN_OPTION
@click.option("--listen", default="127.0.0.1", show_default=True, help="The API's address.")
@click.option("--port", type=int, default=0, show_default=True, help="The API's port (0: any).")
@JSON_LOGS_OPTION
def brain(etcd: str, domain: str, listen: str, port: int, json_logs: bool) -> None:
    """Run the API, the auctioneer and the converger."""
    from lattice.brain.config import BrainConfig
    from lattice.brain.main import serve

    lattice_logs.configure("brain", json=json_logs)
    # The box's own log events also go to the aggregator as app lattice-debug (ltc debug-logs).
    run_until_signalled(lattice_logs.forwarding_debug_logs(
        etcd, serve(BrainConfig(etcd_endpoints=etcd, host=listen, port=port, domain=domain,
                                credentials=credentials_from_env())),
        credentials=credentials_from_env()))


@main.command()
@ETCD_OPTION
@click.option("--cell-id", default="cell-0", show_default=True, envvar="LATTICE_CELL_ID")
@click.option("--address", default="127.0.0.1", show_default=True, envvar="LATTICE_CELL_ADDRESS",
              help="Where container ports are published, and advertised to the router.")
@click.option("--memory-mb", type=int, default=None, help="Capacity (default: host memory).")
@click.option("--disk-mb", type=int, default=None, help="Capacity (default: free disk).")
@click.option("--containers", type=int, default=256, show_default=True, help="Container slots.")
@click.option("--warm-sandboxes", type=click.IntRange(min=0), default=2, show_default=True,
              envvar="LATTICE_CELL_WARM_SANDBOXES",
              help="Network sandboxes kept started per port set, so that an instance starts "
                   "without waiting on its network (0: none).")
@click.option("--metrics-interval", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, envvar="LATTICE_CELL_METRICS_INTERVAL",
              help="Seconds between samples of each container's CPU and memory.")
@JSON_LOGS_OPTION
def cell(etcd: str, cell_id: str, address: str, memory_mb: int | None, disk_mb: int | None,
         containers: int, warm_sandboxes: int, metrics_interval: float,
         json_logs: bool) -> None:
    """Run instances assigned to this cell as Docker containers."""
    from lattice.cell import CellConfig, serve

    lattice_logs.configure("cell", json=json_logs)
    run_until_signalled(lattice_logs.forwarding_debug_logs(
        etcd, serve(CellConfig(etcd_endpoints=etcd, cell_id=cell_id, address=address,
                               memory_mb=memory_mb, disk_mb=disk_mb, containers=containers,
                               warm_sandboxes=warm_sandboxes,
                               metrics_interval_s=metrics_interval),
                    credentials=credentials_from_env()),
        credentials=credentials_from_env()))


@main.command()
@ETCD_OPTION
@click.option("--listen", default="127.0.0.1", show_default=True, help="The router's address.")
@click.option("--port", type=int, default=8080, show_default=True, help="The router's port.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              envvar="LATTICE_ROUTER_WORKERS",
              help="Router processes sharing the port (SO_REUSEPORT), e.g. one per core.")
@click.option("--status-port", type=click.IntRange(0, 65535), default=None,
              envvar="LATTICE_ROUTER_STATUS_PORT",
              help="Serve /health, /metrics and /routes on 127.0.0.1:PORT (none if unset).")
@click.option("--balancing", type=click.Choice(["round-robin", "least-connections"]),
              default="round-robin", show_default=True, envvar="LATTICE_ROUTER_BALANCING",
              help="How each route's instances share its requests.")
@click.option("--cold-start-timeout", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, envvar="LATTICE_ROUTER_COLD_START_TIMEOUT",
              help="Seconds a request for a scaled-to-zero app waits for an instance "
                   "before a 503.")
@click.option("--worker", "worker_index", type=int, default=None, hidden=True)
@JSON_LOGS_OPTION
def router(etcd: str, listen: str, port: int, workers: int, status_port: int | None,
           balancing: str, cold_start_timeout: float, worker_index: int | None,
           json_logs: bool) -> None:
    """Route HTTP by Host header to the instances of apps and to the box's services."""
    from router.config import RouterConfig
    from router.main import serve
    from router.workers import run_workers

    lattice_logs.configure("router", json=json_logs)
    if workers > 1 and worker_index is None:
        if port == 0:
            raise click.BadParameter("several workers need a fixed port, not 0",
                                     param_hint="--port")

        def child_argv(index: int) -> list[str]:
            argv = [sys.executable, "-m", "lattice.cli.server", "router", "--etcd", etcd,
                    "--listen", listen, "--port", str(port), "--workers", str(workers),
                    "--balancing", balancing, "--worker", str(index),
                    "--cold-start-timeout", str(cold_start_timeout),
                    "--json-logs" if json_logs else "--console-logs"]
            if status_port is not None:
                argv += ["--status-port", str(status_port)]
            return argv

        sys.exit(run_workers(child_argv, workers))
    config = RouterConfig(
        etcd_endpoints=etcd, host=listen, port=port, balancing=balancing,
        cold_start_timeout_s=cold_start_timeout,
        status_port=status_port if not worker_index else None,
        reuse_port=worker_index is not None,
    )
    run_until_signalled(serve(config, credentials=credentials_from_env()), use_uvloop=True)


@main.command()
@ETCD_OPTION
@DOMAIN_OPTION
@click.option("--listen", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, show_default=True, help="0: any free port.")
@click.option("--recent-lines", type=int, default=1000, show_default=True,
              help="Recent lines kept per app.")
@JSON_LOGS_OPTION
def logagg(etcd: str, domain: str, listen: str, port: int, recent_lines: int,
           json_logs: bool) -> None:
    """Collect every instance's output and stream it to subscribers."""
    from logagg.config import LogaggConfig
    from logagg.main import serve

    lattice_logs.configure("logagg", json=json_logs)
    run_until_signalled(lattice_logs.forwarding_debug_logs(
        etcd, serve(LogaggConfig(etcd_endpoints=etcd, domain=domain, host=listen, port=port,
                                 recent_lines=recent_lines),
                    credentials=credentials_from_env()),
        credentials=credentials_from_env()))


if __name__ == "__main__":
    main()
