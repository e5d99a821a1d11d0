"""Tasks against a real brain and a real cell (Docker containers), through the brain's API.

The brain and the cell run as their own processes, as `lattice up` runs them; every task's
container is run by the real Docker engine and removed by the cell (the cell fixture removes
whatever is left).
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker
import pytest

from tests.support_ltc import Brain, running_brain, running_cell, wait_for

pytestmark = pytest.mark.integration

DOMAIN = "tasks.localhost"
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def brain(module_etcd: str, tmp_path_factory: pytest.TempPathFactory, demo_image: str
          ) -> Iterator[Brain]:
    with running_brain(module_etcd, DOMAIN, tmp_path_factory.mktemp("brain")) as the_brain:
        yield the_brain


@pytest.fixture(scope="module")
def cell(module_etcd: str, brain: Brain, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[str]:
    with running_cell(module_etcd, brain, tmp_path_factory.mktemp("cell")) as cell_id:
        yield cell_id


def api(brain: Brain, method: str, path: str, body: Any = None, raw: bytes | None = None
        ) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", brain.port, timeout=10)
    try:
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read()
        return response.status, json.loads(text) if text.strip() else None
    finally:
        conn.close()


def submit(brain: Brain, image: str, script: str, **extra: Any) -> str:
    guid = f"t-{uuid.uuid4().hex[:10]}"
    status, body = api(brain, "POST", "/v1/tasks", {
        "task_guid": guid, "image": image, "command": ["/bin/sh", "-c", script],
        "memory_mb": 32, **extra,
    })
    assert status == 201, body
    assert body["state"] == "PENDING"
    return guid


def task(brain: Brain, guid: str) -> dict[str, Any]:
    status, body = api(brain, "GET", f"/v1/tasks/{guid}")
    assert status == 200, body
    result: dict[str, Any] = body
    return result


def task_in(brain: Brain, guid: str, state: str) -> dict[str, Any] | None:
    found = task(brain, guid)
    return found if found["state"] == state else None


def task_containers(guid: str) -> list[dict[str, Any]]:
    client = docker.from_env()
    try:
        items: list[dict[str, Any]] = client.api.containers(
            all=True, filters={"label": [f"lattice.task_guid={guid}"]}
        )
        return items
    finally:
        client.close()


def test_a_task_completes_with_its_result_and_is_deleted(
    brain: Brain, cell: str, demo_image: str
) -> None:
    guid = submit(brain, demo_image, "echo working; printf 'the answer: 42' > /result.txt",
                  result_file="/result.txt")
    done = wait_for(lambda: task_in(brain, guid, "COMPLETED"), DEADLINE_S, "COMPLETED")
    assert done["failed"] is False, done["failure_reason"]
    assert done["failure_reason"] == ""
    assert done["result"] == "the answer: 42"
    assert done["exit_status"] == 0
    assert done["cell_id"] == cell
    assert done["first_completed_at"] >= done["created_at"]
    wait_for(lambda: not task_containers(guid), DEADLINE_S, "the container to be removed")
    assert api(brain, "DELETE", f"/v1/tasks/{guid}")[0] == 204
    status, body = api(brain, "GET", f"/v1/tasks/{guid}")
    assert (status, body["error"]["type"]) == (404, "TaskNotFound")


def test_a_failing_task_reports_failed_and_its_exit_status(
    brain: Brain, cell: str, demo_image: str
) -> None:
    guid = submit(brain, demo_image, "echo oops >&2; exit 3", result_file="/nothing")
    done = wait_for(lambda: task_in(brain, guid, "COMPLETED"), DEADLINE_S, "COMPLETED")
    assert done["failed"] is True
    assert done["failure_reason"] == "Exited with status 3"
    assert done["exit_status"] == 3
    assert done["result"] == ""


def test_cancel_kills_a_running_task(brain: Brain, cell: str, demo_image: str) -> None:
    guid = submit(brain, demo_image, "sleep 300")
    wait_for(lambda: task_in(brain, guid, "RUNNING"), DEADLINE_S, "RUNNING")
    wait_for(lambda: task_containers(guid), DEADLINE_S, "its container")
    status, body = api(brain, "DELETE", f"/v1/tasks/{guid}")
    assert (status, body["error"]["type"]) == (409, "InvalidTaskState")
    assert api(brain, "POST", f"/v1/tasks/{guid}/cancel")[0] == 204
    done = task(brain, guid)
    assert done["state"] == "COMPLETED"
    assert done["failed"] is True
    assert done["failure_reason"] == "task was cancelled"
    wait_for(lambda: not task_containers(guid), DEADLINE_S, "the container to be killed")
    status, body = api(brain, "POST", f"/v1/tasks/{guid}/cancel")
    assert (status, body["error"]["type"]) == (409, "InvalidTaskState")
    assert api(brain, "DELETE", f"/v1/tasks/{guid}")[0] == 204


def test_bad_task_json_gets_400_listing_every_field_and_stores_nothing(brain: Brain) -> None:
    status, body = api(brain, "POST", "/v1/tasks", {
        "task_guid": "no spaces allowed", "memory_mb": "lots", "cpu_weight": 500,
        "completion_callback_url": "not a url", "result_file": "relative",
    })
    assert status == 400
    assert body["error"]["type"] == "InvalidRequest"
    fields = {f["field"] for f in body["error"]["fields"]}
    assert fields == {"task_guid", "image", "memory_mb", "cpu_weight",
                      "completion_callback_url", "result_file"}
    status, body = api(brain, "POST", "/v1/tasks", raw=b"{not json")
    assert (status, body["error"]["type"]) == (400, "InvalidJSON")
    status, listed = api(brain, "GET", "/v1/tasks")
    assert status == 200
    assert all(t["task_guid"] != "no spaces allowed" for t in listed)


def test_duplicate_guid_is_refused(brain: Brain, demo_image: str) -> None:
    guid = f"dup-{uuid.uuid4().hex[:8]}"
    body = {"task_guid": guid, "image": demo_image, "memory_mb": 1_000_000}   # never placed
    assert api(brain, "POST", "/v1/tasks", body)[0] == 201
    status, answer = api(brain, "POST", "/v1/tasks", body)
    assert (status, answer["error"]["type"]) == (409, "TaskGuidAlreadyExists")
    assert api(brain, "POST", f"/v1/tasks/{guid}/cancel")[0] == 204
    assert api(brain, "DELETE", f"/v1/tasks/{guid}")[0] == 204


def test_placement_uses_the_cell_with_room_and_reports_what_fits_nowhere(
    brain: Brain, cell: str, demo_image: str
) -> None:
    too_big = submit(brain, demo_image, "true", memory_mb=100_000)
    fits = submit(brain, demo_image, "sleep 300")
    wait_for(lambda: task_in(brain, fits, "RUNNING"), DEADLINE_S, "the small task RUNNING")
    assert task(brain, fits)["cell_id"] == cell
    pending = wait_for(
        lambda: (t := task_in(brain, too_big, "PENDING")) and t["placement_error"] and t,
        DEADLINE_S, "a placement error",
    )
    assert pending["placement_error"] == "insufficient resources"
    assert pending["cell_id"] == ""
    # The running task holds its memory on the cell, as an instance would.
    status, cells = api(brain, "GET", "/v1/cells")
    assert status == 200
    used = next(c["used"] for c in cells if c["cell_id"] == cell)
    assert used["memory_mb"] >= 32
    for guid in (too_big, fits):
        assert api(brain, "POST", f"/v1/tasks/{guid}/cancel")[0] == 204
        assert api(brain, "DELETE", f"/v1/tasks/{guid}")[0] == 204


class _Callbacks:
    """A real HTTP listener on 127.0.0.1 that answers 503 first, then 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses = [503]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.received.append(json.loads(self.rfile.read(length)))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/done"

    def __enter__(self) -> _Callbacks:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_completion_callback_is_retried_after_a_503_then_the_task_is_removed(
    brain: Brain, cell: str, demo_image: str
) -> None:
    with _Callbacks() as callbacks:
        guid = submit(brain, demo_image, "echo -n done > /r", result_file="/r",
                      completion_callback_url=callbacks.url)
        wait_for(lambda: len(callbacks.received) >= 2, DEADLINE_S, "two callback attempts")
        wait_for(lambda: api(brain, "GET", f"/v1/tasks/{guid}")[0] == 404, DEADLINE_S,
                 "the task to be removed after its callback")
    first, second = callbacks.received[:2]
    assert first["task_guid"] == second["task_guid"] == guid
    assert second["failed"] is False
    assert second["result"] == "done"
