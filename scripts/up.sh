#!/usr/bin/env bash
# Start the box in the background, wait until it answers, deploy the demo app with 3 instances.
set -euo pipefail
VENV=${VENV:-.venv}
DATA_DIR=${DATA_DIR:-$HOME/.lattice/box}
DOMAIN=${DOMAIN:-lattice.localhost}
ROUTER_PORT=${ROUTER_PORT:-8080}
mkdir -p "$DATA_DIR"
log="$DATA_DIR/lattice.log"

if [ -f "$DATA_DIR/lattice.pid" ] && kill -0 "$(cat "$DATA_DIR/lattice.pid")" 2>/dev/null; then
  echo "up: the box is already running (pid $(cat "$DATA_DIR/lattice.pid"))"
else
  echo "up: starting the box (log: $log)"
  nohup "$VENV/bin/lattice" up --data-dir "$DATA_DIR" --domain "$DOMAIN" \
    --router-port "$ROUTER_PORT" >"$log" 2>&1 &
  for _ in $(seq 1 120); do
    grep -q "lattice is up" "$log" 2>/dev/null && break
    if grep -q "lattice up:" "$log" 2>/dev/null; then cat "$log" >&2; exit 1; fi
    sleep 0.5
  done
  grep -q "lattice is up" "$log" || { echo "up: the box did not start; see $log" >&2; exit 1; }
fi

"$VENV/bin/python" -c 'from lattice.images import build_demo_image; build_demo_image()'
"$VENV/bin/ltc" target "$DOMAIN:$ROUTER_PORT"
if "$VENV/bin/ltc" status demo >/dev/null 2>&1; then
  "$VENV/bin/ltc" scale demo 3
else
  "$VENV/bin/ltc" create demo lattice/demo-app:latest --instances 3
fi
echo
echo "The demo app runs 3 instances. See the round-robin:"
echo "  for i in 1 2 3 4 5 6; do curl -s -H 'Host: demo.$DOMAIN' http://127.0.0.1:$ROUTER_PORT/; done"
echo "(or curl http://demo.$DOMAIN:$ROUTER_PORT/ where *.localhost resolves to 127.0.0.1)"
echo "Then: $VENV/bin/ltc status demo, $VENV/bin/ltc logs demo; stop the box with: make down"
