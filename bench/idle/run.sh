#!/usr/bin/env bash
# sluice idle-connection bench: 10,000 idle keep-alive connections through
# sluice; RSS per connection and RSS idle. Loopback only. Usage:
#   bench/idle/run.sh [--sluice PATH] [--connections 10000] [--hold 10]
#   bench/idle/run.sh --proxy squid      # validates the harness against squid
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
for t in python3 nginx taskset; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
if ((${#missing[@]})); then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with: apt-get install -y nginx-light squid tinyproxy wrk" >&2
    exit 2
fi

work="$(mktemp -d /tmp/sluice-idle.XXXXXX)"
cleanup() {
    # run.py kills what it started; this is the safety net if it was killed.
    if [[ -f $work/pids ]]; then
        while read -r pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done <"$work/pids"
        sleep 0.3
        while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$work/pids"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# 10,000 client sockets here and as many in the proxy: raise the soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
python3 "$here/run.py" --workdir "$work" "$@"
