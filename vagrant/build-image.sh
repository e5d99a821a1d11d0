#!/usr/bin/env bash
# Build the base image of the docker provider's "VM", from Debian's packages only: debootstrap
# a bookworm, install what vagrant/provision.sh would install on a VM (Docker engine, etcd,
# Python, busybox for the demo image), and the project's Python dependencies; `docker import`.
#
# The tag carries a hash of this script and of pyproject.toml, so the image is rebuilt exactly
# when what goes into it changes, and built only when missing. Prints the tag on stdout.
#   vagrant/build-image.sh           build if missing
#   vagrant/build-image.sh --tag     print the tag only
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# Keep in step with base_image_tag in the Vagrantfile.
hash=$(cat "$here/build-image.sh" "$root/pyproject.toml" | sha256sum | cut -c1-12)
tag="lattice/vagrant-base:$hash"

if [ "${1:-}" = "--tag" ]; then echo "$tag"; exit 0; fi
if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; exit 0; fi

# systemd is not used by the docker provider (tini and `lattice up` are its init); the test of
# vagrant/provision.sh boots this image with systemd as PID 1 to stand in for a Debian VM.
PACKAGES=(docker.io etcd-server python3 python3-venv busybox-static curl ca-certificates
          tini iptables procps iproute2 systemd)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}   # any Python 3.11 with pip: it fetches the dependencies' wheels

if [ "$(id -u)" -ne 0 ]; then echo "build-image: run as root (debootstrap needs it)" >&2; exit 1; fi
command -v debootstrap >/dev/null || { echo "build-image: apt-get install debootstrap" >&2; exit 1; }

work=$(mktemp -d /tmp/lattice-vagrant-base.XXXXXX)
rootfs="$work/rootfs"
cleanup() {
  umount "$rootfs/proc" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "build-image: debootstrap bookworm (about 30 s)" >&2
debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

# Packages' maintainer scripts must not start services inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
echo "build-image: apt-get install ${PACKAGES[*]}" >&2
chroot "$rootfs" apt-get update -qq
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -qq --no-install-recommends \
  "${PACKAGES[@]}" >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
chroot "$rootfs" apt-get clean
umount "$rootfs/proc"
rm -f "$rootfs/usr/sbin/policy-rc.d"

# The project's dependencies (not the project: its code comes from the synced folder at boot,
# so editing it needs no rebuild). Same Python minor version as Debian's (3.11), so the wheels
# fit; pip runs on the host because the chroot has no index configured.
echo "build-image: Python dependencies" >&2
deps=$("$PYTHON" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$root/pyproject.toml")
mapfile -t dep_list <<<"$deps"
"$PYTHON" -m pip install -q --no-compile --target "$rootfs/opt/lattice/lib" "${dep_list[@]}"

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PYTHONPATH=/vagrant:/opt/lattice/lib' \
  --change 'ENTRYPOINT ["/usr/bin/tini", "--", "/vagrant/vagrant/docker-entrypoint.sh"]' \
  - "$tag" >/dev/null
echo "build-image: built $tag" >&2
echo "$tag"
