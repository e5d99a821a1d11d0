"""Functions end to end: `lattice up` (brain, cell, router, log aggregator), real containers.

`POST http://NAME.<domain>/` through the real router runs the function's command in a new
container of the busybox demo image, with the body on its stdin; the answer is its stdout.
One box serves the module; each test uses its own function names.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.integration.box import Box, ltc, running_box, wait_for

pytestmark = pytest.mark.integration

DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    # Not targeted: a test targets it with ltc itself.
    with running_box(tmp_path_factory.mktemp("fnbox"), target=False, ltc_timeout=60) as the_box:
        yield the_box


def invoke(box: Box, name: str, body: bytes = b"", method: str = "POST",
           headers: dict[str, str] | None = None, timeout: float = 90
           ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", box.router_port, timeout=timeout)
    try:
        conn.request(method, "/", body=body,
                     headers={"Host": f"{name}.{box.domain}", **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.headers.items()), response.read()
    finally:
        conn.close()


def routed(box: Box, name: str) -> bool:
    """The router knows the function's host: a GET reaches the brain (405), not a 404."""
    status, headers, _ = invoke(box, name, method="GET")
    return status == 405 and headers.get("Allow") == "POST"


def create(box: Box, name: str, command: list[str], image: str, **extra: Any) -> None:
    status, body = box.api("POST", "/v1/functions", {
        "name": name, "image": image, "command": command, "memory_mb": 32, **extra,
    })
    assert status == 201, body
    wait_for(lambda: routed(box, name), DEADLINE_S, f"the route of function {name}")


def name_of(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def function_containers(box: Box) -> list[dict[str, Any]]:
    client = docker.from_env()
    try:
        items: list[dict[str, Any]] = client.api.containers(all=True, filters={
            "label": [f"lattice.cluster_id={box.cluster_id}", "lattice.task_guid"]})
        return items
    finally:
        client.close()


def no_tasks_left(box: Box) -> bool:
    status, tasks = box.api("GET", "/v1/tasks")
    assert status == 200, tasks
    return not tasks


def test_the_body_goes_to_stdin_and_stdout_comes_back(box: Box, demo_image: str) -> None:
    name = name_of("echo")
    create(box, name, ["cat"], demo_image)
    status, headers, body = invoke(box, name, b"hello, function\n",
                                   headers={"Content-Type": "text/plain"})
    assert (status, body) == (200, b"hello, function\n")
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Lattice-Exit-Status"] == "0"
    assert headers["X-Lattice-Task-Guid"].startswith(name)
    # The task and its container are gone once answered.
    wait_for(lambda: no_tasks_left(box), DEADLINE_S, "the invocation's task to be deleted")
    wait_for(lambda: not function_containers(box), DEADLINE_S, "its container to be removed")


def test_binary_bytes_come_back_exact(box: Box, demo_image: str) -> None:
    name = name_of("bin")
    create(box, name, ["cat"], demo_image)
    payload = bytes(range(256)) * 1024 + b"\x00\xff\n\r\x1b"
    status, headers, body = invoke(box, name, payload)
    assert status == 200
    assert body == payload
    assert headers["Content-Type"] == "application/octet-stream"


def test_a_process_that_does_not_read_its_stdin_still_answers(box: Box, demo_image: str
                                                              ) -> None:
    name = name_of("deaf")
    create(box, name, ["echo", "not listening"], demo_image)
    status, _, body = invoke(box, name, b"y" * (1024 * 1024))
    assert (status, body) == (200, b"not listening\n")


def test_the_request_reaches_the_process_as_cgi_variables(box: Box, demo_image: str) -> None:
    name = name_of("env")
    create(box, name, ["/bin/sh", "-c", 'echo "$REQUEST_METHOD $FUNCTION_NAME $GREETING"'],
           demo_image, env=[{"name": "GREETING", "value": "hi"}])
    assert invoke(box, name)[::2] == (200, f"POST {name} hi\n".encode())


def test_a_non_zero_exit_answers_502_with_stderrs_last_lines(box: Box, demo_image: str
                                                             ) -> None:
    name = name_of("fail")
    script = "cat >/dev/null; for i in $(seq 1 30); do echo line $i >&2; done; exit 3"
    create(box, name, ["/bin/sh", "-c", script], demo_image)
    status, headers, body = invoke(box, name, b"input")
    assert status == 502
    assert headers["X-Lattice-Function-Error"] == "function_failed"
    assert headers["X-Lattice-Exit-Status"] == "3"
    text = body.decode()
    assert text.startswith(f"502 Bad Gateway: function {name} failed: Exited with status 3\n")
    assert "line 30" in text
    assert "line 11" in text
    assert "line 10\n" not in text            # only the last 20 lines
    wait_for(lambda: no_tasks_left(box), DEADLINE_S, "the failed invocation's task deleted")


def test_stderr_goes_to_the_functions_log_stream_and_stdout_does_not(box: Box,
                                                                     demo_image: str) -> None:
    name = name_of("logs")
    create(box, name, ["/bin/sh", "-c", "echo to-stderr >&2; echo to-stdout"], demo_image)
    assert invoke(box, name)[::2] == (200, b"to-stdout\n")

    def lines() -> list[tuple[str, str]] | None:
        status, raw = box.request(f"doppler.{box.domain}", path=f"/apps/{name}/recentlogs")
        assert status == 200, raw
        found = [(e["source_type"], e["message"]) for e in json.loads(raw)]
        return found if ("CELL", "Exit status 0") in found else None

    found = wait_for(lines, DEADLINE_S, "the invocation's log lines")
    assert ("FN", "to-stderr") in found
    assert all(message != "to-stdout" for _, message in found)


def test_a_run_beyond_the_timeout_is_killed_and_answers_504(box: Box, demo_image: str) -> None:
    name = name_of("slow")
    create(box, name, ["/bin/sh", "-c", "echo started >&2; sleep 60"], demo_image, timeout_s=1)
    status, headers, body = invoke(box, name)
    assert status == 504, body
    assert headers["X-Lattice-Function-Error"] == "function_timeout"
    assert b"timed out after 1 s" in body
    assert b"started" in body
    wait_for(lambda: not function_containers(box), DEADLINE_S, "the killed container removed")


def test_a_body_or_an_output_beyond_1_mib_is_refused(box: Box, demo_image: str) -> None:
    name = name_of("big")
    create(box, name, ["/bin/sh", "-c", "cat >/dev/null; head -c 1100000 /dev/zero"],
           demo_image)
    status, headers, _ = invoke(box, name, b"x" * (1024 * 1024 + 1))
    assert status == 413
    assert headers["X-Lattice-Function-Error"] == "request_too_large"
    status, headers, body = invoke(box, name, b"x" * (1024 * 1024))
    assert status == 502, body
    assert headers["X-Lattice-Function-Error"] == "response_too_large"
    assert body.startswith(f"502 Bad Gateway: function {name}: stdout exceeded".encode())


class CallbackReceiver:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    the_receiver = CallbackReceiver()
    try:
        yield the_receiver
    finally:
        the_receiver.close()


def test_a_callback_url_gets_202_at_once_and_the_result_later(
    box: Box, demo_image: str, receiver: CallbackReceiver
) -> None:
    name = name_of("async")
    create(box, name, ["/bin/sh", "-c", "sleep 1; tr a-z A-Z; echo note >&2"], demo_image)
    status, headers, body = invoke(box, name, b"shout\n",
                                   headers={"X-Callback-Url": receiver.url}, timeout=10)
    assert status == 202, body
    guid = json.loads(body)["task_guid"]
    assert headers["X-Lattice-Task-Guid"] == guid
    assert receiver.received == []            # answered before the run had finished
    delivered = wait_for(lambda: receiver.received, DEADLINE_S, "the callback")[0]
    assert delivered["task_guid"] == guid
    assert delivered["failed"] is False
    assert delivered["exit_status"] == 0
    assert delivered["result"] == "SHOUT\n"
    assert delivered["result_base64"] == "U0hPVVQK"
    assert delivered["stderr_tail"] == "note"
    wait_for(lambda: no_tasks_left(box), DEADLINE_S, "the delivered task to be removed")


def test_a_failed_run_is_delivered_to_the_callback_with_stderrs_tail(
    box: Box, demo_image: str, receiver: CallbackReceiver
) -> None:
    name = name_of("asyncfail")
    create(box, name, ["/bin/sh", "-c", "echo partial; echo broken >&2; exit 7"], demo_image)
    status, _, body = invoke(box, name, headers={"X-Callback-Url": receiver.url})
    assert status == 202, body
    delivered = wait_for(lambda: receiver.received, DEADLINE_S, "the callback")[0]
    assert (delivered["failed"], delivered["failure_reason"], delivered["exit_status"]) == (
        True, "Exited with status 7", 7)
    assert (delivered["result"], delivered["stderr_tail"]) == ("partial\n", "broken")


def test_a_bad_callback_url_is_refused(box: Box, demo_image: str) -> None:
    name = name_of("badcb")
    create(box, name, ["cat"], demo_image)
    status, headers, _body = invoke(box, name, b"x", headers={"X-Callback-Url": "ftp://nope"})
    assert status == 400
    assert headers["X-Lattice-Function-Error"] == "bad_callback_url"


def test_beyond_concurrency_and_queue_requests_get_429(box: Box, demo_image: str) -> None:
    name = name_of("busy")
    create(box, name, ["/bin/sh", "-c", "sleep 3; cat"], demo_image, concurrency=1, queue=1)
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        status, _, body = invoke(box, name, f"request {i}".encode())
        with lock:
            results.append((status, body))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 429], results
    refused = next(body for status, body in results if status == 429)
    assert refused.startswith(f"429 Too Many Requests: function {name} is busy".encode())
    bodies = sorted(body for status, body in results if status == 200)
    assert len(set(bodies)) == 2, bodies
    assert all(b.startswith(b"request ") for b in bodies), bodies


def test_an_unknown_function_is_the_routers_404(box: Box) -> None:
    status, headers, _ = invoke(box, "no-such-function")
    assert status == 404
    assert headers["X-Cf-RouterError"] == "unknown_route"


def test_a_function_and_an_app_cannot_share_a_route(box: Box, demo_image: str) -> None:
    app = name_of("app")
    status, body = box.api("POST", "/v1/desired_lrps", {
        "process_guid": app, "image": demo_image, "instances": 0,
        "routes": [{"hostnames": [f"{app}.{box.domain}"], "port": 8080}],
    })
    assert status == 201, body
    status, body = box.api("POST", "/v1/functions", {"name": app, "image": demo_image})
    assert status == 400, body
    assert body["error"]["fields"] == [
        {"field": "name", "message": f"{app}.{box.domain} is already routed to app {app}"}
    ]
    function = name_of("fn")
    create(box, function, ["cat"], demo_image)
    status, body = box.api("POST", "/v1/desired_lrps", {
        "process_guid": name_of("thief"), "image": demo_image, "instances": 0,
        "routes": [{"hostnames": [f"{function}.{box.domain}"], "port": 8080}],
    })
    assert status == 400, body
    assert body["error"]["fields"][0]["message"] == (
        f"{function}.{box.domain} is the route of function {function}")
    status, body = box.api("POST", "/v1/functions", {"name": "receptor", "image": demo_image})
    assert status == 400, body
    assert "reserved by the box" in body["error"]["fields"][0]["message"]


def test_a_bad_function_gets_400_naming_every_field(box: Box) -> None:
    status, body = box.api("POST", "/v1/functions", {
        "name": "Not_A_Label", "image": "lattice/no-such-image:1", "concurrency": 0,
        "queue": -1, "timeout_s": "soon", "colour": "blue",
    })
    assert status == 400, body
    fields = sorted(f["field"] for f in body["error"]["fields"])
    assert fields == ["colour", "concurrency", "image", "name", "queue", "timeout_s"]
    status, body = box.api("GET", "/v1/functions/not-there")
    assert (status, body["error"]["type"]) == (404, "FunctionNotFound")


def test_ltc_creates_lists_and_removes_a_function(box: Box, demo_image: str) -> None:
    assert ltc(box, "target", f"{box.domain}:{box.router_port}").returncode == 0
    name = name_of("ltc")
    created = ltc(box, "function", "create", name, demo_image, "--concurrency", "2",
                  "--queue", "5", "-t", "10s", "-e", "GREETING=hey", "--", "/bin/sh", "-c",
                  'echo "$GREETING"; cat')
    assert created.returncode == 0, created.stderr
    url = f"http://{name}.{box.domain}:{box.router_port}"
    assert created.stdout.strip() == (
        f"Function {name} created: each POST to {url}/ runs {demo_image} once, the body on "
        "its stdin, its stdout the answer.")
    assert created.stderr == ""               # ltc waited for the route: no warning
    assert invoke(box, name, b"you\n")[::2] == (200, b"hey\nyou\n")
    listed = ltc(box, "function", "list")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["FUNCTION", "IMAGE", "COMMAND", "CONCURRENCY", "QUEUE",
                              "TIMEOUT", "MEMORY", "URL"]
    row = next(r for r in rows if r.startswith(name + " "))
    assert row.split()[-6:] == ["2", "5", "10s", "128", "MB", url]
    as_json = json.loads(ltc(box, "function", "list", "--json").stdout)
    mine = next(f for f in as_json if f["name"] == name)
    assert (mine["concurrency"], mine["queue"], mine["timeout_s"], mine["url"]) == (
        2, 5, 10, url)
    assert mine["env"] == [{"name": "GREETING", "value": "hey"}]
    again = ltc(box, "function", "create", name, demo_image)
    assert again.returncode == 14, again.stderr
    assert "already exists" in again.stderr
    removed = ltc(box, "function", "remove", name)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.strip() == f"Removed function {name}."
    wait_for(lambda: invoke(box, name)[0] == 404, DEADLINE_S, "the route to go")
    missing = ltc(box, "function", "remove", name)
    assert missing.returncode == 14, missing.stderr


def test_ltc_refuses_bad_flags_with_exit_13_naming_each(box: Box, demo_image: str) -> None:
    result = ltc(box, "function", "create", "Bad_Name", demo_image, "--concurrency", "0",
                 "--queue", "-1", "-t", "soon", "-e", "NOEQUALS")
    assert result.returncode == 13, result.stderr
    for flag in ("name", "concurrency", "queue", "timeout", "env"):
        assert flag in result.stderr, result.stderr
    assert ltc(box, "function", "create", "x", demo_image, "--queue", "many").returncode == 13
    assert ltc(box, "function", "remove", "Not_A_Label").returncode == 13


def test_on_a_box_with_credentials_managing_needs_them_invoking_does_not(
    tmp_path_factory: pytest.TempPathFactory, demo_image: str
) -> None:
    from lattice.auth import Credentials

    credentials = Credentials("admin", "fn-Pa55-word")
    with running_box(tmp_path_factory.mktemp("fnauthbox"), credentials=credentials,
                     target=False) as secured:
        status, _ = secured.api("POST", "/v1/functions", {"name": "open", "image": demo_image})
        assert status == 401
        secured.authorization = credentials.header()
        create(secured, "open", ["cat"], demo_image)
        secured.authorization = None
        # A function's route is public, like an app's: the caller has no credentials.
        assert invoke(secured, "open", b"no password\n")[::2] == (200, b"no password\n")


def box_etcd(box: Box) -> str:
    from tests.integration.box import descendants

    assert box.process is not None
    for cmd in descendants(box.process.pid).values():
        words = cmd.split()
        if "lattice.cli.server" in words and "--etcd" in words:
            return words[words.index("--etcd") + 1]
    raise AssertionError("no component of the box shows its etcd endpoint")


def test_with_two_brains_each_admits_its_own_concurrency(
    box: Box, demo_image: str, tmp_path: Path
) -> None:
    from tests.support_ltc import running_brain

    name = name_of("twice")
    create(box, name, ["/bin/sh", "-c", "sleep 3; cat"], demo_image, concurrency=1, queue=0)
    with running_brain(box_etcd(box), box.domain, tmp_path):
        brains: set[str] = set()

        def both_brains_routed() -> bool:
            status, headers, _ = invoke(box, name, method="GET")
            assert status == 405
            brains.add(headers["X-Lattice-Brain"])
            return len(brains) == 2

        wait_for(both_brains_routed, DEADLINE_S, "the router to balance over both brains")
        results: list[int] = []
        lock = threading.Lock()

        def call(i: int) -> None:
            status, _, _ = invoke(box, name, f"request {i}".encode())
            with lock:
                results.append(status)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        # The router balances between the brains: two run at once (one per brain), and
        # the third finds its brain busy with no line.
        assert sorted(results) == [200, 200, 429], results


def bare_sandboxes(box: Box) -> set[str]:
    """The box's running sandboxes that publish no port: what tasks and functions join."""
    client = docker.from_env()
    try:
        items = client.api.containers(filters={
            "label": [f"lattice.cluster_id={box.cluster_id}", "lattice.sandbox="]})
        return {str(item["Id"]) for item in items}
    finally:
        client.close()


def test_after_its_first_run_a_function_runs_in_a_prewarmed_sandbox_used_once(
    box: Box, demo_image: str
) -> None:
    name = name_of("warm")
    # A container in a sandbox's network has the sandbox's host name: its short id.
    create(box, name, ["/bin/sh", "-c", "cat /etc/hostname"], demo_image)
    status, _, first = invoke(box, name)
    assert status == 200, first
    # The first run asked for a sandbox without ports; the cell keeps some warm from then on.
    warm = wait_for(lambda: bare_sandboxes(box), DEADLINE_S, "a warm sandbox without ports")
    status, _, second = invoke(box, name)
    assert status == 200, second
    (used,) = [sandbox for sandbox in warm if sandbox.startswith(second.decode().strip())]
    wait_for(lambda: used not in bare_sandboxes(box), DEADLINE_S, "its sandbox removed")
    status, _, third = invoke(box, name)
    assert status == 200, third
    assert third != second      # a new sandbox each run
