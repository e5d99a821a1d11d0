#!/usr/bin/env bash
# Install what the box needs on Debian or Ubuntu, and start the Docker engine if none answers.
# Safe to run again: it installs only what is missing and starts only what is not running.
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 || need+=(busybox-static)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v curl >/dev/null 2>&1 || need+=(curl)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  echo "deps: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The appliance's test (tests/integration/test_vagrant_e2e.py): Debian's Vagrant with its libvirt
# plugin (so `vagrant validate` checks that provider too), debootstrap for the base image that
# vagrant/build-image.sh builds. No recommends: they are hypervisor and media tools.
vagrant_need=()
command -v vagrant >/dev/null 2>&1 || vagrant_need+=(vagrant)
dpkg-query -W -f='${Status}' vagrant-libvirt 2>/dev/null | grep -q "ok installed" \
  || vagrant_need+=(vagrant-libvirt)
command -v debootstrap >/dev/null 2>&1 || vagrant_need+=(debootstrap)
if [ ${#vagrant_need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  echo "deps: installing ${vagrant_need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${vagrant_need[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "deps: starting the Docker engine"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $sudo systemctl start docker
  else
    $sudo sh -c 'nohup dockerd >/var/log/dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "deps: the Docker engine did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
echo "deps: ok (docker $(docker version --format '{{.Server.Version}}'), $(etcd --version | head -1))"
