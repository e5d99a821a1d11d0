"""`ltc update` and `ltc submit-lrp` end to end, on a real box: a rolling, health-gated update
of the image and of the env under load loses no request; routes and instances update in place;
submit-lrp creates, then updates, and refuses to change what cannot be updated."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lattice.images import build_busybox_image
from tests.integration.box import Box, ltc, ltc_ok, running_box, wait_for

pytestmark = pytest.mark.integration

VERSIONED_DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 8080
CMD ["/bin/sh", "-c", "exec httpd -f -p 8080 -h /www"]
"""


def versioned_image(version: str) -> str:
    """The demo app, answering `VERSION GREETING INDEX`: which image and env served a request."""
    cgi = (
        "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\n"
        f'echo "{version} ${{GREETING:-none}} $INSTANCE_INDEX"\n'
    ).encode()
    return build_busybox_image(f"lattice-test/rolling:{version}", VERSIONED_DOCKERFILE,
                               {"www/cgi-bin/index.cgi": (cgi, 0o755)})


@pytest.fixture(scope="module")
def images(docker_client: object) -> tuple[str, str]:
    return versioned_image("v1"), versioned_image("v2")


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, images: tuple[str, str]) -> Iterator[Box]:
    with running_box(tmp_path_factory.mktemp("box"), ltc_timeout=150) as the_box:
        yield the_box


@dataclass
class Hammer:
    """Requests the app's route back to back from a thread, counting every answer."""

    box: Box
    app: str
    bodies: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, body = self.box.app(self.app)
            except OSError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            if status == 200:
                self.bodies[body.strip().rsplit(" ", 1)[0]] += 1
            else:
                self.failures.append(f"{status}: {body.strip()}")

    def __enter__(self) -> Hammer:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(30)


def app_versions(box: Box, app: str) -> set[str]:
    return {box.app(app)[1].strip().rsplit(" ", 1)[0] for _ in range(10)}


def test_image_and_env_updates_roll_under_load_without_a_failed_request(
    box: Box, images: tuple[str, str]
) -> None:
    v1, v2 = images
    ltc_ok(box, "create", "roll", v1, "--instances", "2")
    with Hammer(box, "roll") as hammer:
        wait_for(lambda: sum(hammer.bodies.values()) >= 20, 30, "load on v1")
        out = ltc_ok(box, "update", "roll", "--image", v2)
        assert "every instance runs the new version" in out
        served_during_image_update = dict(hammer.bodies)
        ltc_ok(box, "update", "roll", "--env", "GREETING=hola")
        wait_for(lambda: hammer.bodies["v2 hola"] >= 20, 30, "load on the new env")
    assert hammer.failures == []
    assert served_during_image_update["v1 none"] >= 20
    assert served_during_image_update["v2 none"] >= 1
    assert app_versions(box, "roll") == {"v2 hola"}
    actuals = box.wait_running("roll", 2)
    assert sorted(a["index"] for a in actuals) == [0, 1]     # the spare is gone
    assert {a["run_version"] for a in actuals} == {2}
    ltc_ok(box, "remove", "roll")


def test_an_image_that_never_gets_healthy_leaves_the_old_instances_serving(
    box: Box, images: tuple[str, str]
) -> None:
    v1, _ = images
    mute = build_busybox_image(
        "lattice-test/rolling:mute", VERSIONED_DOCKERFILE.replace(
            b'"exec httpd -f -p 8080 -h /www"', b'"exec sleep 3600"'), {"www/x": (b"x", 0o644)})
    # --timeout is also the server's start timeout: the mute spare crashes after 10 s.
    ltc_ok(box, "create", "stuck", v1, "--timeout", "10s")
    assert ltc(box, "update", "stuck", "--image", mute, "--timeout", "60s").returncode != 0
    spare = next(a for a in box.actuals("stuck") if a["index"] == 1)
    assert spare["crash_count"] >= 1
    assert spare["crash_reason"] == "Timed out after 10s: health check never passed."
    # Health-gated: the old instance was never stopped and still serves.
    index0 = next(a for a in box.actuals("stuck") if a["index"] == 0)
    assert index0["state"] == "RUNNING"
    assert index0["run_version"] == 0
    assert box.app("stuck")[0] == 200
    ltc_ok(box, "remove", "stuck")


def test_routes_and_instances_update_in_place(box: Box, images: tuple[str, str]) -> None:
    v1, _ = images
    ltc_ok(box, "create", "places", v1)
    first = box.actuals("places")[0]["instance_guid"]
    ltc_ok(box, "update", "places", "-R", "elsewhere", "--instances", "2")
    assert box.app("elsewhere")[0] == 200
    assert box.app("places")[0] == 404
    box.wait_running("places", 2)
    assert box.actuals("places")[0]["instance_guid"] == first    # not replaced
    ltc_ok(box, "update", "places", "--no-routes")
    assert box.app("elsewhere")[0] == 404
    bad = ltc(box, "update", "places", "-R", f"receptor.{box.domain}")
    assert bad.returncode != 0
    assert "routes" in bad.stderr
    assert ltc(box, "update", "places").returncode == 13          # nothing to update
    ltc_ok(box, "remove", "places")


def test_submit_lrp_creates_then_updates_and_refuses_what_it_cannot_change(
    box: Box, images: tuple[str, str], tmp_path: Path
) -> None:
    v1, v2 = images
    lrp = {"process_guid": "submitted", "image": v1, "instances": 1, "memory_mb": 64,
           "routes": [{"hostnames": [f"submitted.{box.domain}"], "port": 8080}]}
    file = tmp_path / "lrp.json"
    file.write_text(json.dumps(lrp))
    assert "Created submitted" in ltc_ok(box, "submit-lrp", str(file))
    assert box.app("submitted")[1].startswith("v1 ")

    file.write_text(json.dumps({**lrp, "image": v2, "instances": 2}))
    assert "Updated submitted" in ltc_ok(box, "submit-lrp", str(file))
    assert app_versions(box, "submitted") == {"v2 none"}
    assert len(box.wait_running("submitted", 2)) == 2

    file.write_text(json.dumps({**lrp, "memory_mb": 256}))
    refused = ltc(box, "submit-lrp", str(file))
    assert refused.returncode == 13
    assert "memory_mb" in refused.stderr
    assert len(box.actuals("submitted")) == 2                   # nothing changed

    file.write_text("{not json")
    assert ltc(box, "submit-lrp", str(file)).returncode == 13
    ltc_ok(box, "remove", "submitted")
