#!/usr/bin/env bash
# sluice forward-proxy bench: wrk (keep-alive, 32 connections) through sluice,
# squid and tinyproxy and directly against nginx, proxy pinned to CPU 0,
# wrk + nginx to CPU 1. Loopback only. Usage:
#   bench/proxy/run.sh [--sluice PATH|none] [--duration 10] [--rounds N] [...]
# (`bench/proxy/run.sh --help` lists every option.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/harness.sh"

bench_require python3 nginx squid tinyproxy wrk taskset
if [[ $(nproc) -lt 2 ]]; then
    echo "bench: needs at least 2 CPUs (proxy on CPU 0, wrk + nginx on CPU 1)" >&2
    exit 2
fi
bench_run_py sluice-bench "$here/run.py" "$@"
