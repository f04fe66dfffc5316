#!/usr/bin/env bash
# pgbench through three paths in the same run, on this machine, all on 127.0.0.1:
#   direct     pgbench -> PostgreSQL 127.0.0.1:5432
#   pgbouncer  pgbench -> PgBouncer (session mode, started here) -> PostgreSQL
#   sluice     pgbench -> Sluice (started here, SQLite audit on, API-key auth) -> PostgreSQL
#   policy     the same Sluice with Cedar policy on: policies/starter.cedar, a permit
#              for pgbench's tables, and 200 permits for other groups and
#              connections (loaded, sliced away), so every statement is classified
#              and decided
#   unmasked   the same Sluice as `sluice` with masking off ([masking]
#              default_profile = "unmasked"); `sluice` masks with Safe Harbor,
#              the default, so sluice/unmasked is what masking costs on
#              pgbench's tables, which hold no PHI
#   unrecorded the same Sluice as `sluice` with session recording off
#              ([recording] enabled = false), so sluice/unrecorded is what
#              recording (on by default) costs
#
# For each target x protocol (simple, extended, prepared) x clients (1, 8, 32) it
# runs select-only pgbench (-S), plus the TPC-B-like default script at 8 clients
# for each protocol. Each run: -T BENCH_SECONDS, -j min(clients, 2), -n (the
# vacuum/truncate pgbench would do is done directly before every run instead,
# so every target starts alike), and a per-transaction log (-l) from which the
# exact p99 latency is computed. It prints a table (TPS, average and p99
# latency, and for sluice and policy rows TPS ratios against direct and pgbouncer), then
# ONE summary line:
#   sluice/pgbouncer=<x> sluice/direct=<y> policy/pgbouncer=<z> policy/direct=<w> masked/unmasked=<v> recorded/unrecorded=<u>
# from the prepared, select-only, 8-client TPS (n/a where a figure is missing).
#
# Setup and teardown: installs pgbouncer and pgbench (postgresql-contrib) with
# apt-get when missing; creates the database sluice_bench_<pid> on
# 127.0.0.1:5432 as user root (trust auth), `pgbench -i -s 10`; PgBouncer and
# Sluice get free loopback ports, their own temp dir, config and log; a trap
# stops the PIDs started here and drops the database. TLS is off on every hop
# (PGSSLMODE=disable, server_tls_sslmode=disable, tls="disable") so the paths
# compare like for like.
#
# Environment:
#   BENCH_SECONDS   seconds per pgbench run (default 10)
#   BENCH_QUICK=1   smoke test: 8 clients only, 5 s per run
#   BENCH_TARGETS   which targets to run (default "direct pgbouncer sluice policy unmasked unrecorded")
#   BENCH_SCALE     pgbench -i scale (default 10)
#   SLUICE_BIN      the sluice binary to use; otherwise `cargo build --release -p sluice`
#                   and target/release/sluice
#   BENCH_KEEP=1    keep the temp dir (logs, configs) for inspection
#
# Exit status: 0 when every pgbench run succeeded, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_TARGETS=${BENCH_TARGETS:-"direct pgbouncer sluice policy unmasked unrecorded"}
BENCH_SCALE=${BENCH_SCALE:-10}
CLIENTS=(1 8 32)
PROTOCOLS=(simple extended prepared)
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
  CLIENTS=(8)
  BENCH_SECONDS=5
fi

PGHOST_=127.0.0.1
PGPORT_=5432
DB="sluice_bench_$$"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice_bench.XXXXXX")
chmod 755 "$WORK"
export PGSSLMODE=disable PGCONNECT_TIMEOUT=10
PGB_PID="" SLUICE_PID="" DB_CREATED=0 FAILED_RUNS=0

log() { echo "[bench] $*" >&2; }
die() { log "error: $*"; exit 1; }

admin_psql() { timeout 120 psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST_" -p "$PGPORT_" -U root "$@"; }

stop_pid() { # PID: SIGTERM, up to 10 s, then SIGKILL; only a PID this script started
  local pid=$1 i
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  set +e
  stop_pid "$SLUICE_PID"; SLUICE_PID=""
  stop_pid "$PGB_PID"; PGB_PID=""
  if [[ $DB_CREATED == 1 ]]; then
    admin_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || log "could not drop $DB"
  fi
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------- tools

APT_UPDATED=0
apt_install() {
  local policy_added=0
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    timeout 600 apt-get update -qq >&2
    APT_UPDATED=1
  fi
  # never let the package start its own system service (on a well-known port)
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy_added=1
  fi
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "$@" >&2 || { [[ $policy_added == 0 ]] || rm -f /usr/sbin/policy-rc.d; return 1; }
  [[ $policy_added == 0 ]] || rm -f /usr/sbin/policy-rc.d
}

find_pgbench() {
  local p
  for p in $(ls -d /usr/lib/postgresql/*/bin/pgbench 2>/dev/null | sort -V -r) $(command -v pgbench || true); do
    if "$p" --version >/dev/null 2>&1; then echo "$p"; return 0; fi
  done
  return 1
}

PGBENCH=$(find_pgbench) || { apt_install postgresql-contrib; PGBENCH=$(find_pgbench) || die "no pgbench after install"; }
log "pgbench: $PGBENCH ($("$PGBENCH" --version))"
if [[ " $BENCH_TARGETS " == *" pgbouncer "* ]]; then
  PGBOUNCER=$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)
  if [[ -z $PGBOUNCER ]]; then
    apt_install pgbouncer
    PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  fi
  log "pgbouncer: $PGBOUNCER ($("$PGBOUNCER" --version | head -n 1))"
fi
if [[ " $BENCH_TARGETS " =~ \ (sluice|policy|unmasked|unrecorded)\  ]]; then
  if [[ -n ${SLUICE_BIN:-} ]]; then
    [[ -x $SLUICE_BIN ]] || die "SLUICE_BIN=$SLUICE_BIN is not executable"
  else
    log "cargo build --release -p sluice"
    (cd "$ROOT" && timeout "${BUILD_TIMEOUT:-3600}" cargo build --release -p sluice >&2) || die "cargo build failed"
    SLUICE_BIN="$ROOT/target/release/sluice"
  fi
  log "sluice: $SLUICE_BIN"
fi

# ---------------------------------------------------------------- database

log "creating $DB and pgbench -i -s $BENCH_SCALE"
admin_psql -d postgres -c "CREATE DATABASE $DB"
DB_CREATED=1
timeout 900 "$PGBENCH" -i -q -s "$BENCH_SCALE" -h "$PGHOST_" -p "$PGPORT_" -U root "$DB" >"$WORK/init.log" 2>&1 \
  || { cat "$WORK/init.log" >&2; die "pgbench -i failed"; }

# ---------------------------------------------------------------- targets

# Each start_* sets TARGET_ARGS: the pgbench connection options for that target.
start_direct() { TARGET_ARGS=(-h "$PGHOST_" -p "$PGPORT_" -U root "$DB"); TARGET_ENV=(); }
stop_direct() { :; }

start_pgbouncer() {
  local dir="$WORK/pgbouncer" port runas i
  port=$(free_port)
  mkdir -p "$dir"
  printf '"root" ""\n' >"$dir/userlist.txt"
  cat >"$dir/pgbouncer.ini" <<EOF
[databases]
$DB = host=$PGHOST_ port=$PGPORT_ dbname=$DB user=root

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 40
server_tls_sslmode = disable
client_tls_sslmode = disable
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
  # PgBouncer refuses to run as root: as root, have it switch to an unprivileged user.
  runas=()
  if [[ $EUID -eq 0 ]]; then
    if id postgres >/dev/null 2>&1; then runas=(-u postgres); else runas=(-u nobody); fi
    chown -R "${runas[1]}" "$dir"
  fi
  "$PGBOUNCER" "${runas[@]}" "$dir/pgbouncer.ini" >"$dir/stdout.log" 2>&1 &
  PGB_PID=$!
  for i in $(seq 1 100); do  # up to 10 s
    kill -0 "$PGB_PID" 2>/dev/null || { cat "$dir"/*.log >&2; die "pgbouncer exited"; }
    if psql -X -q -h 127.0.0.1 -p "$port" -U root -d "$DB" -c 'select 1' >/dev/null 2>&1; then break; fi
    [[ $i -lt 100 ]] || { cat "$dir"/*.log >&2; die "pgbouncer not ready after 10 s"; }
    sleep 0.1
  done
  log "pgbouncer ready on 127.0.0.1:$port (pid $PGB_PID)"
  TARGET_ARGS=(-h 127.0.0.1 -p "$port" -U root "$DB")
  TARGET_ENV=()
}
stop_pgbouncer() { stop_pid "$PGB_PID"; PGB_PID=""; }

# start_sluice [POLICY_DIR [EXTRA_TOML]]: without a policy dir, the built-in
# guardrails decide.
start_sluice() {
  local dir="$WORK/sluice" port key sha i policy="" extra=${2:-}
  port=$(free_port)
  rm -rf "$dir"
  mkdir -p "$dir"
  [[ -z ${1:-} ]] || policy=$'[policy]\ndir = "'"$1"'"'
  key="sk_bench_$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')"
  sha=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
  cat >"$dir/sluice.toml" <<EOF
# written by bench/pgbench.sh
[listeners]
postgres = "127.0.0.1:$port"
plaintext_auth = "loopback"

[storage]
url = "sqlite://$dir/audit.db"

[[identity.api_keys]]
name = "bench-agent"
kind = "agent"
groups = ["bench", "readers"]
key_sha256 = "$sha"

$policy

$extra

[[connections]]
name = "bench"
kind = "postgres"
upstream = "$PGHOST_:$PGPORT_"
database = "$DB"
user = "root"
tls = "disable"
EOF
  "$SLUICE_BIN" serve --config "$dir/sluice.toml" >"$dir/sluice.log" 2>&1 &
  SLUICE_PID=$!
  for i in $(seq 1 300); do  # up to 30 s
    kill -0 "$SLUICE_PID" 2>/dev/null || { tail -n 30 "$dir/sluice.log" >&2; die "sluice exited"; }
    if PGPASSWORD="$key" psql -X -q -h 127.0.0.1 -p "$port" -U bench-agent -d bench -c 'select 1' >/dev/null 2>&1; then break; fi
    [[ $i -lt 300 ]] || { tail -n 30 "$dir/sluice.log" >&2; die "sluice not ready after 30 s"; }
    sleep 0.1
  done
  log "sluice ready on 127.0.0.1:$port (pid $SLUICE_PID)"
  TARGET_ARGS=(-h 127.0.0.1 -p "$port" -U bench-agent bench)
  TARGET_ENV=(PGPASSWORD="$key")
}
stop_sluice() {
  stop_pid "$SLUICE_PID"; SLUICE_PID=""
  if [[ -f $WORK/sluice/audit.db ]]; then log "sluice audit db: $(du -h "$WORK/sluice/audit.db" | cut -f1)"; fi
}

start_policy() {
  local dir="$WORK/policies" i
  mkdir -p "$dir"
  cp "$ROOT/policies/starter.cedar" "$dir/"
  cat >"$dir/bench.cedar" <<'CEDAR'
@id("bench-pgbench")
permit (
  principal in Sluice::Group::"bench",
  action in [Sluice::Action::"sql:read", Sluice::Action::"sql:write"],
  resource == Sluice::Connection::"bench"
) when { ["public.pgbench_accounts", "public.pgbench_branches", "public.pgbench_tellers", "public.pgbench_history"].containsAll(context.tables) };
CEDAR
  for i in $(seq 1 200); do
    printf '@id("team-%d-read")\npermit (principal in Sluice::Group::"team-%d", action == Sluice::Action::"sql:read", resource == Sluice::Connection::"conn-%d") when { ["public.t%d"].containsAll(context.tables_read) };\n' \
      "$i" "$i" "$i" "$i"
  done >"$dir/teams.cedar"
  start_sluice "$dir"
}
stop_policy() { stop_sluice; }

start_unmasked() { start_sluice "" $'[masking]\ndefault_profile = "unmasked"'; }
stop_unmasked() { stop_sluice; }
start_unrecorded() { start_sluice "" $'[recording]\nenabled = false'; }
stop_unrecorded() { stop_sluice; }

# ---------------------------------------------------------------- runs

declare -A TPS=() AVG=() P99=()

# run_one TARGET MODE PROTOCOL CLIENTS
run_one() {
  local target=$1 mode=$2 proto=$3 clients=$4 jobs key dir out tps avg p99
  jobs=$((clients < 2 ? clients : 2))
  key="$target|$mode|$proto|$clients"
  dir="$WORK/runs/$target-$mode-$proto-$clients"
  mkdir -p "$dir"
  # the same fresh start for every target: what pgbench would do without -n, done directly
  admin_psql -d "$DB" -c "VACUUM pgbench_branches, pgbench_tellers" -c "TRUNCATE pgbench_history" >/dev/null
  local args=(-n -M "$proto" -c "$clients" -j "$jobs" -T "$BENCH_SECONDS" -l --log-prefix="$dir/tx")
  [[ $mode == select ]] && args+=(-S)
  if ! env "${TARGET_ENV[@]}" timeout $((BENCH_SECONDS + 120)) "$PGBENCH" "${args[@]}" "${TARGET_ARGS[@]}" \
      >"$dir/out.txt" 2>&1; then
    log "FAILED: $key: $(grep -m 3 -iE 'error|fatal|abort' "$dir/out.txt" | tr '\n' ' ')"
    FAILED_RUNS=$((FAILED_RUNS + 1))
    return 0
  fi
  tps=$(awk '/^tps = / { print $3; exit }' "$dir/out.txt")
  avg=$(awk '/^latency average = / { print $4; exit }' "$dir/out.txt")
  # column 3 of pgbench's per-transaction log is the latency in microseconds
  p99=$( (cat "$dir"/tx.* 2>/dev/null || true) | awk '{ print $3 }' | sort -n \
    | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; printf "%.3f", v[i] / 1000 }')
  rm -f "$dir"/tx.*
  if [[ -z $tps || -z $avg ]]; then
    log "FAILED: $key: no tps/latency in the output"
    FAILED_RUNS=$((FAILED_RUNS + 1))
    return 0
  fi
  TPS[$key]=$tps AVG[$key]=$avg P99[$key]=$p99
  log "$(printf '%-9s %-6s %-8s c=%-2s tps=%s avg=%sms p99=%sms' "$target" "$mode" "$proto" "$clients" "$tps" "$avg" "$p99")"
}

for target in $BENCH_TARGETS; do
  case $target in direct | pgbouncer | sluice | policy | unmasked | unrecorded) ;; *) die "unknown target $target" ;; esac
  "start_$target"
  for proto in "${PROTOCOLS[@]}"; do
    for clients in "${CLIENTS[@]}"; do
      run_one "$target" select "$proto" "$clients"
    done
  done
  for proto in "${PROTOCOLS[@]}"; do
    run_one "$target" tpcb "$proto" 8
  done
  "stop_$target"
done

# ---------------------------------------------------------------- report

ratio() { # A B -> A/B with 2 decimals, or n/a
  if [[ -n $1 && -n $2 ]]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
  else echo "n/a"; fi
}

echo
printf '%-10s %-7s %-9s %7s %11s %9s %9s %14s %17s\n' target mode protocol clients TPS "avg ms" "p99 ms" "/direct" "/pgbouncer"
for mode in select tpcb; do
  for proto in "${PROTOCOLS[@]}"; do
    for clients in "${CLIENTS[@]}"; do
      [[ $mode == tpcb && $clients != 8 ]] && continue
      for target in $BENCH_TARGETS; do
        key="$target|$mode|$proto|$clients"
        r_d="" r_b=""
        if [[ $target == sluice || $target == policy || $target == unmasked || $target == unrecorded ]]; then
          r_d=$(ratio "${TPS[$key]:-}" "${TPS[direct|$mode|$proto|$clients]:-}")
          r_b=$(ratio "${TPS[$key]:-}" "${TPS[pgbouncer|$mode|$proto|$clients]:-}")
        fi
        tps=FAIL
        [[ -z ${TPS[$key]:-} ]] || tps=$(printf '%.1f' "${TPS[$key]}")
        printf '%-10s %-7s %-9s %7s %11s %9s %9s %14s %17s\n' "$target" "$mode" "$proto" "$clients" \
          "$tps" "${AVG[$key]:-FAIL}" "${P99[$key]:-FAIL}" "$r_d" "$r_b"
      done
    done
  done
done
echo
summary=""
for target in sluice policy; do
  summary+="$target/pgbouncer=$(ratio "${TPS[$target|select|prepared|8]:-}" "${TPS[pgbouncer|select|prepared|8]:-}") "
  summary+="$target/direct=$(ratio "${TPS[$target|select|prepared|8]:-}" "${TPS[direct|select|prepared|8]:-}") "
done
summary+="masked/unmasked=$(ratio "${TPS[sluice|select|prepared|8]:-}" "${TPS[unmasked|select|prepared|8]:-}") "
summary+="recorded/unrecorded=$(ratio "${TPS[sluice|select|prepared|8]:-}" "${TPS[unrecorded|select|prepared|8]:-}")"
echo "$summary"

[[ $FAILED_RUNS -eq 0 ]]
