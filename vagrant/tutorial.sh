#!/usr/bin/env bash
# Produce docs/tutorial.md from a real run: boot the box with `vagrant up --provider=docker`,
# run every step of the tutorial against it, and write each command with its real output.
# Re-run it after changing the box so the tutorial stays true:
#   vagrant/tutorial.sh [OUTPUT]        (default docs/tutorial.md; needs root for the first
#                                        base-image build, like `vagrant up` does)
# Vagrant's state goes to a temporary directory, so a developer's own box is not touched; the
# box is destroyed at the end whatever happens.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/docs/tutorial.md}
work=$(mktemp -d /tmp/lattice-tutorial.XXXXXX)
export VAGRANT_CWD=$root VAGRANT_DOTFILE_PATH=$work/dot LATTICE_CONFIG=$work/ltc.json
export LATTICE_PORT=${LATTICE_PORT:-8180}
unset LATTICE_USERNAME LATTICE_PASSWORD LATTICE_DOMAIN
PATH=$root/.venv/bin:$PATH
doc=$work/tutorial.md
password=

finish() {
  vagrant destroy -f >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap finish EXIT

say() { printf '%s\n' "$*" >>"$doc"; }

# show TITLE-LESS COMMAND...: run it, append "$ command" and its output (the generated password
# masked) to the tutorial. The command's exit status is the step's.
show() {
  local display=${SHOW_AS:-$*} output status=0
  output=$("$@" 2>&1) || status=$?
  if [ -n "$password" ]; then output=${output//$password/<password>}; fi
  { echo '```console'; echo "\$ $display"; printf '%s\n' "$output"; echo '```'; } >>"$doc"
  printf '%s\n' "$output" >&2
  return "$status"
}

# `docker exec` into the Vagrant machine (Debian's Vagrant 2.3.4 fails on `vagrant docker-exec`
# with an ArgumentError, so the tutorial shows what works).
in_box() { docker exec "$(cat "$VAGRANT_DOTFILE_PATH/machines/default/docker/id")" "$@"; }
IN_BOX='docker exec $(cat .vagrant/machines/default/docker/id)'

# Poll, with a deadline, until an instance of APP at INDEX reports a crash and runs again.
wait_restarted() {
  local app=$1 index=$2
  for _ in $(seq 1 120); do
    if ltc status "$app" --json | python3 -c '
import json, sys
def instances(node):  # every object that describes an instance, wherever the JSON puts it
    if isinstance(node, dict):
        if "index" in node and "state" in node:
            yield node
        for value in node.values():
            yield from instances(value)
    elif isinstance(node, list):
        for value in node:
            yield from instances(value)
index = int(sys.argv[1])
sys.exit(0 if any(i["index"] == index and i["state"] == "RUNNING" and i.get("crash_count", 0) >= 1
                  for i in instances(json.load(sys.stdin))) else 1)' "$index" 2>/dev/null; then return 0; fi
    sleep 0.5
  done
  echo "tutorial: instance $index of $app did not come back" >&2
  return 1
}

say "# Tutorial: a cluster in a box with \`vagrant up\`"
say ""
say "Every command below was run, and every output is the real one: \`vagrant/tutorial.sh\`"
say "boots a box, runs these steps against it and writes this page. Only the generated password"
say "is shown as \`<password>\`."
say ""
say "You need a Linux machine with Docker and Vagrant (\`apt-get install vagrant\`), and this"
say "repository. On a machine with VirtualBox or libvirt, plain \`vagrant up\` boots a Debian VM"
say "instead, at \`LATTICE_IP\` (192.168.11.11), and its domain is \`192.168.11.11.nip.io\`."
say ""
say "## 1. Boot the box"
say ""
say "The first \`vagrant up\` builds the base image from Debian's packages (about a minute, as"
say "root); later ones reuse it. The box prints the line to target it and the credentials it"
say "generated (set \`LATTICE_USERNAME\` and \`LATTICE_PASSWORD\` beforehand to choose them)."
say ""
boot=$(vagrant up --provider=docker 2>&1) || { printf '%s\n' "$boot" >&2; exit 1; }
password=$(sed -n 's/.*generated credentials: username [^,]*, password //p' <<<"$boot")
username=$(sed -n 's/.*generated credentials: username \([^,]*\),.*/\1/p' <<<"$boot")
SHOW_AS="vagrant up --provider=docker" show printf '%s\n' "$boot"
say ""
say "## 2. Target it"
say ""
say "\`ltc\` is in the project's virtualenv (\`make install\`, then"
say "\`export PATH=\$PWD/.venv/bin:\$PATH\`). It asks for the password, or reads it on stdin."
say "\`*.localhost\` names need no DNS: \`ltc\` sends them to 127.0.0.1 itself."
say ""
SHOW_AS="ltc target lattice.localhost:$LATTICE_PORT --username $username" \
  show ltc target "lattice.localhost:$LATTICE_PORT" --username "$username" <<<"$password"
say ""
say "A smoke test of the whole box: create, route, scale, logs, remove."
say ""
show ltc test
say ""
say "## 3. Create an app"
say ""
say "The box builds \`lattice/demo-app\` in its own engine (there is no registry). It answers"
say "with the index of the instance that served the request."
say ""
show ltc create hello lattice/demo-app:latest
show curl -s "http://hello.lattice.localhost:$LATTICE_PORT/" \
  --resolve "hello.lattice.localhost:$LATTICE_PORT:127.0.0.1"
say ""
say "(\`--resolve\` because curl asks the system resolver; browsers map \`*.localhost\` to"
say "127.0.0.1 by themselves.)"
say ""
say "## 4. Scale it"
say ""
show ltc scale hello 3
SHOW_AS="for i in 1 2 3; do curl -s http://hello.lattice.localhost:$LATTICE_PORT/ --resolve hello.lattice.localhost:$LATTICE_PORT:127.0.0.1; done" \
  show bash -c "for i in 1 2 3; do curl -s http://hello.lattice.localhost:$LATTICE_PORT/ --resolve hello.lattice.localhost:$LATTICE_PORT:127.0.0.1; done"
show ltc status hello
say ""
say "## 5. Crash an instance and watch it come back"
say ""
say "Kill the container of instance 1 behind the box's back (the box runs its own Docker engine"
say "inside the Vagrant machine). The cell sees it die and reports the crash; the brain restarts"
say "it at once (Diego's policy: the first two crashes restart immediately, then with backoff)."
say ""
SHOW_AS="$IN_BOX docker ps -q --filter label=lattice.process_guid=hello --filter label=lattice.index=1" \
  show in_box docker ps -q --filter label=lattice.process_guid=hello --filter label=lattice.index=1
victim=$(in_box docker ps -q --filter label=lattice.process_guid=hello --filter label=lattice.index=1)
SHOW_AS="$IN_BOX docker kill $victim" show in_box docker kill "$victim"
wait_restarted hello 1
show ltc status hello
say ""
say "## 6. Logs"
say ""
say "\`ltc logs hello\` follows live lines until Ctrl-C; \`--recent\` prints what the box kept."
say ""
show bash -c "ltc logs --recent hello | tail -8"
say ""
say "## 7. Visualize"
say ""
say "One mark per instance, per cell, coloured by state (\`--rate 1s\` keeps refreshing)."
say ""
show ltc visualize
say ""
say "## 8. Remove it, and stop the box"
say ""
show ltc remove hello
show ltc list
say ""
say "\`vagrant halt\` stops the box and keeps its state: the next \`vagrant up\` brings every app"
say "back. \`vagrant destroy -f\` removes the machine, its engine's volume and everything in it."
say ""
show vagrant destroy -f

mkdir -p "$(dirname "$out")"
cp "$doc" "$out"
echo "tutorial: wrote $out" >&2
