#!/usr/bin/env bash
# sluice TLS interception bench: HTTPS through CONNECT, intercepted by sluice,
# squid (ssl_bump, Debian's squid-openssl) and mitmproxy, and directly against
# the nginx origin, driven by bench/tls/tlsload (built with the normal CMake
# build). Proxy pinned to CPU 0, tlsload + nginx to CPU 1. Loopback only.
#   bench/tls/run.sh [--sluice PATH|none] [--duration 10] [--rounds N] [--perf] [...]
# (`bench/tls/run.sh --help` lists every option.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Shared with bench/proxy and bench/idle: temp dir, fd limit, cleanup trap.
. "$here/../proxy/harness.sh"

missing=()
for t in python3 nginx openssl taskset mitmdump apt-get dpkg; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with: apt-get install -y nginx-light squid mitmproxy" >&2
    exit 2
fi
if [[ $(nproc) -lt 2 ]]; then
    echo "bench: needs at least 2 CPUs (proxy on CPU 0, tlsload + nginx on CPU 1)" >&2
    exit 2
fi
bench_run_py sluice-tlsbench "$here/run.py" "$@"
