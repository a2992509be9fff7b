#!/usr/bin/env bash
# Install what sluice needs on Debian 12. Usage: scripts/deps.sh [build|test]
#   build: compiler, libraries, CMake, Ninja
#   test:  build + test tools (cmocka, pytest, clients, clang for fuzzing)
set -euo pipefail
want="${1:-build}"
build_pkgs=(gcc cmake ninja-build pkg-config libuv1-dev libssl-dev libyaml-dev
            libjansson-dev libvectorscan-dev libpcre2-dev zlib1g-dev libbrotli-dev libzstd-dev)
test_pkgs=(libcmocka-dev python3 python3-pytest python3-requests python3-httpx python3-yaml python3-websockets
           curl clang-14 libclang-rt-14-dev)
pkgs=("${build_pkgs[@]}")
[ "$want" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "sluice: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "sluice: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
