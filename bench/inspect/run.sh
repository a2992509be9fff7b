#!/usr/bin/env bash
# sluice inspection bench: keep-alive 10 KiB GETs with inspection on vs off,
# the split-secret history's cost, 1 MiB downloads vs direct, memory per
# connection vs body size; one run, ratios printed. sluice pinned to CPU 0,
# wrk + nginx to CPU 1. Loopback only. Usage:
#   bench/inspect/run.sh [--sluice build/sluice] [--duration 8] [--rounds N]
# (`bench/inspect/run.sh --help` lists every option.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../proxy/harness.sh"

bench_require python3 nginx wrk taskset
if [[ $(nproc) -lt 2 ]]; then
    echo "bench: needs at least 2 CPUs (sluice on CPU 0, wrk + nginx on CPU 1)" >&2
    exit 2
fi
bench_run_py sluice-inspect-bench "$here/run.py" "$@"
