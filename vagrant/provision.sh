#!/usr/bin/env bash
# Provision a Debian 12 VM as the box: Debian's Docker engine and etcd, the project from the
# synced folder, one systemd unit per component, then wait until each answers and print the
# `ltc target` line and the credentials. Idempotent: a second run changes nothing (units are
# rewritten only when their content differs; a service restarts only then).
#
# Environment (from the Vagrantfile): LATTICE_IP (the private-network address the components
# advertise and listen on; never the NAT address), LATTICE_DOMAIN, and optionally
# LATTICE_USERNAME/LATTICE_PASSWORD (else credentials are generated once and kept).
set -euo pipefail

LATTICE_IP=${LATTICE_IP:?the VM private-network address}
LATTICE_DOMAIN=${LATTICE_DOMAIN:-$LATTICE_IP.nip.io}
. /vagrant/vagrant/common.sh
VENV=/opt/lattice/venv
ENV_FILE=/etc/lattice/lattice.env
BRAIN_PORT=8888
LOGAGG_PORT=8889
ETCD=http://127.0.0.1:2379

# The address must be on this VM: the components advertise it, and a wrong one is what made
# k3s and Lattice users' routes point at the unreachable NAT address.
# (Read whole first: with pipefail, `ip | grep -q` fails when grep stops reading early.)
addresses=$(ip -4 -o addr show)
if ! grep -qw "inet $LATTICE_IP" <<<"$addresses"; then
  echo "provision: no interface has LATTICE_IP=$LATTICE_IP (ip -4 addr shows the VM's)" >&2
  exit 1
fi

need=()
for pkg in docker.io etcd-server python3-venv busybox-static curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "provision: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's etcd-server package starts its own etcd on 2379; the box's unit replaces it.
systemctl disable --now etcd.service >/dev/null 2>&1 || true

# The project: installed (not editable) from the synced folder, so the VM runs a copy.
stamp="$VENV/.lattice-source"
source_hash=$(cd /vagrant && find lattice router logagg pyproject.toml -name '*.py' -o \
  -name pyproject.toml | sort | xargs sha256sum | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/lattice" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$source_hash" ]; then
  echo "provision: installing the project into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  build=$(mktemp -d)
  cp -r /vagrant/pyproject.toml /vagrant/README.md /vagrant/lattice /vagrant/router \
    /vagrant/logagg "$build/"
  "$VENV/bin/pip" install -q "$build"
  rm -rf "$build"
  echo "$source_hash" >"$stamp"
fi

lattice_credentials
mkdir -p /etc/lattice
env_text="LATTICE_USERNAME=$LATTICE_USERNAME
LATTICE_PASSWORD=$LATTICE_PASSWORD
LATTICE_DOMAIN=$LATTICE_DOMAIN"

changed=()
# write_file PATH MODE CONTENT: rewrite only when different, and note the change.
write_file() {
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$3" ]; then
    (umask 077 && printf '%s\n' "$3" >"$1")
    chmod "$2" "$1"
    changed+=("$1")
  fi
}
write_file "$ENV_FILE" 600 "$env_text"

unit() {  # unit NAME DESCRIPTION AFTER EXEC
  write_file "/etc/systemd/system/lattice-$1.service" 644 "[Unit]
Description=Lattice $2
After=$3
Wants=$3

[Service]
EnvironmentFile=$ENV_FILE
ExecStart=$4
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target"
}

# etcd's data dir is on the VM's disk: `vagrant halt` + `vagrant up` brings every app back.
unit etcd "etcd (the box's state)" network-online.target \
  "/usr/bin/etcd --name lattice --data-dir $LATTICE_STATE/etcd --listen-client-urls $ETCD --advertise-client-urls $ETCD --listen-peer-urls http://127.0.0.1:2380 --auto-compaction-mode periodic --auto-compaction-retention 1h"
unit brain "brain (API, auctioneer, converger)" lattice-etcd.service \
  "$VENV/bin/lattice brain --etcd $ETCD --domain \${LATTICE_DOMAIN} --listen 127.0.0.1 --port $BRAIN_PORT --json-logs"
unit logagg "log aggregator" lattice-etcd.service \
  "$VENV/bin/lattice logagg --etcd $ETCD --domain \${LATTICE_DOMAIN} --listen 127.0.0.1 --port $LOGAGG_PORT --json-logs"
unit router "router (port 80)" lattice-etcd.service \
  "$VENV/bin/lattice router --etcd $ETCD --listen 0.0.0.0 --port 80 --json-logs"
# The cell publishes container ports on, and advertises, the private-network address.
unit cell "cell (Docker)" "lattice-etcd.service docker.service" \
  "$VENV/bin/lattice cell --etcd $ETCD --cell-id cell-0 --address $LATTICE_IP --json-logs"

services=(lattice-etcd lattice-brain lattice-logagg lattice-router lattice-cell)
systemctl daemon-reload
systemctl enable --quiet docker.service "${services[@]/%/.service}"
systemctl start docker.service
DATA_DIR=$LATTICE_STATE "$VENV/bin/python" -c \
  'from lattice.images import build_demo_image; build_demo_image()' >/dev/null
if [ ${#changed[@]} -gt 0 ]; then
  systemctl restart "${services[@]/%/.service}"
else
  systemctl start "${services[@]/%/.service}"
fi

# Each component's /health, then the whole path through the router.
curl -fs --retry 60 --retry-delay 1 --retry-all-errors -o /dev/null "$ETCD/health"
curl -fs --retry 60 --retry-delay 1 --retry-all-errors -o /dev/null \
  "http://127.0.0.1:$BRAIN_PORT/health"
curl -fs --retry 60 --retry-delay 1 --retry-all-errors -o /dev/null \
  "http://127.0.0.1:$LOGAGG_PORT/health"
LATTICE_ROUTER_PORT=80 lattice_wait_ready 120
lattice_print_target "$LATTICE_DOMAIN"
