#!/usr/bin/env bash
# Installs the Debian packages osvdi needs to build, run and test, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail

packages=(
    qemu-system-x86 qemu-utils                             # desktops, image checks
    linux-image-amd64 busybox-static syslinux mtools dosfstools  # the demo desktop
    postgresql                                             # the test suite's second database
    virt-viewer xvfb x11-apps imagemagick iproute2          # the native-client (SPICE) tests
    chromium                                               # the end-to-end tests in a browser
    util-linux ca-certificates gcc make
    libavcodec-dev libavformat-dev libclang-dev pkg-config  # the optional `ffmpeg` encoders (tested)
)

missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v qemu-img >/dev/null || missing+=(qemu-utils)
ls /boot/vmlinuz-* >/dev/null 2>&1 || missing+=(linux-image-amd64)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v syslinux >/dev/null || missing+=(syslinux)
command -v mcopy >/dev/null || missing+=(mtools)
command -v mkfs.fat >/dev/null || [ -x /sbin/mkfs.fat ] || missing+=(dosfstools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v prlimit >/dev/null || missing+=(util-linux)
command -v cc >/dev/null || missing+=(gcc)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v remote-viewer >/dev/null || missing+=(virt-viewer)
command -v Xvfb >/dev/null || missing+=(xvfb)
command -v xwd >/dev/null || missing+=(x11-apps)
[ -x /usr/bin/convert ] || missing+=(imagemagick)
command -v ss >/dev/null || missing+=(iproute2)
dpkg -s libavcodec-dev libavformat-dev libclang-dev >/dev/null 2>&1 || missing+=(libavcodec-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

line="apt-get update && apt-get install -y --no-install-recommends ${packages[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "osvdi needs these Debian packages: ${missing[*]}" >&2
    echo "Run as root:  $line" >&2
    exit 1
fi
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# qemu-system-x86 and qemu-utils go in one command so that apt keeps them at one version.
# A machine with a newer qemu-utils (from backports) gets Debian 12's, matching qemu-system-x86.
if ! apt-get install -y -q --no-install-recommends "${packages[@]}"; then
    apt-get install -y -q --no-install-recommends --allow-downgrades \
        "${packages[@]/#qemu-utils/qemu-utils/bookworm}"
fi
