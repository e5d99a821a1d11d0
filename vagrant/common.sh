# Shared by vagrant/provision.sh (a VM with systemd) and vagrant/docker-entrypoint.sh (the
# docker provider's container, no systemd): the same settings, credentials and readiness check.
# Sourced, not run.

LATTICE_STATE=${LATTICE_STATE:-/var/lib/lattice}
LATTICE_DOMAIN=${LATTICE_DOMAIN:-lattice.localhost}
LATTICE_ROUTER_PORT=${LATTICE_ROUTER_PORT:-80}
CREDENTIALS_FILE="$LATTICE_STATE/credentials"

# The box's credentials: LATTICE_USERNAME/LATTICE_PASSWORD when given, else the ones generated
# on the first boot (kept, so that a reboot keeps the saved `ltc target` working). A box on a
# network is never open, so there is no "no credentials" case here.
lattice_credentials() {
  mkdir -p "$LATTICE_STATE"
  if [ -n "${LATTICE_USERNAME:-}" ] || [ -n "${LATTICE_PASSWORD:-}" ]; then
    if [ -z "${LATTICE_USERNAME:-}" ] || [ -z "${LATTICE_PASSWORD:-}" ]; then
      echo "lattice: set both LATTICE_USERNAME and LATTICE_PASSWORD, or neither" >&2
      return 1
    fi
    GENERATED=no
  elif [ -s "$CREDENTIALS_FILE" ]; then
    LATTICE_USERNAME=$(sed -n 's/^LATTICE_USERNAME=//p' "$CREDENTIALS_FILE")
    LATTICE_PASSWORD=$(sed -n 's/^LATTICE_PASSWORD=//p' "$CREDENTIALS_FILE")
    GENERATED=yes
  else
    LATTICE_USERNAME=lattice
    # 24 characters from [A-Za-z0-9]: no quoting problems in a shell, an env file or a URL.
    LATTICE_PASSWORD=$(python3 -c 'import secrets, string
print("".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24)))')
    GENERATED=yes
  fi
  (umask 077 && printf 'LATTICE_USERNAME=%s\nLATTICE_PASSWORD=%s\n' \
    "$LATTICE_USERNAME" "$LATTICE_PASSWORD" >"$CREDENTIALS_FILE.new")
  mv "$CREDENTIALS_FILE.new" "$CREDENTIALS_FILE"
  export LATTICE_USERNAME LATTICE_PASSWORD GENERATED
}

# Ready: through the router, the API lists a cell and the log aggregator answers. The same
# condition `lattice up` announces on.
lattice_ready() {
  local auth="$LATTICE_USERNAME:$LATTICE_PASSWORD"
  curl -fs -u "$auth" -H "Host: receptor.$LATTICE_DOMAIN" \
      "http://127.0.0.1:$LATTICE_ROUTER_PORT/v1/cells" 2>/dev/null | grep -q cell_id \
    && curl -fs -H "Host: doppler.$LATTICE_DOMAIN" \
      "http://127.0.0.1:$LATTICE_ROUTER_PORT/health" >/dev/null 2>&1
}

lattice_wait_ready() {
  local timeout=${1:-120} start=$SECONDS
  until lattice_ready; do
    if [ $((SECONDS - start)) -ge "$timeout" ]; then
      echo "lattice: the box did not become ready within ${timeout} s" >&2
      return 1
    fi
    sleep 0.5
  done
}

# What the user types on the host. $1: the router's address as the host sees it.
lattice_print_target() {
  local where=$1
  echo "lattice is up."
  echo "  ltc target $where --username $LATTICE_USERNAME   (password below, or on stdin)"
  if [ "$GENERATED" = yes ]; then
    echo "  generated credentials: username $LATTICE_USERNAME, password $LATTICE_PASSWORD"
    echo "  (set LATTICE_USERNAME and LATTICE_PASSWORD before the first \`vagrant up\` to choose them)"
  else
    echo "  credentials: the LATTICE_USERNAME and LATTICE_PASSWORD you gave"
  fi
}
