"""Images the box builds locally, because no image registry may be reachable.

The demo app is busybox's httpd in a scratch image: a CGI script answers with the instance's
index, so round-robin across instances is visible with plain curl.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

DEMO_IMAGE = "lattice/demo-app:latest"
# A cell's prewarmed network sandboxes (cell/sandboxes.py): a process that holds a network
# namespace and does nothing else. The tag names its content, so a changed image gets a new tag.
SANDBOX_IMAGE = "lattice/sandbox:1"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

_DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY www /www
EXPOSE 8080
CMD ["/bin/sh", "-c", \
     "echo \\"lattice-demo instance $INSTANCE_INDEX listening on port $PORT\\"; \
      exec httpd -f -v -p \\"${PORT:-8080}\\" -h /www"]
"""

_INDEX_CGI = b"""\
#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
echo "Hello from lattice-demo, instance $INSTANCE_INDEX"
"""


# busybox's sleep as PID 1: it never exits by itself, and the cell only ever removes a sandbox
# with SIGKILL (`docker rm -f`), so PID 1's immunity to SIGTERM costs nothing.
_SANDBOX_DOCKERFILE = b"""\
FROM scratch
COPY busybox /bin/busybox
CMD ["/bin/busybox", "sleep", "2147483647"]
"""


class ImageBuildError(Exception):
    """The image could not be built (no static busybox, or Docker refused the build)."""


def find_static_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.exists() and b"ld-linux" not in path.read_bytes()[:65536]:
            return path
    found = shutil.which("busybox")
    if found:
        return Path(found)
    raise ImageBuildError("no static busybox found (Debian: apt-get install busybox-static)")


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def build_context(busybox: Path, files: dict[str, tuple[bytes, int]], dockerfile: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add(tar, "Dockerfile", dockerfile)
        _add(tar, "busybox", busybox.read_bytes(), 0o755)
        for name, (data, mode) in files.items():
            _add(tar, name, data, mode)
    return buffer.getvalue()


def build_busybox_image(
    tag: str, dockerfile: bytes, files: dict[str, tuple[bytes, int]], *, rebuild: bool = False
) -> str:
    """Build a busybox-based image from an in-memory context, unless `tag` already exists."""
    # Imported here, not at the top: `ltc` imports this module for DEMO_IMAGE on every command,
    # and docker-py costs ~80 ms of start-up that only `ltc test` (or a build) needs.
    import docker
    import docker.errors

    client = docker.from_env()
    try:
        if not rebuild:
            try:
                client.images.get(tag)
                return tag
            except docker.errors.ImageNotFound:
                pass
        context = build_context(find_static_busybox(), files, dockerfile)
        try:
            client.images.build(fileobj=io.BytesIO(context), custom_context=True, tag=tag, rm=True)
        except (docker.errors.BuildError, docker.errors.APIError) as exc:
            raise ImageBuildError(f"building {tag} failed: {exc}") from exc
        return tag
    finally:
        client.close()


def build_demo_image(tag: str = DEMO_IMAGE, *, rebuild: bool = False) -> str:
    return build_busybox_image(
        tag, _DOCKERFILE, {"www/cgi-bin/index.cgi": (_INDEX_CGI, 0o755)}, rebuild=rebuild
    )


def build_sandbox_image(tag: str = SANDBOX_IMAGE) -> str:
    return build_busybox_image(tag, _SANDBOX_DOCKERFILE, {})
