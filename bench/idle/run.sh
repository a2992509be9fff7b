#!/usr/bin/env bash
# sluice idle-connection bench: 10,000 idle keep-alive connections through
# sluice; RSS per connection and RSS idle. Loopback only. Usage:
#   bench/idle/run.sh [--sluice PATH] [--connections 10000] [--hold 10]
#   bench/idle/run.sh --proxy squid      # validates the harness against squid
# 10,000 client sockets here and as many in the proxy: the fd soft limit is
# raised to the hard limit, which must be >= connections + 256.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/../proxy/harness.sh"

bench_require python3 nginx taskset
bench_run_py sluice-idle "$here/idle.py" "$@"
