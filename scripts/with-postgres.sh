#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster on 127.0.0.1, with
# OSVDI_TEST_POSTGRES_URL pointing at it (superuser, trust auth) and OSVDI_REQUIRE_POSTGRES=1
# so that the suite fails rather than skips its PostgreSQL half. The cluster is removed after.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
    echo "PostgreSQL is not installed (Debian package postgresql); run scripts/install-deps.sh" >&2
    exit 1
fi

dir=$(mktemp -d /tmp/osvdi-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root.
    chown postgres: "$dir"
    as_pg=(runuser -u postgres --)
fi

port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[ -n "$port" ] || { echo "no free port for PostgreSQL" >&2; exit 1; }

cleanup() {
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT

"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c max_connections=300" \
    start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

export OSVDI_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
export OSVDI_REQUIRE_POSTGRES=1
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') for the tests on 127.0.0.1:$port" >&2
"$@"
