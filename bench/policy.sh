#!/usr/bin/env bash
# What policy costs a statement, on this machine, without a database:
#   1. cargo bench -p sluice-sql --bench classify          classification, cached and uncached
#   2. cargo bench -p sluice-policy --bench decide         decide() with 200 policies, sliced vs unsliced
#   3. cargo bench -p sluice-policy --bench classify_decide
#      classify (cached) + decide_prepared together, 200 policies loaded, for
#      a few typical statements of an agent session and over all of them
# and ends with ONE summary line (from 3, all statements interleaved):
#   policy: classify+decide p50=<x> µs p99=<y> µs (200 policies, cached)
#
# The benches run in well under two minutes once built (the first run also
# compiles the bench profile). pgbench with policy on is bench/pgbench.sh.
#
# Environment:
#   BENCH_ONLY=classify_decide   run only the combined bench (the summary line)
#
# Exit status: 0 when every bench ran, non-zero otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ "${BENCH_ONLY:-}" != classify_decide ]]; then
  echo "== sluice-sql: classify"
  cargo bench -q -p sluice-sql --bench classify
  echo
  echo "== sluice-policy: decide"
  cargo bench -q -p sluice-policy --bench decide
  echo
fi
echo "== sluice-policy: classify + decide"
out=$(cargo bench -q -p sluice-policy --bench classify_decide)
printf '%s\n' "$out" | grep -v '^policy: '
echo
printf '%s\n' "$out" | grep '^policy: '
