#!/usr/bin/env bash
# Set up and start sluice. With no arguments it runs the built-in default
# policy on 127.0.0.1:8888; arguments are passed to `sluice run`
# (e.g. scripts/run.sh -c examples/basic.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_TESTS=OFF >/dev/null
ninja -C build sluice >/dev/null
exec build/sluice run "$@"
