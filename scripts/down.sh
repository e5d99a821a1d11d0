#!/usr/bin/env bash
# Stop a box started by `make up` (SIGTERM; `lattice up` stops every process and container).
set -euo pipefail
DATA_DIR=${DATA_DIR:-$HOME/.lattice/box}
pidfile="$DATA_DIR/lattice.pid"
if [ ! -f "$pidfile" ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "down: no box is running on $DATA_DIR"
  exit 0
fi
pid=$(cat "$pidfile")
kill -TERM "$pid"
for _ in $(seq 1 60); do
  kill -0 "$pid" 2>/dev/null || { echo "down: stopped"; exit 0; }
  sleep 0.25
done
echo "down: the box (pid $pid) did not stop within 15 s" >&2
exit 1
