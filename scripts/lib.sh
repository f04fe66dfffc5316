# Shared setup for scripts/test and scripts/quickstart: install what is
# missing, start what is down. Sourced, not run.

log() { echo "[$(basename "$0")] $*" >&2; }

APT_UPDATED=0
apt_install() {
  # Installs the Debian packages given, only those missing.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ "$APT_UPDATED" -eq 0 ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  # Package scripts must not start system services (pgbouncer would take 6432).
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && added_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$added_policy" -eq 1 ] && $sudo rm -f "$policy"
  return 0
}

ensure_rust() {
  command -v cargo >/dev/null || { log "cargo is required (https://rustup.rs)"; exit 1; }
}

ensure_postgres() {
  # The machine's PostgreSQL on 127.0.0.1:5432; started if installed and down,
  # installed if missing.
  if ! command -v pg_ctlcluster >/dev/null && ! command -v pg_ctl >/dev/null; then
    apt_install postgresql postgresql-client
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "starting PostgreSQL"
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)
    if [ -n "$version" ]; then
      pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    fi
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  fi
  pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }
}
