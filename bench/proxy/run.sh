#!/usr/bin/env bash
# sluice forward-proxy bench: wrk (keep-alive, 32 connections) through sluice,
# squid and tinyproxy and directly against nginx, proxy pinned to CPU 0,
# wrk + nginx to CPU 1. Loopback only. Usage:
#   bench/proxy/run.sh [--sluice PATH|none] [--duration 10] [--rounds N] [...]
# (`bench/proxy/run.sh --help` lists every option.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
for t in python3 nginx squid tinyproxy wrk taskset; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with: apt-get install -y nginx-light squid tinyproxy wrk" >&2
    exit 2
fi
if [[ $(nproc) -lt 2 ]]; then
    echo "bench: needs at least 2 CPUs (proxy on CPU 0, wrk + nginx on CPU 1)" >&2
    exit 2
fi

work="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
keep=0
for arg in "$@"; do [[ $arg == --keep ]] && keep=1; done
cleanup() {
    # run.py kills what it started; this is the safety net if it was killed.
    if [[ -f $work/pids ]]; then
        while read -r pid; do
            kill -TERM -- "-$pid" 2>/dev/null || true
        done <"$work/pids"
        sleep 0.3
        while read -r pid; do
            kill -KILL -- "-$pid" 2>/dev/null || true
        done <"$work/pids"
    fi
    if ((keep)); then echo "bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
python3 "$here/run.py" --workdir "$work" "$@"
