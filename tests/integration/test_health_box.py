"""Health checks end to end on a real box, through `ltc`: the monitor flags, the start timeout
as the crash reason in `ltc status`, HEALTH and CELL lines in `ltc logs`, and the exit status
of a crashed instance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.box import Box, ltc, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, demo_image: str) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("box")) as the_box:
        yield the_box


def test_http_and_command_checks_through_ltc(box: Box, demo_image: str) -> None:
    ltc_ok(box, "create", "checked", demo_image, "--monitor-url", "8080:/cgi-bin/index.cgi",
           "--monitor-timeout", "2s")
    status = ltc_ok(box, "status", "checked")
    assert "http 8080:/cgi-bin/index.cgi" in status
    assert box.app("checked")[0] == 200
    ltc_ok(box, "create", "execd", demo_image, "--monitor-command", "test -d /www")
    assert "command test -d /www" in ltc_ok(box, "status", "execd")
    recent = ltc_ok(box, "logs", "execd", "--recent")
    assert "[CELL|0] Creating container" in recent
    assert "[CELL|0] Successfully created container" in recent
    assert "[HEALTH|0] healthcheck passed" in recent
    ltc_ok(box, "remove", "checked", "execd")


def test_a_check_that_never_passes_crashes_with_the_start_timeout(
    box: Box, demo_image: str
) -> None:
    result = ltc(box, "create", "unready", demo_image, "--monitor-url", "8080:/missing",
                 "--timeout", "3s")
    assert result.returncode != 0
    reason = "Timed out after 3s: health check never passed."
    wait_for(lambda: any(a["crash_reason"] == reason for a in box.actuals("unready")), 60,
             "the start timeout as the crash reason")
    assert reason in ltc_ok(box, "status", "unready")
    recent = ltc_ok(box, "logs", "unready", "--recent")
    assert "[HEALTH|0] GET /missing: status 404" in recent
    ltc_ok(box, "remove", "unready")


def test_status_shows_a_crashed_instances_exit_status_and_reason(
    box: Box, demo_image: str
) -> None:
    ltc(box, "create", "quitter", demo_image, "--no-monitor", "--timeout", "5s", "--",
        "/bin/sh", "-c", "echo bye; exit 3")
    wait_for(lambda: any(a["crash_count"] >= 1 for a in box.actuals("quitter")), 60,
             "a crash")

    def shown() -> str | None:
        status = ltc_ok(box, "status", "quitter")
        return status if "exit status 3" in status else None

    status = wait_for(shown, 30, "the exit status in ltc status")
    assert "Exited with status 3" in status
    assert "[CELL|0] Exit status 3" in ltc_ok(box, "logs", "quitter", "--recent")
    ltc_ok(box, "remove", "quitter")
