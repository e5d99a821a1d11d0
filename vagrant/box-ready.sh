#!/usr/bin/env bash
# Run inside the docker provider's container by the Vagrantfile's after-up trigger: wait until
# the box answers, then print the `ltc target` line and the credentials for the host's user.
# $1: the router's address as the host sees it (e.g. lattice.localhost:8180).
set -euo pipefail
. /vagrant/vagrant/common.sh
lattice_credentials
lattice_wait_ready "${LATTICE_READY_TIMEOUT:-180}" || {
  tail -30 /var/log/lattice/lattice.log >&2 || true
  exit 1
}
lattice_print_target "$1"
