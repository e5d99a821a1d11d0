#!/usr/bin/env bash
# The docker provider's "VM": no systemd, so this script is its init (under tini, which reaps
# orphans). It does what vagrant/provision.sh does on a VM, with `lattice up` supervising the
# components instead of systemd units:
#   - the box's own Docker engine for its cells (the Vagrantfile grants the privileges for it);
#   - the demo image, built in that engine when missing (no registry);
#   - `lattice up` with the router on port 80 of every interface, behind credentials.
# `docker stop` (vagrant halt) sends SIGTERM: `lattice up` stops every process and removes the
# box's containers, then the engine stops. etcd's data and the engine's images stay on disk.
set -euo pipefail

. /vagrant/vagrant/common.sh
LOG_DIR=/var/log/lattice
mkdir -p "$LOG_DIR" "$LATTICE_STATE"
lattice_credentials

# Docker mounts the container's own cgroups read-only; the inner engine creates its containers'
# cgroups below them (so they go when this container goes). CAP_SYS_ADMIN allows the remount.
for hierarchy in /sys/fs/cgroup/*/; do
  mount -o remount,bind,rw "$hierarchy"
done

# /run is a tmpfs (see the Vagrantfile), so no stale pid file survives a halt, as on a VM.
dockerd >"$LOG_DIR/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 120); do
  docker info >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { cat "$LOG_DIR/dockerd.log" >&2; exit 1; }
  sleep 0.25
done
docker info >/dev/null 2>&1 || { echo "entrypoint: dockerd did not start" >&2; exit 1; }

python3 -c 'from lattice.images import build_demo_image; build_demo_image()' >/dev/null

# Credentials go to `lattice up` in its environment (exported above), never in argv.
python3 -m lattice.cli.server up --data-dir "$LATTICE_STATE/box" --domain "$LATTICE_DOMAIN" \
  --router-port "$LATTICE_ROUTER_PORT" --listen 0.0.0.0 --json-logs \
  >"$LOG_DIR/lattice.log" 2>&1 &
up_pid=$!

stop() {
  kill -TERM "$up_pid" 2>/dev/null || true
  wait "$up_pid" || true
  kill -TERM "$dockerd_pid" 2>/dev/null || true
  wait "$dockerd_pid" || true
  exit 0
}
trap stop TERM INT

# `lattice up` exiting by itself (a bad setting) ends the container: `vagrant up` reports it.
wait "$up_pid" || { echo "entrypoint: lattice up exited; see $LOG_DIR/lattice.log" >&2
                     tail -20 "$LOG_DIR/lattice.log" >&2; }
kill -TERM "$dockerd_pid" 2>/dev/null || true
wait "$dockerd_pid" || true
exit 1
