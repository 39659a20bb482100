#!/usr/bin/env bash
# Runs a command against osvdi's OpenStack test bed: installs and starts the bed if needed,
# exports `osbed.sh env` (OS_*, OSVDI_OS_*), runs the command, and stops the bed afterwards
# (also when the start or the command fails) if this script started it, unless
# OSVDI_OSBED_KEEP=1. A bed that was already running is left running: someone else may be
# using it. Exit status: the command's (or 1 when the bed did not start).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }

started=0
cleanup() {
    if [ $started = 1 ] && [ "${OSVDI_OSBED_KEEP:-0}" != 1 ]; then
        "$here/osbed.sh" stop || true
    fi
}
trap cleanup EXIT

if ! "$here/osbed.sh" status >/dev/null 2>&1; then
    "$here/osbed.sh" install
    started=1
fi
# start also when status says running: it is cheap then and waits until Nova can boot.
"$here/osbed.sh" start
eval "$("$here/osbed.sh" env)"

rc=0
"$@" || rc=$?
exit $rc
