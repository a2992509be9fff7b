# Shared shell for bench/proxy/run.sh and bench/idle/run.sh (sourced).

# bench_require TOOL...: exit 2 with the install command if any is missing.
bench_require() {
    local missing=() t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if ((${#missing[@]})); then
        echo "bench: missing: ${missing[*]}" >&2
        echo "bench: install with: apt-get install -y nginx-light squid tinyproxy wrk" >&2
        exit 2
    fi
}

# bench_run_py PREFIX SCRIPT ARGS...: run a bench driver with a fresh temp
# dir (--workdir), the fd soft limit raised to the hard limit, and an EXIT
# trap that kills every process group the driver recorded in WORK/pids (the
# driver kills them itself; this is the safety net if it was killed) and
# removes the temp dir (kept when ARGS has --keep).
bench_run_py() {
    local prefix=$1 script=$2 arg
    shift 2
    BENCH_WORK="$(mktemp -d "/tmp/$prefix.XXXXXX")"
    BENCH_KEEP=0
    for arg in "$@"; do [[ $arg == --keep ]] && BENCH_KEEP=1; done
    trap _bench_cleanup EXIT
    trap 'exit 130' INT TERM HUP
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    # In the background and waited for, so a SIGTERM to this script runs the
    # traps at once instead of after the driver finishes.
    python3 "$script" --workdir "$BENCH_WORK" "$@" &
    BENCH_PY=$!
    wait "$BENCH_PY"
}

_bench_cleanup() {
    local pid i
    if [[ -n ${BENCH_PY:-} ]] && kill -0 "$BENCH_PY" 2>/dev/null; then
        kill -TERM "$BENCH_PY" 2>/dev/null || true
        for i in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$BENCH_PY" 2>/dev/null || break
            sleep 0.5
        done
    fi
    if [[ -f $BENCH_WORK/pids ]]; then
        while read -r pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done <"$BENCH_WORK/pids"
        sleep 0.3
        while read -r pid; do kill -KILL -- "-$pid" 2>/dev/null || true; done <"$BENCH_WORK/pids"
    fi
    if ((BENCH_KEEP)); then echo "bench: kept $BENCH_WORK" >&2; else rm -rf "$BENCH_WORK"; fi
}
