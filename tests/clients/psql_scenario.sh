#!/usr/bin/env bash
# Client scenario with the psql CLI: the same steps straight to PostgreSQL and
# through Sluice, comparing psql's text output.
#
# Usage:
#   tests/clients/psql_scenario.sh --direct DSN --via DSN
#
# DIRECT goes straight to PostgreSQL, VIA through Sluice (database = the
# connection name, password = the token), e.g.
#   postgresql://agent:TOKEN@127.0.0.1:15432/patients?sslmode=disable
# Any libpq URI or key=value string works. Both must reach the same database:
# the script creates one table scen_<pid>_<random> on the DIRECT side, both
# sides read and write only that table (each its own rows, told apart by the
# column `side`), and a trap drops it on the DIRECT side at exit. Until Sluice
# runs, DIRECT=VIA (both direct) must pass.
#
# Steps, each run on both sides, checked and compared:
#   a simple-query    SELECT of several rows and types with `psql -c` (simple protocol)
#   b extended-query  psql 15 has no \bind (16+), so parameters go through SQL
#                     PREPARE/EXECUTE (still the simple protocol on the wire);
#                     \gdesc adds a real Parse/Describe of the extended protocol
#   c write           PREPAREd INSERT x10, a multi-row INSERT, UPDATE, DELETE: :ROW_COUNT
#   d copy-out        COPY (SELECT ...) TO STDOUT of 5000 rows, byte for byte
#   e copy-in         COPY ... FROM STDIN of 2000 rows fed on psql's stdin, then count
#   f prepared        PREPARE + 1000 EXECUTEs in one script; sum of the results
#   g cancel          `psql -c "select pg_sleep(30)"` gets SIGINT after 0.5 s, so psql
#                     sends a CancelRequest: "canceling statement due to user request"
#                     (57014). A non-interactive psql quits after SIGINT, so the
#                     session-survives check runs an interactive psql under a pty
#                     (script(1)): Ctrl-C during pg_sleep, then a query on the same session.
#   h error           SELECT 1/0 -> 22012, the next statement of the script still runs
#
# Prints `ok <step>` or `FAIL <step>: <why>` per step, then `N passed, M failed`;
# exit status 0 only if every step passed.
# Environment: STEP_TIMEOUT (default 60) bounds every psql run, in seconds.
set -euo pipefail

usage() { echo "usage: $0 --direct DSN --via DSN" >&2; exit 2; }
declare -A DSN=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --direct) DSN[direct]=${2:?}; shift 2 ;;
    --via) DSN[via]=${2:?}; shift 2 ;;
    *) usage ;;
  esac
done
[[ -n ${DSN[direct]:-} && -n ${DSN[via]:-} ]] || usage

STEP_TIMEOUT=${STEP_TIMEOUT:-60}
export PGCONNECT_TIMEOUT=10 PGCLIENTENCODING=UTF8 PGTZ=UTC PAGER=cat
TABLE="scen_$$_$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/psql_scenario.XXXXXX")
PASSED=0
FAILED=0

cleanup() {
  if ! timeout 30 psql -X -q -d "${DSN[direct]}" -c "DROP TABLE IF EXISTS $TABLE" >/dev/null 2>"$WORK/drop.err"; then
    echo "FAIL cleanup: could not drop $TABLE: $(head -n 2 "$WORK/drop.err" | tr '\n' ' ')"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# psql with no psqlrc, no pager, stop on the first error, bounded in time.
q() { timeout "$STEP_TIMEOUT" psql -X -q -P pager=off -v ON_ERROR_STOP=1 "$@"; }
fail() { echo "$*" >&2; return 1; }

# ---------------------------------------------------------------- the steps
# step_X SIDE DSN prints its observation on stdout (compared between the two
# sides) and returns non-zero, with the reason on stderr, when the side is wrong.
# They are called in an `if` context, where set -e is off: check explicitly.

SIMPLE_SQL="SELECT g AS n, 'row ' || g AS label, (g * 1.25)::numeric(10, 2) AS amount,
  timestamptz '2024-01-02 03:04:05.123456+00' + g * interval '1 hour' AS ts,
  g % 2 = 0 AS even, CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS maybe,
  decode(lpad(to_hex(g), 2, '0') || 'ff00', 'hex') AS raw,
  json_build_object('n', g, 'tags', json_build_array('a', g)) AS doc
FROM generate_series(1, 5) AS g ORDER BY g"

step_a() {
  local out
  out=$(q -d "$2" -A -F '|' -c "$SIMPLE_SQL") || fail "psql failed: $out" || return 1
  grep -qxF 'n|label|amount|ts|even|maybe|raw|doc' <<<"$out" || fail "header missing: $out" || return 1
  grep -qxF '1|row 1|1.25|2024-01-02 04:04:05.123456+00|f|1|\x01ff00|{"n" : 1, "tags" : ["a", 1]}' <<<"$out" \
    || fail "row 1 wrong: $(sed -n 2p <<<"$out")" || return 1
  grep -qxF '3|row 3|3.75|2024-01-02 06:04:05.123456+00|f||\x03ff00|{"n" : 3, "tags" : ["a", 3]}' <<<"$out" \
    || fail "row 3 (with NULL) wrong: $(sed -n 4p <<<"$out")" || return 1
  grep -qxF '(5 rows)' <<<"$out" || fail "not 5 rows" || return 1
  printf '%s\n' "$out"
}

step_b() {
  local out
  out=$(q -d "$2" -A -F '|' <<EOF
PREPARE scen_b(int, text, numeric, timestamptz, bool, text, bytea, jsonb) AS
  SELECT \$1 + 1 AS i, \$2 AS t, \$3 AS n, \$4 AS ts, \$5 AS b, \$6 AS nul, \$7 AS raw, \$8 AS doc;
EXECUTE scen_b(41, 'héllo ''quoted'' \\ world', 12345.6789, '2023-06-07 08:09:10.0005+00', true, NULL,
               '\\x0001feff', '{"k": [1, "two", null]}');
SELECT count(*) AS mine FROM $TABLE WHERE side = '$1';
SELECT \$\$x\$\$::text AS t, 1::int8 AS big, now() AS ts \gdesc
DEALLOCATE scen_b;
EOF
  ) || fail "psql failed: $out" || return 1
  grep -qxF "42|héllo 'quoted' \\ world|12345.6789|2023-06-07 08:09:10.0005+00|t||\\x0001feff|{\"k\": [1, \"two\", null]}" <<<"$out" \
    || fail "EXECUTE result wrong: $out" || return 1
  grep -qxF 'big|bigint' <<<"$out" || fail "\\gdesc result wrong: $out" || return 1
  printf '%s\n' "$out"
}

step_c() {
  local out i script counts
  script="PREPARE scen_ins(text, int, text, numeric, timestamptz, bool, bytea, json) AS
  INSERT INTO $TABLE (side, id, name, amount, created, flag, payload, doc) VALUES (\$1, \$2, \$3, \$4, \$5, \$6, \$7, \$8);"
  for i in $(seq 1 10); do
    script+="
EXECUTE scen_ins('$1', $i, 'name $i', $i / 4.0, timestamptz '2024-01-01 00:00+00' + interval '$i days', $((i % 2 == 0)) = 1, '\\x$(printf '%02x%02x%02x' $i $i $i)', '{\"i\": $i}');
\\echo inserted :ROW_COUNT"
  done
  script+="
INSERT INTO $TABLE (side, id, name) VALUES ('$1', 11, 'eleven'), ('$1', 12, 'twelve');
\\echo inserted2 :ROW_COUNT
UPDATE $TABLE SET name = name || ' (updated)' WHERE side = '$1' AND id <= 7;
\\echo updated :ROW_COUNT
DELETE FROM $TABLE WHERE side = '$1' AND id > 9;
\\echo deleted :ROW_COUNT
SELECT id, name, amount, flag, payload, doc FROM $TABLE WHERE side = '$1' ORDER BY id;
\\echo left :ROW_COUNT
DEALLOCATE scen_ins;"
  out=$(q -d "$2" -A -F '|' <<<"$script") || fail "psql failed: $out" || return 1
  counts=$(awk '$1=="inserted"{s+=$2} $1=="inserted2"{a=$2} $1=="updated"{u=$2} $1=="deleted"{d=$2} $1=="left"{l=$2}
                END{print s+0, a+0, u+0, d+0, l+0}' <<<"$out")
  [[ $counts == "10 2 7 3 9" ]] || fail "counts insert/insert/update/delete/left = $counts, want 10 2 7 3 9" || return 1
  printf '%s\n' "$out"
}

COPY_OUT_SQL="COPY (SELECT g, md5(g::text), (g * 0.5)::numeric, g % 7 = 0,
  CASE WHEN g % 5 = 0 THEN NULL ELSE 'tab' || chr(9) || 'here ' || g END
  FROM generate_series(1, 5000) AS g ORDER BY g) TO STDOUT"

step_d() {
  local file="$WORK/copy_out.$1" lines
  q -d "$2" -c "$COPY_OUT_SQL" >"$file" || fail "psql COPY TO STDOUT failed" || return 1
  lines=$(wc -l <"$file")
  [[ $lines -eq 5000 ]] || fail "$lines lines, want 5000" || return 1
  [[ $(head -n 1 "$file") == $'1\tc4ca4238a0b923820dcc509a6f75849b\t0.5\tf\ttab\\there 1' ]] \
    || fail "first line $(head -n 1 "$file")" || return 1
  cat "$file"  # the harness compares these bytes between the sides
}

step_e() {
  local file="$WORK/copy_in.$1" out
  awk -v side="$1" 'BEGIN { for (i = 10000; i < 12000; i++)
      printf "%s\t%d\tcopied\\t%d\t%.2f\t%s\n", side, i, i, i / 100, (i % 3 == 0 ? "t" : "f") }' >"$file"
  out=$(q -d "$2" -c "COPY $TABLE (side, id, name, amount, flag) FROM STDIN" <"$file" 2>&1) \
    || fail "COPY FROM STDIN failed: $out" || return 1
  out=$(q -d "$2" -At -c "SELECT count(*), sum(id), sum(amount), count(*) FILTER (WHERE flag),
      count(*) FILTER (WHERE name = 'copied' || chr(9) || id) FROM $TABLE WHERE side = '$1' AND id >= 10000") \
    || fail "count failed: $out" || return 1
  [[ $out == "2000|21999000|219990.00|666|2000" ]] || fail "after COPY: $out, want 2000|21999000|219990.00|666|2000" || return 1
  printf '%s\n' "$out"
}

step_f() {
  local file="$WORK/prepared.$1.sql" out sum
  {
    echo 'PREPARE scen_dbl(int) AS SELECT $1 * 2;'
    seq 1 1000 | sed 's/.*/EXECUTE scen_dbl(&);/'
    echo "SELECT 'prepared ' || count(*) FROM pg_prepared_statements WHERE name = 'scen_dbl';"
    echo 'DEALLOCATE scen_dbl;'
  } >"$file"
  out=$(q -d "$2" -At -f "$file") || fail "psql failed: $(tail -n 3 <<<"$out")" || return 1
  sum=$(grep -E '^[0-9]+$' <<<"$out" | awk '{s += $1; n++} END {print n + 0, s + 0}')
  [[ $sum == "1000 1001000" ]] || fail "results/sum = $sum, want 1000 1001000" || return 1
  grep -qxF 'prepared 1' <<<"$out" || fail "scen_dbl not in pg_prepared_statements" || return 1
  echo "executions/sum $sum; $(grep '^prepared' <<<"$out")"
}

step_g() {
  local err="$WORK/cancel.$1.err" pty="$WORK/cancel.$1.pty" pid t0 elapsed rc=0 i
  # 1. The brief's way: SIGINT to a non-interactive psql -c.
  t0=$(date +%s.%N)
  psql -X -q -v VERBOSITY=verbose -d "$2" -c 'SELECT pg_sleep(30)' >/dev/null 2>"$err" &
  pid=$!
  sleep 0.5
  kill -INT "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done  # up to 10 s
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"; wait "$pid" || true
    fail "psql still running 10 s after SIGINT: $(tr '\n' ' ' <"$err")"; return 1
  fi
  wait "$pid" || rc=$?
  elapsed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  grep -q '57014: canceling statement due to user request' "$err" \
    || fail "no cancel error (psql exit $rc): $(tr '\n' ' ' <"$err")" || return 1
  awk -v e="$elapsed" 'BEGIN { exit !(e < 5) }' || fail "cancel took ${elapsed} s" || return 1
  grep -oE 'ERROR: +57014: .*' "$err"
  # 2. An interactive psql (under a pty) survives the cancel and runs the next query.
  # Judged by what the session printed, not by script(1)'s exit status: when its stdin
  # ends right after `\q`, script may hang up the pty before psql has exited on its own,
  # and psql then reports the hang-up, a race that says nothing about the gateway.
  rc=0
  { echo "SELECT pg_sleep(30);"; sleep 1; printf '\003'; sleep 0.5
    echo "SELECT 'still' || 'alive';"; echo '\q'; } \
    | timeout 20 script -qec "psql -X -n -P pager=off -v VERBOSITY=verbose '${2//\'/\'\\\'\'}'" /dev/null >"$pty" 2>&1 \
    || rc=$?
  [[ $rc -ne 124 ]] || fail "interactive psql still running after 20 s: $(tr -d '\r' <"$pty" | tail -n 5 | tr '\n' ' ')" \
    || return 1
  grep -q '57014: canceling statement due to user request' "$pty" \
    || fail "interactive psql: no cancel error: $(tr -d '\r' <"$pty" | tr '\n' ' ')" || return 1
  grep -q 'stillalive' "$pty" \
    || fail "interactive psql: session did not answer after cancel: $(tr -d '\r' <"$pty" | tr '\n' ' ')" || return 1
  echo "interactive session still alive after cancel"
}

step_h() {
  local out
  # no ON_ERROR_STOP here: the script must go on after the error
  out=$(timeout "$STEP_TIMEOUT" psql -X -q -At -v VERBOSITY=sqlstate -d "$2" 2>&1 <<'EOF'
SELECT 1/0;
SELECT 'still' || 'alive';
SELECT 7::int;
EOF
  ) || fail "psql failed: $out" || return 1
  grep -qE 'ERROR: +22012' <<<"$out" || fail "no 22012 error: $out" || return 1
  grep -qxF 'stillalive' <<<"$out" || fail "session did not go on after the error: $out" || return 1
  printf '%s\n' "$out"
}

# ---------------------------------------------------------------- harness

run_step() {
  local name=$1 fn=$2 side why=""
  for side in direct via; do
    if ! "$fn" "$side" "${DSN[$side]}" >"$WORK/$name.$side.out" 2>"$WORK/$name.$side.err"; then
      why+="${why:+; }$side: $(head -c 400 "$WORK/$name.$side.err" | tr '\n' ' ')"
    fi
  done
  if [[ -z $why ]] && ! cmp -s "$WORK/$name.direct.out" "$WORK/$name.via.out"; then
    why="direct and via differ: $(diff "$WORK/$name.direct.out" "$WORK/$name.via.out" | head -n 6 | tr '\n' ' ' | head -c 400)"
  fi
  if [[ -n $why ]]; then
    FAILED=$((FAILED + 1)); echo "FAIL $name: $why"
  else
    PASSED=$((PASSED + 1)); echo "ok $name"
  fi
}

if ! setup_err=$(q -d "${DSN[direct]}" -c "CREATE TABLE $TABLE (side text NOT NULL, id int NOT NULL, name text,
    amount numeric, created timestamptz, flag bool, payload bytea, doc json, PRIMARY KEY (side, id))" 2>&1); then
  echo "FAIL setup: $setup_err"
  echo "0 passed, 1 failed"
  exit 1
fi

run_step a-simple-query step_a
run_step b-extended-query step_b
run_step c-write step_c
run_step d-copy-out step_d
run_step e-copy-in step_e
run_step f-prepared step_f
run_step g-cancel step_g
run_step h-error step_h

echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
