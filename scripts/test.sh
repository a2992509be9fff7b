#!/usr/bin/env bash
# Set up and run every test: unit (CTest), rule checks, integration (pytest,
# real binary, real clients), the same again under ASan+UBSan, and each
# libFuzzer target for FUZZ_SECONDS (default 30).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
JOBS="$(nproc)"
# Debian's Python, with the python3-* packages deps.sh installed (a pyenv or
# venv python3 earlier on PATH would not have them).
PY=/usr/bin/python3

step() { printf '\n=== %s ===\n' "$*"; }

step "build (release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$JOBS"

step "compile the detection rules once (cached for every later start)"
time build/sluice scan --list-rules >/dev/null

step "unit tests"
(cd build && ctest --output-on-failure -j"$JOBS")

for checker in tests/rules/check_*.py; do
    [ -e "$checker" ] || continue
    step "rule checks: $checker"
    "$PY" "$checker"
done
if ls tests/rules/test_*.py >/dev/null 2>&1; then
    step "rule checker self-tests"
    "$PY" -m pytest -q -p no:cacheprovider tests/rules
fi

step "integration tests"
if [ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1; then
    SLUICE_BIN="$PWD/build/sluice" "$PY" -m pytest -q -p no:cacheprovider tests/integration
fi

step "build (ASan+UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$JOBS"
# A small quarantine: the default 256 MiB of freed-but-held memory makes
# RSS-based backpressure tests measure ASan rather than sluice.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:quarantine_size_mb=16" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

step "unit tests (ASan+UBSan)"
(cd build-asan && ctest --output-on-failure -j"$JOBS")

step "integration tests (ASan+UBSan)"
if [ -d tests/integration ] && ls tests/integration/test_*.py >/dev/null 2>&1; then
    SLUICE_BIN="$PWD/build-asan/sluice" SLUICE_SLOW=1 "$PY" -m pytest -q -p no:cacheprovider tests/integration
fi

step "fuzz (${FUZZ_SECONDS}s per target)"
CC=clang-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF >/dev/null
ninja -C build-fuzz -j"$JOBS"
for f in build-fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name="$(basename "$f")"
    corpus="fuzz/corpus/${name#fuzz_}"
    work="$(mktemp -d)"
    seeds=()
    [ -d "$corpus" ] && seeds=("$corpus")
    dict=()
    [ -f "fuzz/${name#fuzz_}.dict" ] && dict=("-dict=fuzz/${name#fuzz_}.dict")
    echo "--- $name"
    "$f" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 -artifact_prefix="$work/" \
        "${dict[@]}" "$work" "${seeds[@]}" \
        2>&1 | tail -3
    rm -rf "$work"
done

step "all tests passed"
