#!/usr/bin/env bash
# Installs the Debian packages osvdi needs to build, run and test, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail

packages=(qemu-utils postgresql util-linux ca-certificates gcc make)

missing=()
command -v qemu-img >/dev/null || missing+=(qemu-utils)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v prlimit >/dev/null || missing+=(util-linux)
command -v cc >/dev/null || missing+=(gcc)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

# Installing qemu-utils and qemu-system-x86 in one command keeps apt from replacing one
# qemu-utils with another; when the compute backend lands, its package joins this list.
line="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "osvdi needs these Debian packages: ${missing[*]}" >&2
    echo "Run as root:  $line" >&2
    exit 1
fi
echo "Installing: ${missing[*]}" >&2
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
