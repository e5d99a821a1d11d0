"""Functions as pure logic: validation, route ownership, the gate, the answer, output capture."""

from __future__ import annotations

import asyncio
import struct

import pytest

from lattice.brain.gate import Gate, QueueFull
from lattice.brain.invoker import answer_for, callback_url_problem, invocation_task
from lattice.brain.routes import conflicts, function_conflicts
from lattice.cell.capture import OutputCapture
from lattice.models import ModificationTag, Route, SchedulingInfo, TaskState, ValidationError
from lattice.models.function import (
    STDOUT_TOO_LARGE_REASON,
    Function,
    parse_function,
    stderr_tail,
    timeout_reason,
)
from lattice.models.task import Task, TaskDefinition

DOMAIN = "box.localhost"


# -- the model ------------------------------------------------------------------------------


def test_a_function_parses_with_defaults_and_round_trips() -> None:
    function = parse_function({"name": "echo", "image": "busybox", "command": ["cat"]}, 7)
    assert function == Function(name="echo", image="busybox", command=("cat",), created_at=7)
    assert (function.concurrency, function.queue, function.timeout_s) == (10, 100, 30)
    assert Function.from_dict(function.to_dict()) == function
    assert function.hostname("Box.Localhost") == "echo.box.localhost"


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_function({"name": "-Bad_", "image": " ", "command": "cat", "memory_mb": -1,
                        "cpu_weight": 0, "concurrency": 0, "queue": 10_001, "timeout_s": True,
                        "env": [{"name": "1X", "value": "v"}], "extra": 1}, 0)
    fields = sorted(e.field for e in caught.value.errors)
    assert fields == ["command", "concurrency", "cpu_weight", "env[0].name", "extra", "image",
                      "memory_mb", "name", "queue", "timeout_s"]


@pytest.mark.parametrize("name", ["a", "echo", "a-b-1", "x" * 63])
def test_dns_labels_are_valid_names(name: str) -> None:
    assert parse_function({"name": name, "image": "i"}, 0).name == name


@pytest.mark.parametrize("name", ["", "Echo", "-a", "a-", "a.b", "a_b", "x" * 64])
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_function({"name": name, "image": "i"}, 0)
    assert [e.field for e in caught.value.errors] == ["name"]


def test_stderr_tail_keeps_the_last_lines_within_bytes() -> None:
    data = b"".join(f"line {i}\n".encode() for i in range(1, 31))
    assert stderr_tail(data) == "\n".join(f"line {i}" for i in range(11, 31))
    assert stderr_tail(b"x" * 10_000, limit=5) == "xxxxx"
    assert stderr_tail(b"") == ""


# -- who owns a route ----------------------------------------------------------------------


def app(guid: str, *hosts: str) -> SchedulingInfo:
    return SchedulingInfo(process_guid=guid, instances=1, memory_mb=128, disk_mb=0,
                          cpu_weight=100, routes=(Route(hosts, 8080),),
                          modification_tag=ModificationTag("e"))


def test_a_function_may_not_take_a_system_service_or_app_route() -> None:
    taken = {"web": app("web", f"web.{DOMAIN}"), "shop": app("shop", f"shop.{DOMAIN}/api")}
    check = {"taken": taken, "domain": DOMAIN, "service_hostnames": {f"logs.{DOMAIN}"}}
    assert function_conflicts(f"echo.{DOMAIN}", **check) == []  # type: ignore[arg-type]
    for host, message in [
        (f"receptor.{DOMAIN}", "is reserved by the box"),
        (f"logs.{DOMAIN}", "is reserved by the box"),
        (f"web.{DOMAIN}", "is already routed to app web"),
        (f"shop.{DOMAIN}", "is already routed to app shop"),   # a path route on its host
    ]:
        problems = function_conflicts(host, **check)  # type: ignore[arg-type]
        assert [str(p) for p in problems] == [f"name: {host} {message}"]


def test_an_app_may_not_take_a_functions_route_even_with_a_path() -> None:
    problems = conflicts(
        (Route((f"echo.{DOMAIN}/api", f"free.{DOMAIN}"), 8080),), process_guid="web",
        domain=DOMAIN, taken={}, service_hostnames={f"echo.{DOMAIN}"},
        functions={f"echo.{DOMAIN}": "echo"})
    assert [str(p) for p in problems] == [
        f"routes[0].hostnames: echo.{DOMAIN}/api is the route of function echo"]


# -- the gate ------------------------------------------------------------------------------


async def test_the_gate_runs_concurrency_queues_then_refuses() -> None:
    gate = Gate(concurrency=1, queue=1)
    first = gate.reserve()
    assert first.done()
    second = gate.reserve()
    assert not second.done()
    with pytest.raises(QueueFull):
        gate.reserve()
    gate.release()                       # the slot passes to the waiter, in order
    assert second.done()
    assert (gate.active, gate.waiting) == (1, 0)
    gate.release()
    assert gate.active == 0


async def test_a_waiter_that_gives_up_leaves_the_line() -> None:
    gate = Gate(concurrency=1, queue=2)
    async with gate.slot():
        waiting = asyncio.create_task(gate.wait(gate.reserve()))
        await asyncio.sleep(0)
        assert gate.waiting == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert gate.waiting == 0
    assert gate.active == 0
    async with gate.slot():
        assert gate.active == 1


# -- the answer for a completed task -------------------------------------------------------


def completed(*, failed: bool, reason: str = "", status: int | None = 0) -> Task:
    task = Task(task_guid="echo-1", definition=TaskDefinition(image="i"),
                state=TaskState.RUNNING, created_at=0, updated_at=0)
    return task.completed(1, failed=failed, failure_reason=reason, exit_status=status)


def test_success_answers_200_with_stdout_exactly() -> None:
    answer = answer_for("echo", completed(failed=False), b"\x00\xffout", b"", "text/plain")
    assert (answer.status, answer.body) == (200, b"\x00\xffout")
    assert answer.headers["Content-Type"] == "text/plain"
    assert answer.headers["X-Lattice-Task-Guid"] == "echo-1"
    assert answer.headers["X-Lattice-Exit-Status"] == "0"


@pytest.mark.parametrize(("reason", "status", "code", "first_line"), [
    ("Exited with status 3", 502, "function_failed",
     "502 Bad Gateway: function echo failed: Exited with status 3"),
    (timeout_reason(5), 504, "function_timeout",
     "504 Gateway Timeout: function echo timed out after 5 s"),
    (STDOUT_TOO_LARGE_REASON, 502, "response_too_large",
     f"502 Bad Gateway: function echo: {STDOUT_TOO_LARGE_REASON}"),
    ("task was cancelled", 502, "function_failed",
     "502 Bad Gateway: function echo failed: task was cancelled"),
])
def test_failures_answer_with_stderrs_last_lines(reason: str, status: int, code: str,
                                                 first_line: str) -> None:
    answer = answer_for("echo", completed(failed=True, reason=reason, status=3),
                        b"ignored", b"boom\nbang\n", "text/plain")
    assert answer.status == status
    assert answer.headers["X-Lattice-Function-Error"] == code
    assert answer.body.decode() == f"{first_line}\n\nboom\nbang\n"


def test_callback_urls_must_be_http() -> None:
    assert callback_url_problem("http://127.0.0.1:9/x") is None
    assert callback_url_problem("https://example.test/") is None
    assert callback_url_problem("ftp://x/") is not None
    assert callback_url_problem("nonsense") is not None


def test_an_invocation_task_takes_stdin_captures_stdout_and_logs_as_the_function() -> None:
    function = Function(name="echo", image="busybox", command=("cat",), memory_mb=64,
                        env=(("A", "1"),), timeout_s=9)
    task = invocation_task(function, "echo-1", now_ns=5, callback="", path="/p",
                           query="a=b", content_type="text/plain")
    d = task.definition
    assert (d.stdin, d.capture_stdout, d.timeout_s, d.memory_mb) == (True, True, 9, 64)
    assert (d.log_guid, d.log_source, d.command) == ("echo", "FN", ("cat",))
    assert dict(d.env) == {"A": "1", "REQUEST_METHOD": "POST", "REQUEST_PATH": "/p",
                           "QUERY_STRING": "a=b", "CONTENT_TYPE": "text/plain",
                           "FUNCTION_NAME": "echo"}
    assert Task.from_dict(task.to_dict()) == task


# -- output capture ------------------------------------------------------------------------


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def test_capture_splits_streams_in_any_chunking() -> None:
    data = frame(1, b"\x00bin") + frame(2, b"err one\nerr ") + frame(1, b"ary") + \
        frame(2, b"two\npartial")
    capture = OutputCapture()
    lines: list[str] = []
    for i in range(len(data)):
        lines += capture.feed(data[i:i + 1])
    lines += capture.finish()
    assert bytes(capture.stdout) == b"\x00binary"
    assert lines == ["err one", "err two", "partial"]
    assert capture.stderr_tail == b"err one\nerr two\npartial"
    assert not capture.overflow


def test_capture_bounds_stdout_and_keeps_only_stderrs_tail() -> None:
    capture = OutputCapture(stdout_limit=4, stderr_keep=3)
    capture.feed(frame(1, b"abc") + frame(1, b"def") + frame(2, b"12345"))
    assert (bytes(capture.stdout), capture.overflow) == (b"abcd", True)
    assert capture.stderr_tail == b"345"


# -- ltc's side ----------------------------------------------------------------------------


def test_ltc_names_every_bad_flag_before_sending_anything() -> None:
    from lattice.client.errors import InvalidInput
    from lattice.client.functions import function_request

    with pytest.raises(InvalidInput) as caught:
        function_request(name="Bad_Name", image="i", command=(), memory_mb=-1, cpu_weight=0,
                         env=("NOEQUALS",), concurrency=0, queue=-1, timeout="soon")
    assert sorted(f.field for f in caught.value.fields) == [
        "concurrency", "cpu-weight", "env", "memory-mb", "name", "queue", "timeout"]
    request = function_request(name="echo", image="i", command=("cat",), memory_mb=64,
                               cpu_weight=50, env=("A=1=2",), concurrency=2, queue=3,
                               timeout="2m")
    assert request == {"name": "echo", "image": "i", "command": ["cat"], "memory_mb": 64,
                       "cpu_weight": 50, "env": [{"name": "A", "value": "1=2"}],
                       "concurrency": 2, "queue": 3, "timeout_s": 120}


def test_ltc_lists_functions_as_a_table() -> None:
    from lattice.cli import messages

    assert messages.function_list([], []) == messages.NO_FUNCTIONS
    text = messages.function_list([Function(name="echo", image="busybox", command=("cat",))],
                                  ["http://echo.box.localhost"])
    assert text.splitlines() == [
        "FUNCTION  IMAGE    COMMAND  CONCURRENCY  QUEUE  TIMEOUT  MEMORY  URL",
        "echo      busybox  cat      10           100    30s      128 MB  "
        "http://echo.box.localhost",
    ]


def test_only_old_completed_invocations_nobody_waits_for_are_orphans() -> None:
    from lattice.brain.invoker import orphans
    from lattice.brain.tasks_db import SeenTask

    function = Function(name="echo", image="i")
    s = 1_000_000_000

    def seen(guid: str, *, done_at: int | None, callback: str = "") -> SeenTask:
        task = invocation_task(function, guid, now_ns=0, callback=callback, path="/",
                               query="", content_type="")
        if done_at is not None:
            task = task.completed(done_at, failed=False)
        return SeenTask(task, 1)

    tasks = [seen("old", done_at=1 * s), seen("recent", done_at=50 * s),
             seen("running", done_at=None), seen("async", done_at=1 * s, callback="http://x/"),
             seen("waited", done_at=1 * s)]
    found = orphans(tasks, now_ns=100 * s, waiting=frozenset({"waited"}))
    assert [o.task.task_guid for o in found] == ["old"]


def test_the_host_header_names_the_function_whatever_its_case_or_port() -> None:
    from lattice.brain.function_view import FunctionView
    from lattice.store import Change, keys

    view = FunctionView(etcd=None, domain="Box.Localhost")  # type: ignore[arg-type]
    view._on_change(Change(keys.function("echo"), None,
                           b'{"name": "echo", "image": "i"}', 1))
    for host in ("echo.box.localhost", "ECHO.Box.Localhost:8080", "echo.box.localhost."):
        assert view.name_of_host(host) == "echo"
    for host in ("other.box.localhost", "echo.elsewhere", "box.localhost", ""):
        assert view.name_of_host(host) is None
    assert view.routes() == {"echo.box.localhost": "echo"}
    assert view.changed.is_set()
