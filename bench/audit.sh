#!/usr/bin/env bash
# The audit log's speed on this machine, SQLite (release build):
#   - durable appends: 512 concurrent sessions each awaiting its record (group
#     commit, fsync per commit), with a signed checkpoint every second;
#   - verify of the live store (chain, Merkle tree, every checkpoint);
#   - export, then offline verify of the export (`sluice audit verify DIR --key`).
# and ends with ONE summary line:
#   audit: append=<n> records/s verify_live=<n> records/s verify_export=<n> records/s (<records> records)
#
# Environment: AUDIT_BENCH_RECORDS (default 1000000), AUDIT_BENCH_TASKS (512).
# Targets (DESIGN.md): append >= 50,000/s, verify >= 1,000,000/s.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
out=$(cargo bench -q -p sluice-audit --bench throughput 2>&1 | tee /dev/stderr)
append=$(sed -n 's/^append: .* = \([0-9]*\) records\/s.*/\1/p' <<<"$out")
live=$(sed -n 's/^verify: .* = \([0-9]*\) records\/s.*/\1/p' <<<"$out")
export_rate=$(sed -n 's/^export: .* = \([0-9]*\) records\/s.*/\1/p' <<<"$out")
records=$(sed -n 's/^verify: \([0-9]*\) records.*/\1/p' <<<"$out")
echo "audit: append=${append:-?} records/s verify_live=${live:-?} records/s verify_export=${export_rate:-?} records/s (${records:-?} records)"
