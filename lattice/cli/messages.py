"""Every text ltc shows a user: messages, error explanations, tables, log lines and JSON.

Kept in one module so wording stays consistent and tests can refer to it. Functions here are
pure: they take results from `lattice.client` and return text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

import click

from lattice.cli.exit_codes import is_image_problem
from lattice.client.errors import (
    ApiError,
    AppAlreadyExists,
    AppNotFound,
    ClientError,
    InstancesCrashed,
    InvalidInput,
    PlacementFailed,
    Unauthorized,
    WaitTimedOut,
)
from lattice.client.target import Target
from lattice.models import DesiredLRP, FieldError
from lattice.models.desired import describe_monitor
from lattice.models.syslog_drain import redact

if TYPE_CHECKING:
    # Types only. `ltc create` imports the waiting code and the actual LRP model once its
    # request is sent (lattice/client/app_creator.py); smoke.py runs on aiohttp, imported by
    # `ltc test` alone; `ltc create` and `ltc --help` do without logagg and the other models
    # (tests/unit/test_ltc_imports.py).
    from lattice.client.app_runner import AppStatus, AppSummary, Progress
    from lattice.client.box_info import CellState, Info
    from lattice.client.smoke import StepResult
    from lattice.models.actual import ActualLRP, PortMapping
    from lattice.models.function import Function
    from lattice.models.metrics import InstanceMetrics
    from lattice.models.task import Task
    from logagg.crashes import CrashRecord
    from logagg.envelope import Envelope

NO_TARGET = (
    "no target set: run `ltc target DOMAIN[:PORT]`, e.g. `ltc target lattice.localhost:8080`"
)
INTERRUPTED = "interrupted"
NO_APPS = "No apps."
NONE = "-"

# -- target -------------------------------------------------------------------------------------


def current_target(target: Target | None) -> str:
    return f"Target: {target}" if target is not None else "No target set."


def target_set(target: Target, info: Info) -> str:
    line = f"Target set to {target} (lattice {info.version})."
    if info.domain != target.domain:
        line += f"\nNote: the box calls its domain {info.domain!r}, not {target.domain!r}."
    return line


# -- errors -------------------------------------------------------------------------------------


def _field_lines(fields: Sequence[FieldError]) -> str:
    return "\n".join(f"  {f.field}: {f.message}" for f in fields)


def error_message(error: ClientError) -> str:
    """One explanation per kind of failure, listing every field when there are several."""
    if isinstance(error, InvalidInput):
        return "invalid input, nothing was sent:\n" + _field_lines(error.fields)
    if isinstance(error, ApiError):
        return _api_error(error)
    if isinstance(error, PlacementFailed):
        lines = [f"{error.app} could not be placed:"]
        lines += [f"  instance {p.index}: {p.reason}" for p in error.problems]
        return "\n".join(lines)
    if isinstance(error, InstancesCrashed):
        lines = [f"{error.app} keeps crashing:"]
        lines += [
            f"  instance {p.index}: crashed {p.crash_count} times: {p.reason}"
            for p in error.problems
        ]
        lines.append(f"Run `ltc logs {error.app}` or `ltc status {error.app}` for details.")
        return "\n".join(lines)
    if isinstance(error, WaitTimedOut):
        return (
            f"timed out after {error.timeout_s:g} s: {error.running}/{error.desired} instances of "
            f"{error.app} running. The app stays; see `ltc status {error.app}`."
        )
    return str(error)


def _api_error(error: ApiError) -> str:
    if is_image_problem(error):
        image = next(f.message for f in error.fields if f.field == "image")
        return (
            f"{image}. No registry is reachable: build or load the image into the box's "
            "Docker engine first."
        )
    if isinstance(error, Unauthorized):
        return UNAUTHORIZED
    if isinstance(error, AppNotFound):
        return error.message or "no such app"
    if isinstance(error, AppAlreadyExists):
        return f"{error.message}; remove it first or choose another name"
    text = f"the API refused the request ({error.status} {error.type}): {error.message}"
    if error.fields:
        text += "\n" + _field_lines(error.fields)
    return text


# -- create, scale, remove -----------------------------------------------------------------------


def progress(update: Progress) -> str:
    return f"Waiting for {update.app}: {update.running}/{update.desired} running"


def creating(app: str, instances: int) -> str:
    noun = "instance" if instances == 1 else "instances"
    return f"Creating {app} with {instances} {noun}..."


def app_running(lrp: DesiredLRP, urls: Sequence[str]) -> str:
    lines = [f"{lrp.process_guid} is running: {lrp.scheduling.instances} instance(s)."]
    if urls:
        lines += [f"  {url}" for url in urls]
    else:
        lines.append("  (no routes)")
    return "\n".join(lines)


def scaled(app: str, instances: int) -> str:
    return f"{app} is scaled to {instances} running instance(s)."


def removed(app: str) -> str:
    return f"Removed {app}."


# -- tables ---------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, without trailing spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]


def memory(memory_mb: int) -> str:
    return "no limit" if memory_mb == 0 else f"{memory_mb} MB"


def duration(seconds: float | None) -> str:
    """`45s`, `3m07s`, `2h05m`, `3d04h`; `-` when unknown."""
    if seconds is None:
        return NONE
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def port_mappings(ports: Sequence[PortMapping]) -> str:
    return ",".join(f"{p.container_port}->{p.host_port}" for p in ports) or NONE


def routes_text(lrp: DesiredLRP) -> str:
    return ", ".join(h for r in lrp.scheduling.routes for h in r.hostnames) or NONE


def app_list(apps: Sequence[AppSummary]) -> str:
    if not apps:
        return NO_APPS
    rows = [
        [
            app.name,
            f"{app.running}/{app.desired.scheduling.instances}",
            memory(app.desired.scheduling.memory_mb),
            routes_text(app.desired),
        ]
        for app in apps
    ]
    return "\n".join(table(["APP", "INSTANCES", "MEMORY", "ROUTES"], rows))


def app_status(status: AppStatus) -> str:
    from lattice.models.actual import ActualState

    lrp = status.desired
    info, run = lrp.scheduling, lrp.run
    running = sum(1 for i in status.instances if i.actual.state == ActualState.RUNNING)
    routes = [f"{h} => {r.port}" for r in info.routes for h in r.hostnames]
    header = [
        ("App", lrp.process_guid),
        ("Image", run.image),
        ("Instances", f"{running}/{info.instances} running"),
        ("Memory", memory(info.memory_mb)),
        ("CPU weight", str(info.cpu_weight)),
        ("Ports", ",".join(str(p) for p in run.ports) or NONE),
        ("Monitor", describe_monitor(run.monitor)),
        ("Routes", ", ".join(routes) or NONE),
    ]
    if info.syslog_drains:      # credentials in a drain URL are never shown
        header.append(("Syslog drains", ", ".join(redact(u) for u in info.syslog_drains)))
    width = max(len(name) for name, _ in header) + 2
    lines = [f"{name + ':':<{width}}{value}" for name, value in header]
    if not status.instances:
        return "\n".join([*lines, "", "No instances."])
    rows = [
        [
            str(i.actual.index),
            str(i.actual.state),
            str(i.actual.crash_count),
            duration(i.uptime_s),
            i.actual.cell_id or NONE,
            i.actual.address or NONE,
            port_mappings(i.actual.ports),
            *metrics_cells(i.metrics),
        ]
        for i in status.instances
    ]
    rendered = table(["INDEX", "STATE", "CRASHES", "UPTIME", "CELL", "ADDRESS", "PORTS",
                      "CPU", "MEMORY", "DISK"], rows)
    lines += ["", rendered[0]]
    for instance, row in zip(status.instances, rendered[1:], strict=True):
        lines.append(row)
        if instance.actual.placement_error:
            lines.append(f"    placement error: {instance.actual.placement_error}")
        if instance.actual.crash_reason:
            # A restarted instance keeps the reason of its last crash; say which it is.
            label = "crash reason" if instance.actual.state == ActualState.CRASHED else "last crash"
            lines.append(f"    {label}: {instance.actual.crash_reason}")
    return "\n".join(lines)


def size(n: int) -> str:
    """Bytes in binary units, one decimal where it says something: 512B, 24.1M, 128M, 1.5G."""
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            break
        value /= 1024
    return f"{value:.1f}".removesuffix(".0") + unit


def metrics_cells(sample: InstanceMetrics | None) -> list[str]:
    """CPU, MEMORY (used/limit) and DISK of `ltc status`; `-` until the cell sampled it."""
    if sample is None:
        return [NONE, NONE, NONE]
    cpu = NONE if sample.cpu_percent is None else f"{sample.cpu_percent:.1f}%"
    disk = NONE if sample.disk_bytes is None else size(sample.disk_bytes)
    return [cpu, f"{size(sample.memory_bytes)}/{size(sample.memory_limit_bytes)}", disk]


def metrics_json(sample: InstanceMetrics | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    return {
        "cpu_percent": sample.cpu_percent,
        "memory_bytes": sample.memory_bytes,
        "memory_limit_bytes": sample.memory_limit_bytes,
        "disk_bytes": sample.disk_bytes,
        "sampled_at": sample.sampled_at,
    }


# -- JSON (Diego's field names) --------------------------------------------------------------------


def _desired_json(lrp: DesiredLRP) -> dict[str, Any]:
    """The DesiredLRP's fields, with the credentials in its drain URLs redacted."""
    data = lrp.to_dict()
    data["syslog_drains"] = [redact(url) for url in lrp.scheduling.syslog_drains]
    return data


def app_list_json(apps: Sequence[AppSummary]) -> str:
    return _dumps([{**_desired_json(app.desired), "running_instances": app.running}
                   for app in apps])


def app_status_json(status: AppStatus) -> str:
    data: dict[str, Any] = _desired_json(status.desired)
    data["instances"] = [
        {**i.actual.to_dict(), "uptime_s": i.uptime_s, "metrics": metrics_json(i.metrics)}
        for i in status.instances
    ]
    return _dumps(data)


def _dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


# -- logs -----------------------------------------------------------------------------------------


def log_line(envelope: Envelope, tz: tzinfo | None = None) -> str:
    """`MM/DD HH:MM:SS.cc [SOURCE|INDEX] message`, in local time unless `tz` is given."""
    seconds, nanos = divmod(envelope.timestamp, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz)
    source = envelope.source_type
    if envelope.source_instance:
        source += f"|{envelope.source_instance}"
    message = envelope.message.rstrip("\r\n")
    return f"{moment:%m/%d %H:%M:%S}.{nanos // 10_000_000:02d} [{source}] {message}"


# -- authentication, cluster, version, smoke test (issue 3: auth, watching, many cells) ----------

UNAUTHORIZED = (
    "the box requires credentials and refused these: run `ltc target DOMAIN[:PORT]` again "
    "(it asks for them; `--username U` reads the password from standard input)"
)
CREDENTIALS_NEEDED_NO_TERMINAL = (
    "the box requires credentials: give --username and pass the password on standard input"
)
NO_PASSWORD = "no password on standard input"  # noqa: S105 - a message, not a password
USERNAME_PROMPT = "Username"
PASSWORD_PROMPT = "Password"  # noqa: S105 - a prompt, not a password


def cells_table(cells: Sequence[CellState]) -> str:
    if not cells:
        return "No cells."
    rows = [
        [
            c.presence.cell_id,
            c.presence.address,
            f"{c.used.memory_mb}/{c.presence.capacity.memory_mb}",
            f"{c.presence.capacity.memory_mb - c.used.memory_mb}",
            f"{c.used.disk_mb}/{c.presence.capacity.disk_mb}",
            f"{c.used.containers}/{c.presence.capacity.containers}",
            str(sum(c.instances_by_app.values())),
        ]
        for c in sorted(cells, key=lambda c: c.presence.cell_id)
    ]
    headers = ["Cell", "Address", "Memory MB", "Free MB", "Disk MB", "Containers", "Instances"]
    return "\n".join(table(headers, rows))


def cells_json(cells: Sequence[CellState]) -> str:
    return _dumps([
        {**c.presence.to_dict(),
         "used": {"memory_mb": c.used.memory_mb, "disk_mb": c.used.disk_mb,
                  "containers": c.used.containers},
         "free": {"memory_mb": c.presence.capacity.memory_mb - c.used.memory_mb,
                  "disk_mb": c.presence.capacity.disk_mb - c.used.disk_mb,
                  "containers": c.presence.capacity.containers - c.used.containers},
         "instances_by_app": c.instances_by_app}
        for c in cells
    ])


# Keyed by ActualState's values: the model is not imported before `ltc create` sends its request.
STATE_COLORS = {
    "RUNNING": "green",
    "CLAIMED": "yellow",
    "UNCLAIMED": "white",
    "CRASHED": "red",
}
MARK = "\u25cf"   # one filled circle per instance
MISSING_CELL = "(missing: instances placed here, but the cell does not answer)"


def visualize(cells: Sequence[CellState], actuals: Sequence[ActualLRP]) -> str:
    """One mark per instance per cell, coloured by state; cells that vanished are flagged."""
    known = sorted(c.presence.cell_id for c in cells)
    by_cell: dict[str, list[ActualLRP]] = {cell_id: [] for cell_id in known}
    unplaced: list[ActualLRP] = []
    for actual in sorted(actuals, key=lambda a: (a.process_guid, a.index)):
        if actual.cell_id:
            by_cell.setdefault(actual.cell_id, []).append(actual)
        else:
            unplaced.append(actual)
    width = max([len(c) for c in by_cell] + [len("unplaced")])
    lines = [
        "  ".join(click.style(f"{MARK} {state}", fg=color)
                  for state, color in STATE_COLORS.items())
    ]
    for cell_id in sorted(by_cell):
        marks = "".join(click.style(MARK, fg=STATE_COLORS[a.state.value])
                        for a in by_cell[cell_id])
        flag = "" if cell_id in known else " " + click.style(MISSING_CELL, fg="red")
        lines.append(f"{cell_id.ljust(width)}  {marks or NONE}{flag}")
    if unplaced:
        marks = "".join(click.style(MARK, fg=STATE_COLORS[a.state.value]) for a in unplaced)
        lines.append(f"{'unplaced'.ljust(width)}  {marks}")
    return "\n".join(lines)


def visualize_json(cells: Sequence[CellState], actuals: Sequence[ActualLRP]) -> str:
    known = {c.presence.cell_id for c in cells}
    data: dict[str, Any] = {cell_id: {"missing": False, "instances": []} for cell_id in known}
    for actual in actuals:
        entry = data.setdefault(actual.cell_id or "", {"missing": True, "instances": []})
        entry["instances"].append({"process_guid": actual.process_guid,
                                   "index": actual.index, "state": actual.state.value})
    if "" in data:
        data[""]["missing"] = False
    return _dumps({"cells": data})


def version_lines(client: str, server: str) -> str:
    return f"Client: ltc {client}\nServer: lattice {server}"


def version_json(client: str, server: str) -> str:
    return _dumps({"client": client, "server": server})


def version_mismatch(client: str, server: str) -> str:
    return (f"Warning: ltc {client} talks to a lattice {server}; "
            "some commands may not work as documented")


def smoke_step(result: StepResult) -> str:
    mark = "OK  " if result.ok else "FAIL"
    return f"[{mark}] {result.step}: {result.detail}"


def smoke_passed(steps: int, seconds: float) -> str:
    return f"Smoke test passed: {steps} steps in {seconds:.1f} s."


def smoke_failed(results: Sequence[StepResult]) -> str:
    lines = ["smoke test failed:"]
    lines += [f"  {smoke_step(r)}" for r in results]
    failed = next(r for r in results if not r.ok)
    lines.append(f"The box failed at '{failed.step}'. See `ltc cells`, `ltc visualize` and "
                 "`ltc debug-logs`.")
    return "\n".join(lines)


# -- logs: recent lines, crash logs (issue 5) ----------------------------------------------------


def crash_logs(records: Sequence[CrashRecord], tz: tzinfo | None = None) -> str:
    """Each crashed instance's last crash: its exit status, reason and last lines."""
    if not records:
        return ""
    lines = ["", "Last crash of each crashed instance (kept by the log aggregator):"]
    for record in records:
        status = NONE if record.exit_status is None else str(record.exit_status)
        moment = datetime.fromtimestamp(record.crashed_at / 1e9, tz)
        lines.append(f"  instance {record.index}: exit status {status}, {record.reason} "
                     f"({moment:%m/%d %H:%M:%S})")
        if not record.lines:
            lines.append("    (no output)")
        lines += [f"    {log_line(envelope, tz)}" for envelope in record.lines]
    return "\n".join(lines)


def removed_app_crashes(app: str, records: Sequence[CrashRecord],
                        tz: tzinfo | None = None) -> str:
    return f"App {app} was removed.{crash_logs(records, tz)}"


def crash_logs_unavailable(reason: str) -> str:
    return f"\n(crash logs unavailable: {reason})"


def crash_logs_json(records: Sequence[CrashRecord]) -> list[dict[str, Any]]:
    return [record.to_dict() for record in records]


# -- tasks (issue 3, "Tasks (one-off work)") -----------------------------------------------------


def task_submitted(guid: str) -> str:
    return f"Submitted task {guid}. See it with `ltc task {guid}`."


def task_detail(task: Task) -> str:
    """`ltc task GUID`: one field a line, the outcome once it has completed."""
    from lattice.models.task import TaskState  # here: `ltc create` does without the task model

    rows = [("Task", task.task_guid), ("State", str(task.state)),
            ("Image", task.definition.image), ("Cell", task.cell_id or NONE)]
    if task.placement_error:
        rows.append(("Placement error", task.placement_error))
    if task.state in (TaskState.COMPLETED, TaskState.RESOLVING):
        rows.append(("Failed", "yes" if task.failed else "no"))
        if task.failed:
            rows.append(("Failure reason", task.failure_reason))
        if task.exit_status is not None:
            rows.append(("Exit status", str(task.exit_status)))
        rows.append(("Result", task.result or NONE))
    if task.definition.annotation:
        rows.append(("Annotation", task.definition.annotation))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name + ':':<{width + 1}} {value}" for name, value in rows)


def task_json(task: Task) -> str:
    return json.dumps(task.to_dict(), indent=2)


def task_cancelled(guid: str) -> str:
    return f"Cancelled task {guid}."


def task_deleted(guid: str) -> str:
    return f"Deleted task {guid}."


def task_run_failed(task: Task) -> str:
    """`ltc run-task`'s last word on a task that did not succeed."""
    return f"task {task.task_guid} failed: {task.failure_reason or 'no reason given'}"


# -- ltc update and submit-lrp (issue 3: updating apps) -----------------------------------------


def app_updated(app: str, rolled: bool) -> str:
    if rolled:
        return f"{app} is updated: every instance runs the new version."
    return f"{app} is updated."


def lrp_submitted(guid: str, created: bool) -> str:
    return f"{'Created' if created else 'Updated'} {guid}: every instance is RUNNING."


# -- scale to zero (issue 7) -------------------------------------------------------------------


def scaling_status(scaling: dict[str, Any]) -> str:
    """`ltc status` lines of an autoscaled app: its settings, idle/paused state, cold starts."""
    scale = scaling.get("autoscale") or {}
    starts = scaling.get("cold_starts") or {}
    lines = [
        "",
        f"Autoscale:  {scale.get('min_instances')}-{scale.get('max_instances')} instances, "
        f"idle after {scale.get('idle_timeout_s', 0):g}s ({scale.get('idle_mode')}), "
        f"{scale.get('target_concurrency')} requests in flight per instance",
        f"State:      {scaling.get('state')}",
    ]
    count, wakes = int(starts.get("count", 0)), int(starts.get("wakes", 0))
    text = f"Cold starts: {count}"
    if count:
        text += (f" (p50 {starts.get('p50_ms', 0):.0f} ms, max {starts.get('max_ms', 0):.0f} ms"
                 f" over the last {len(starts.get('recent_ms', []))})")
    if wakes:
        text += (f"; wakes from pause: {wakes} (p50 {starts.get('wake_p50_ms', 0):.0f} ms, "
                 f"max {starts.get('wake_max_ms', 0):.0f} ms)")
    if count or wakes:
        text += f"; last {starts.get('last_ms', 0):.0f} ms"
    lines.append(text)
    return "\n".join(lines)


# -- functions ------------------------------------------------------------------------------------

NO_FUNCTIONS = "No functions."


def function_created(function: Function, url: str) -> str:
    return (f"Function {function.name} created: each POST to {url}/ runs "
            f"{function.image} once, the body on its stdin, its stdout the answer.")


def function_route_pending(url: str) -> str:
    return f"Warning: {url} is not routed yet; it should be in a moment."


def function_removed(name: str) -> str:
    return f"Removed function {name}."


def function_list(functions: Sequence[Function], urls: Sequence[str]) -> str:
    if not functions:
        return NO_FUNCTIONS
    rows = [
        [f.name, f.image, " ".join(f.command) or "(image's)", str(f.concurrency), str(f.queue),
         f"{f.timeout_s}s", memory(f.memory_mb), url]
        for f, url in zip(functions, urls, strict=True)
    ]
    return "\n".join(table(
        ["FUNCTION", "IMAGE", "COMMAND", "CONCURRENCY", "QUEUE", "TIMEOUT", "MEMORY", "URL"],
        rows))


def function_list_json(functions: Sequence[Function], urls: Sequence[str]) -> str:
    return _dumps([{**f.to_dict(), "url": url} for f, url in zip(functions, urls, strict=True)])
