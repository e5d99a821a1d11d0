"""ltc's task commands against a whole box (`lattice up`): run-task through the router and the
log aggregator, and submit-task / task / cancel-task / delete-task with their exit codes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lattice.cli.exit_codes import ExitCode
from tests.integration.box import Box, ltc, running_box, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("box")) as the_box:
        yield the_box


def test_run_task_streams_its_output_and_exits_with_its_status(box: Box, demo_image: str
                                                                ) -> None:
    result = ltc(box, "run-task", "hello", demo_image, "--", "/bin/sh", "-c",
                 "echo first line; echo to stderr >&2; echo last line; exit 7")
    assert result.returncode == 7, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    task_lines = [line.split("] ", 1)[1] for line in lines if "[TASK|0]" in line]
    # Docker reads stdout and stderr through separate pipes: only each stream keeps its order.
    assert sorted(task_lines) == ["first line", "last line", "to stderr"]
    assert task_lines.index("first line") < task_lines.index("last line")
    assert any("[CELL|0] Exit status 7" in line for line in lines)
    assert "Exited with status 7" in result.stderr
    ok = ltc(box, "run-task", "hello", demo_image, "--", "/bin/sh", "-c", "echo fine")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert any(line.endswith("[TASK|0] fine") for line in ok.stdout.splitlines())
    # run-task deletes what it ran.
    status, tasks = box.api("GET", "/v1/tasks")
    assert status == 200
    assert not [t for t in tasks if t["task_guid"].startswith("hello-")]


def test_submit_show_cancel_delete(box: Box, demo_image: str, tmp_path: Path) -> None:
    guid = f"job-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "task.json"
    file.write_text(json.dumps({"task_guid": guid, "image": demo_image, "memory_mb": 16,
                                "command": ["/bin/sh", "-c", "sleep 300"],
                                "annotation": "a long job"}))
    submitted = ltc(box, "submit-task", str(file))
    assert submitted.returncode == 0, submitted.stderr
    assert guid in submitted.stdout

    def running() -> dict[str, object] | None:
        shown = ltc(box, "task", guid, "--json")
        assert shown.returncode == 0, shown.stderr
        data: dict[str, object] = json.loads(shown.stdout)
        return data if data["state"] == "RUNNING" else None

    wait_for(running, 60, "the task to be RUNNING")
    early = ltc(box, "delete-task", guid)
    assert early.returncode == ExitCode.COMMAND_FAILED
    assert "only a COMPLETED task can be deleted" in early.stderr
    assert ltc(box, "cancel-task", guid).returncode == 0
    shown = ltc(box, "task", guid)
    assert shown.returncode == 0
    assert "State:          COMPLETED" in shown.stdout
    assert "Failure reason: task was cancelled" in shown.stdout
    assert ltc(box, "delete-task", guid).returncode == 0
    gone = ltc(box, "task", guid)
    assert gone.returncode == ExitCode.COMMAND_FAILED
    assert "TaskNotFound" in gone.stderr


def test_submit_task_refuses_bad_files_naming_the_problem(
    box: Box, demo_image: str, tmp_path: Path
) -> None:
    missing = ltc(box, "submit-task", str(tmp_path / "nope.json"))
    assert missing.returncode == ExitCode.FILE_SYSTEM_ERROR
    assert "cannot read" in missing.stderr
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    bad_json = ltc(box, "submit-task", str(broken))
    assert bad_json.returncode == ExitCode.INVALID_SYNTAX
    assert "is not valid JSON" in bad_json.stderr
    fields = tmp_path / "fields.json"
    fields.write_text(json.dumps({"task_guid": "x y", "image": demo_image, "memory_mb": -5,
                                  "colour": "red"}))
    refused = ltc(box, "submit-task", str(fields))
    assert refused.returncode == ExitCode.COMMAND_FAILED
    for field in ("task_guid", "memory_mb", "colour"):
        assert f"  {field}: " in refused.stderr
    no_image = tmp_path / "no_image.json"
    no_image.write_text(json.dumps({"task_guid": "fine", "image": "lattice/not-built:1"}))
    unknown = ltc(box, "submit-task", str(no_image))
    assert unknown.returncode == ExitCode.BAD_DOCKER
    assert "not found on the box" in unknown.stderr
    bad_name = ltc(box, "run-task", "no spaces", "img")
    assert bad_name.returncode == ExitCode.INVALID_SYNTAX
