#!/usr/bin/env bash
# Unpack Debian's squid-openssl (the squid build that can ssl_bump) into a
# scratch root without installing it: squid-openssl conflicts with the
# GnuTLS `squid` package that bench/proxy uses. squid-common (config, error
# pages) comes with `squid`; the binary needs no library `squid` lacks.
#   bench/tls/get-squid-openssl.sh [DIR]   (default bench/out/squid-openssl)
# Afterwards DIR/usr/sbin/squid and DIR/usr/lib/squid/security_file_certgen
# exist. Uses apt-get download (the ordinary Debian client) and dpkg -x.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-$here/../out/squid-openssl}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
dl="$(mktemp -d /tmp/squid-openssl-dl.XXXXXX)"
trap 'rm -rf "$dl"' EXIT
chmod 755 "$dl" # apt's _apt user writes here
# (apt warns that it downloads unsandboxed as root: harmless, hidden)
if ! (cd "$dl" && apt-get download squid-openssl >"$dl/apt.log" 2>&1); then
    cat "$dl/apt.log" >&2
    exit 1
fi
dpkg -x "$dl"/squid-openssl_*.deb "$dest"
"$dest/usr/sbin/squid" -v | head -1
echo "squid-openssl unpacked in $dest"
