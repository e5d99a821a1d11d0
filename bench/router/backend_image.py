"""The benchmark's backend: nginx-light in a Debian minbase image, built locally and cached.

No registry is reachable, so the image is made with debootstrap and `docker import` (about a
minute the first time; later runs find the tag and skip it). nginx answers a small fixed body
from memory with one worker, so the backend is far faster than any proxy in front of it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BACKEND_IMAGE = "lattice/bench-nginx:bookworm"
BACKEND_PORT = 8080
MIRROR = "http://deb.debian.org/debian"

BACKEND_NGINX_CONF = f"""\
worker_processes 1;
pid /run/nginx.pid;
error_log stderr error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen {BACKEND_PORT};
        location / {{ default_type text/plain; return 200 "hello from nginx\\n"; }}
    }}
}}
"""


def image_exists(tag: str = BACKEND_IMAGE) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", tag], capture_output=True, check=False
    )
    return result.returncode == 0


def build_backend_image(tag: str = BACKEND_IMAGE) -> str:
    """Build the nginx backend image unless `tag` exists already; returns the tag."""
    if image_exists(tag):
        return tag
    root = Path(tempfile.mkdtemp(prefix="lattice-bench-rootfs-"))
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root), MIRROR],
            check=True, stdout=subprocess.DEVNULL,
        )
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        # Keep the package's post-install script from starting nginx inside the chroot.
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        subprocess.run(
            ["chroot", str(root), "apt-get", "install", "-y", "--no-install-recommends",
             "nginx-light"],
            check=True, stdout=subprocess.DEVNULL,
        )
        policy.unlink()
        subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True)
        (root / "etc/nginx/nginx.conf").write_text(BACKEND_NGINX_CONF)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "import", "--change", 'CMD ["nginx", "-g", "daemon off;"]',
             "--change", f"EXPOSE {BACKEND_PORT}", "-", tag],
            stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL,
        )
        if tar.stdout is not None:
            tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar of the benchmark rootfs failed")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return tag


if __name__ == "__main__":
    print(build_backend_image())
