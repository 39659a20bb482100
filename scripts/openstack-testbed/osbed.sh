#!/usr/bin/env bash
# osvdi's OpenStack test bed: real Keystone, Placement, Glance and Nova from PyPI, MariaDB and
# RabbitMQ from Debian, all on 127.0.0.1, with a fake virt driver that reports nested vGPU
# providers and serves real VNC consoles (see README.md beside this file).
#
#   osbed.sh install   Debian packages (only the missing ones) and a pinned venv; idempotent
#   osbed.sh start     bring everything up; returns when Nova has booted (and deleted) a server
#   osbed.sh stop      stop everything, no process left behind
#   osbed.sh status    what runs (exit 0 only when everything does)
#   osbed.sh env       `export` lines for the tests (credentials, endpoints)
#   osbed.sh reset     delete all servers, images, flavors and allocations the tests made
#
# State, logs and venv live in ${OSVDI_OSBED_DIR:-$HOME/.cache/osvdi-osbed} (outside the
# clone, so CI reuses the install). OSVDI_OSBED_TOKEN_EXPIRATION (seconds, default 3600) sets
# the lifetime of Keystone tokens at `start`. Runs as root (apt-get, MariaDB's datadir).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
D=${OSVDI_OSBED_DIR:-$HOME/.cache/osvdi-osbed}
V=$D/venv
DATA=$D/data
RUN=$DATA/run
LOG=$DATA/log
PY=$V/bin/python
TOKEN_EXPIRATION=${OSVDI_OSBED_TOKEN_EXPIRATION:-3600}

IP=127.0.0.1
REGION=RegionOne
# OSVDI_OSBED_PORT_OFFSET (default 0) moves every port, to run a second bed beside one
# (with its own OSVDI_OSBED_DIR).
O=${OSVDI_OSBED_PORT_OFFSET:-0}
KEYSTONE_PORT=$((5000 + O))
PLACEMENT_PORT=$((8778 + O))
GLANCE_PORT=$((9292 + O))
NOVA_PORT=$((8774 + O))
NETWORK_PORT=$((9696 + O))
NOVNC_PORT=$((6080 + O))
SPICE_PROXY_PORT=$((6082 + O))
RABBIT_PORT=$((5672 + O))
RABBIT_DIST_PORT=$((25672 + O))
# A private Erlang port mapper on 127.0.0.1 (not Debian's epmd on *:4369).
EPMD_PORT=$((4371 + O))
RABBIT_NODE=osbed@localhost
[ "$O" = 0 ] || RABBIT_NODE=osbed$O@localhost
COMPUTE_HOSTS=(gpu-1 cpu-1)

# Python packages from PyPI; constraints.txt pins every transitive dependency too.
PIP_PACKAGES=(keystone==30.0.0 openstack-placement==16.0.0 glance==33.0.0 nova==34.0.0
              uWSGI==2.0.31 gunicorn==27.0.1 PyMySQL==1.2.4)
APT_PACKAGES=(mariadb-server rabbitmq-server qemu-system-x86 python3-venv python3-dev gcc curl)

# Start order; stop goes the other way.
SERVICES=(epmd mariadb rabbitmq netstub keystone placement glance nova-conductor
          nova-scheduler nova-api nova-compute-gpu-1 nova-compute-cpu-1 nova-novncproxy
          nova-spicehtml5proxy)

UWSGI_OPTS=(--master --processes 1 --threads 4 --enable-threads --die-on-term --lazy-apps
            --buffer-size 65535 --http-keepalive --home "$V")

say() { echo "osbed: $*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# --- processes ---------------------------------------------------------------------------------

pid_of() { [ -s "$RUN/$1.pid" ] && cat "$RUN/$1.pid"; }
# alive NAME: its supervisor runs (checked by name, so a pid reused after a reboot is not
# taken for ours, nor killed by stop).
alive() {
    local p
    p=$(pid_of "$1") && [ -n "$p" ] && grep -qa osbed-supervise "/proc/$p/cmdline" 2>/dev/null
}

# launch NAME CMD...: start CMD in its own session (so stop can kill the whole group) with
# stdout and stderr in $LOG/NAME.log, under a loop that restarts it 2 s after it exits (a
# crash in the middle of a long test run heals itself; the log says "osbed-supervise: ...");
# does nothing when NAME already runs.
launch() {
    local name=$1; shift
    alive "$name" && return 0
    # keep one previous log when it grows past 20 MB
    [ "$(stat -c %s "$LOG/$name.log" 2>/dev/null || echo 0)" -lt 20000000 ] \
        || mv -f "$LOG/$name.log" "$LOG/$name.log.1"
    echo "--- $(date -u +%FT%TZ) start" >>"$LOG/$name.log"
    wc -l <"$LOG/$name.log" >"$RUN/$name.logstart"
    setsid bash -c 'while :; do "$@"; echo "osbed-supervise: $(date -u +%FT%TZ) exited with $?, restarting in 2 s"; sleep 2; done' \
        osbed-supervise "$@" >>"$LOG/$name.log" 2>&1 </dev/null 9>&- &
    echo $! >"$RUN/$name.pid"
}

# restarts NAME: how often its process exited since `start` launched it
restarts() {
    tail -n +"$(cat "$RUN/$1.logstart" 2>/dev/null || echo 1)" "$LOG/$1.log" 2>/dev/null \
        | grep -c '^osbed-supervise: .* exited' || true
}

fail_service() { # fail_service NAME WHY
    say "$1 $2; last lines of $LOG/$1.log:"
    tail -n 40 "$LOG/$1.log" >&2 || true
    exit 1
}

# wait_for NAME SECONDS CMD...: poll CMD until it succeeds; fail naming NAME if it dies or
# the time runs out.
wait_for() {
    local name=$1 secs=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        alive "$name" || fail_service "$name" "exited during start"
        [ "$(restarts "$name")" -lt 3 ] || fail_service "$name" "keeps exiting during start"
        [ $SECONDS -lt $deadline ] || fail_service "$name" "did not become ready within ${secs}s"
        sleep 0.3
    done
}

http_up() { curl -s -o /dev/null --max-time 2 "$1"; }
port_open() { (exec 3<>"/dev/tcp/$IP/$1") 2>/dev/null; }

# tree PID: PID and all its descendants (some services put themselves in a process group of
# their own, e.g. oslo.service's master process, so killing the group is not enough).
tree() {
    local c
    echo "$1"
    for c in $(pgrep -P "$1" 2>/dev/null); do tree "$c"; done
}

# kill_trees PID...: SIGTERM each PID's tree and process group at once, SIGKILL what is left
# after 10 s.
kill_trees() {
    local p all=()
    for p in "$@"; do
        all+=($(tree "$p"))
        kill -TERM -- "-$p" 2>/dev/null || true
    done
    [ ${#all[@]} -gt 0 ] || return 0
    kill -TERM "${all[@]}" 2>/dev/null || true
    for _ in $(seq 1 100); do
        local left=0
        for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ $left = 1 ] || break
        sleep 0.1
    done
    kill -KILL "${all[@]}" 2>/dev/null || true
    for p in "$@"; do kill -KILL -- "-$p" 2>/dev/null || true; done
}

stop_service() {
    alive "$1" && kill_trees "$(pid_of "$1")"
    rm -f "$RUN/$1.pid"
}

# --- install -----------------------------------------------------------------------------------

pins() { { printf '%s\n' "${PIP_PACKAGES[@]}"; cat "$HERE/constraints.txt"; } | sha256sum | cut -c1-16; }

do_install() {
    local t missing=() p
    t=$(now)
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" -eq 0 ] || die "Debian packages missing (${missing[*]}); run as root"
        say "apt-get install ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    if [ "$(cat "$V/.osbed-pins" 2>/dev/null)" != "$(pins)" ]; then
        local name
        for name in "${SERVICES[@]}"; do
            alive "$name" && die "the pinned versions changed: run '$0 stop' before '$0 install'"
        done
        say "creating the venv in $V (a few minutes: uWSGI compiles)"
        rm -rf "$V"
        /usr/bin/python3 -m venv "$V"
        "$V/bin/pip" install -q --disable-pip-version-check -c "$HERE/constraints.txt" \
            "${PIP_PACKAGES[@]}"
        pins >"$V/.osbed-pins"
    fi
    say "install: ready ($(secs "$t")s)"
}

# --- configuration -----------------------------------------------------------------------------

secrets() { # generated once; mode 600
    if [ ! -s "$DATA/secrets.env" ]; then
        mkdir -p "$DATA"
        (umask 077; for v in ADMIN SERVICE OSVDI DB; do
            echo "OSBED_${v}_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')"
        done >"$DATA/secrets.env")
    fi
    # shellcheck disable=SC1091
    . "$DATA/secrets.env"
}

api_env() { # the environment osbed_api.py reads
    export OSBED_KEYSTONE_URL=http://$IP:$KEYSTONE_PORT OSBED_NOVA_URL=http://$IP:$NOVA_PORT
    export OSBED_GLANCE_URL=http://$IP:$GLANCE_PORT OSBED_PLACEMENT_URL=http://$IP:$PLACEMENT_PORT
    export OSBED_NETWORK_URL=http://$IP:$NETWORK_PORT OSBED_REGION=$REGION
    export OSBED_ADMIN_PASSWORD OSBED_SERVICE_PASSWORD OSBED_OSVDI_PASSWORD
    export OSBED_APPCRED_FILE=$DATA/appcred
}

write_configs() {
    local cache=$((TOKEN_EXPIRATION / 4))
    [ $cache -le 300 ] || cache=300
    [ $cache -ge 5 ] || cache=5
    local db="mysql+pymysql://nova:$OSBED_DB_PASSWORD@localhost"
    local dbq="?unix_socket=$RUN/mysqld.sock&charset=utf8"
    local auth="auth_url = http://$IP:$KEYSTONE_PORT
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
password = $OSBED_SERVICE_PASSWORD
region_name = $REGION"
    # keystonemiddleware caches validated tokens; keep that below the token lifetime so an
    # expired token is refused soon after it expires.
    local authtoken="[keystone_authtoken]
www_authenticate_uri = http://$IP:$KEYSTONE_PORT
token_cache_time = $cache
$auth"

    cat >"$DATA/keystone/keystone.conf" <<EOF
[database]
connection = sqlite:///$DATA/keystone/keystone.sqlite
[token]
provider = fernet
expiration = $TOKEN_EXPIRATION
[fernet_tokens]
key_repository = $DATA/keystone/fernet-keys
[credential]
key_repository = $DATA/keystone/credential-keys
[identity]
password_hash_rounds = 4
EOF

    cat >"$DATA/placement/placement.conf" <<EOF
[api]
auth_strategy = keystone
[placement_database]
connection = sqlite:///$DATA/placement/placement.sqlite
$authtoken
username = placement
EOF

    cp "$V/etc/glance/glance-api-paste.ini" "$DATA/glance/"
    cat >"$DATA/glance/glance-api.conf" <<EOF
[DEFAULT]
enabled_backends = fs:file
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $DATA/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = $DATA/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $DATA/glance/tasks/
[database]
connection = sqlite:///$DATA/glance/glance.sqlite
$authtoken
username = glance
[paste_deploy]
flavor = keystone
config_file = $DATA/glance/glance-api-paste.ini
[oslo_concurrency]
lock_path = $DATA/locks
EOF

    # Shared by every Nova service; the computes get no database (they go through conductor).
    cat >"$DATA/nova/common.conf" <<EOF
[DEFAULT]
transport_url = rabbit://osbed:$OSBED_SERVICE_PASSWORD@$IP:$RABBIT_PORT/
compute_driver = osbed_fake_driver.OsbedFakeDriver
my_ip = $IP
host = osbed
state_path = $DATA/nova/state
cpu_allocation_ratio = 1.0
ram_allocation_ratio = 1.0
disk_allocation_ratio = 1.0
reserved_host_memory_mb = 0
reserved_host_disk_mb = 0
heal_instance_info_cache_interval = -1
graceful_shutdown_timeout = 5
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = $DATA/nova/api-paste.ini
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 10
[quota]
instances = 200
cores = 2000
ram = 4096000
$authtoken
username = nova
[service_user]
send_service_user_token = True
$auth
username = nova
[placement]
valid_interfaces = public
$auth
username = nova
[glance]
valid_interfaces = public
region_name = $REGION
[neutron]
valid_interfaces = public
$auth
username = nova
[cinder]
os_region_name = $REGION
[vnc]
enabled = True
server_listen = $IP
server_proxyclient_address = $IP
novncproxy_host = $IP
novncproxy_port = $NOVNC_PORT
novncproxy_base_url = http://$IP:$NOVNC_PORT/vnc_auto.html
[spice]
enabled = True
server_listen = $IP
server_proxyclient_address = $IP
html5proxy_host = $IP
html5proxy_port = $SPICE_PROXY_PORT
html5proxy_base_url = http://$IP:$SPICE_PROXY_PORT/spice_auto.html
[oslo_concurrency]
lock_path = $DATA/locks
EOF
    { cat "$DATA/nova/common.conf"
      printf '[api_database]\nconnection = %s/nova_api%s\n' "$db" "$dbq"
      printf '[database]\nconnection = %s/nova%s\n' "$db" "$dbq"
    } >"$DATA/nova/nova.conf"
    local h
    for h in "${COMPUTE_HOSTS[@]}"; do
        mkdir -p "$DATA/nova/$h"
        printf '[DEFAULT]\nhost = %s\nstate_path = %s\n' "$h" "$DATA/nova/$h" >"$DATA/nova/compute-$h.conf"
    done
    cp "$V/etc/nova/api-paste.ini" "$DATA/nova/"
    echo "$TOKEN_EXPIRATION" >"$RUN/token-expiration"
}

# First start: databases and Keystone bootstrap (marked done by $DATA/.setup-done).
first_setup() {
    local t
    t=$(now)
    [ -e "$DATA/.setup-done" ] && return 0
    say "first start: creating databases"
    local KM=("$V/bin/keystone-manage" --config-file "$DATA/keystone/keystone.conf")
    {
        "${KM[@]}" db_sync
        "${KM[@]}" fernet_setup --keystone-user root --keystone-group root
        "${KM[@]}" credential_setup --keystone-user root --keystone-group root
        "${KM[@]}" bootstrap --bootstrap-password "$OSBED_ADMIN_PASSWORD" \
            --bootstrap-region-id "$REGION" \
            --bootstrap-admin-url "http://$IP:$KEYSTONE_PORT/v3/" \
            --bootstrap-internal-url "http://$IP:$KEYSTONE_PORT/v3/" \
            --bootstrap-public-url "http://$IP:$KEYSTONE_PORT/v3/"
        "$V/bin/placement-manage" --config-file "$DATA/placement/placement.conf" db sync
        "$V/bin/glance-manage" --config-file "$DATA/glance/glance-api.conf" db_sync
    } >>"$LOG/setup.log" 2>&1 || { tail -n 30 "$LOG/setup.log" >&2; die "database setup failed"; }
    touch "$DATA/.setup-done"
    say "  keystone/placement/glance databases ($(secs "$t")s)"
}

nova_db_setup() { # needs MariaDB
    [ -e "$DATA/.nova-db-done" ] && return 0
    local t db="mysql+pymysql://nova:$OSBED_DB_PASSWORD@localhost" \
        dbq="?unix_socket=$RUN/mysqld.sock&charset=utf8"
    t=$(now)
    mariadb --no-defaults -S "$RUN/mysqld.sock" -uroot -e "
        CREATE DATABASE IF NOT EXISTS nova_api; CREATE DATABASE IF NOT EXISTS nova;
        CREATE DATABASE IF NOT EXISTS nova_cell0;
        CREATE USER IF NOT EXISTS 'nova'@'localhost' IDENTIFIED BY '$OSBED_DB_PASSWORD';
        GRANT ALL ON nova_api.* TO 'nova'@'localhost'; GRANT ALL ON nova.* TO 'nova'@'localhost';
        GRANT ALL ON nova_cell0.* TO 'nova'@'localhost';"
    local NM=("$V/bin/nova-manage" --config-file "$DATA/nova/nova.conf")
    {
        "${NM[@]}" api_db sync
        "${NM[@]}" cell_v2 map_cell0 --database_connection "$db/nova_cell0$dbq"
        "${NM[@]}" cell_v2 create_cell --name cell1
        "${NM[@]}" db sync
    } >>"$LOG/setup.log" 2>&1 || { tail -n 30 "$LOG/setup.log" >&2; die "nova database setup failed"; }
    touch "$DATA/.nova-db-done"
    say "  nova databases ($(secs "$t")s)"
}

# --- start -------------------------------------------------------------------------------------

start_infra() {
    launch epmd epmd -address $IP -port $EPMD_PORT
    if [ ! -d "$DATA/mysql/mysql" ]; then
        rm -rf "$DATA/mysql"
        mariadb-install-db --no-defaults --user=root --datadir="$DATA/mysql" \
            --auth-root-authentication-method=socket --skip-test-db >>"$LOG/setup.log" 2>&1 \
            || { tail -n 30 "$LOG/setup.log" >&2; die "mariadb-install-db failed"; }
    fi
    launch mariadb mariadbd --no-defaults --user=root --datadir="$DATA/mysql" \
        --socket="$RUN/mysqld.sock" --pid-file="$RUN/mysqld.pidfile" --skip-networking \
        --tmpdir="$DATA/mysql-tmp" \
        --innodb-buffer-pool-size=64M --max-connections=300 --log-error="$LOG/mariadb.log"
    mkdir -p "$DATA/rabbit"
    [ -e "$DATA/rabbit/enabled_plugins" ] || echo '[].' >"$DATA/rabbit/enabled_plugins"
    touch "$DATA/rabbit/rabbitmq-env.conf"
    # RabbitMQ would start an epmd of its own (outside our process trees) if none answered.
    wait_for epmd 30 port_open $EPMD_PORT
    launch rabbitmq env HOME="$DATA/rabbit" RABBITMQ_NODENAME=$RABBIT_NODE ERL_EPMD_PORT=$EPMD_PORT \
        RABBITMQ_NODE_IP_ADDRESS=$IP RABBITMQ_NODE_PORT=$RABBIT_PORT \
        RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT ERL_EPMD_ADDRESS=$IP \
        RABBITMQ_MNESIA_BASE="$DATA/rabbit/mnesia" RABBITMQ_LOG_BASE="$LOG" RABBITMQ_LOGS=- \
        RABBITMQ_CONFIG_FILE="$DATA/rabbit/rabbitmq" \
        RABBITMQ_CONF_ENV_FILE="$DATA/rabbit/rabbitmq-env.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$DATA/rabbit/enabled_plugins" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        /usr/lib/rabbitmq/bin/rabbitmq-server
    launch netstub python3 "$HERE/netstub.py" $NETWORK_PORT
}

rabbitmqctl_() {
    env HOME="$DATA/rabbit" RABBITMQ_CONF_ENV_FILE="$DATA/rabbit/rabbitmq-env.conf" \
        ERL_EPMD_ADDRESS=$IP ERL_EPMD_PORT=$EPMD_PORT /usr/lib/rabbitmq/bin/rabbitmqctl \
        -n $RABBIT_NODE -q "$@"
}

rabbit_user() { # a user for the OpenStack services; the mark lives beside the node's data
    local mark="$DATA/rabbit/mnesia/$RABBIT_NODE/osbed-user-done"
    [ -e "$mark" ] && return 0
    rabbitmqctl_ await_startup >>"$LOG/setup.log" 2>&1
    rabbitmqctl_ add_user osbed "$OSBED_SERVICE_PASSWORD" >>"$LOG/setup.log" 2>&1 \
        || rabbitmqctl_ change_password osbed "$OSBED_SERVICE_PASSWORD" >>"$LOG/setup.log" 2>&1
    rabbitmqctl_ set_permissions -p / osbed '.*' '.*' '.*' >>"$LOG/setup.log" 2>&1
    touch "$mark"
}

start_keystone() {
    if alive keystone && [ "$(cat "$RUN/keystone.running-expiration" 2>/dev/null)" != "$TOKEN_EXPIRATION" ]; then
        say "token expiration changed to ${TOKEN_EXPIRATION}s: restarting keystone"
        stop_service keystone
    fi
    alive keystone || echo "$TOKEN_EXPIRATION" >"$RUN/keystone.running-expiration"
    launch keystone env OS_KEYSTONE_CONFIG_DIR="$DATA/keystone" "$V/bin/uwsgi" \
        --http11-socket $IP:$KEYSTONE_PORT --module keystone.wsgi.api:application "${UWSGI_OPTS[@]}"
}

install_driver() { # nova loads virt drivers only from its own package
    local dst
    dst=$(echo "$V"/lib/python3*/site-packages/nova/virt)/osbed_fake_driver.py
    cmp -s "$HERE/osbed_fake_driver.py" "$dst" || cp "$HERE/osbed_fake_driver.py" "$dst"
}

do_start() {
    local t h
    t=$(now)
    [ -x "$V/bin/nova-manage" ] || die "not installed: run '$0 install' first"
    mkdir -p "$RUN" "$LOG" "$DATA"/{keystone,placement,glance/{images,staging,tasks},nova/state,locks,novnc,mysql-tmp}
    chmod 700 "$D" "$DATA"  # configuration files hold the passwords
    # MariaDB crashed here once while the disk was nearly full: say so up front.
    local free_mb
    free_mb=$(df --output=avail -m "$DATA" | tail -n 1 | tr -d ' ')
    [ "$free_mb" -ge 2048 ] || say "warning: only ${free_mb} MiB free for $DATA (MariaDB, Glance)"
    secrets
    api_env
    write_configs
    install_driver
    first_setup
    start_infra
    start_keystone
    # One sync worker: Placement on SQLite loses concurrent allocations under threads.
    launch placement env OS_PLACEMENT_CONFIG_DIR="$DATA/placement" "$V/bin/gunicorn" -w 1 -k sync \
        -b $IP:$PLACEMENT_PORT --chdir "$DATA/placement" placement.wsgi.api:application
    wait_for mariadb 60 mariadb --no-defaults -S "$RUN/mysqld.sock" -uroot -e 'select 1'
    nova_db_setup
    wait_for keystone 60 http_up http://$IP:$KEYSTONE_PORT/v3
    if [ ! -e "$DATA/.keystone-done" ] || [ ! -s "$DATA/appcred" ]; then
        "$PY" "$HERE/osbed_api.py" keystone || die "keystone setup failed"
        touch "$DATA/.keystone-done"
    fi
    say "  keystone up ($(secs "$t")s)"
    launch glance env OS_GLANCE_CONFIG_DIR="$DATA/glance" "$V/bin/uwsgi" \
        --http11-socket $IP:$GLANCE_PORT --module glance.wsgi.api:application "${UWSGI_OPTS[@]}"
    wait_for rabbitmq 90 port_open $RABBIT_PORT
    rabbit_user
    say "  rabbitmq up ($(secs "$t")s)"
    local NC=(--config-file "$DATA/nova/nova.conf")
    launch nova-conductor "$V/bin/nova-conductor" "${NC[@]}"
    launch nova-scheduler "$V/bin/nova-scheduler" "${NC[@]}"
    launch nova-api env OS_NOVA_CONFIG_DIR="$DATA/nova" \
        OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf" "$V/bin/uwsgi" \
        --http11-socket $IP:$NOVA_PORT --module nova.wsgi.osapi_compute:application "${UWSGI_OPTS[@]}"
    for h in "${COMPUTE_HOSTS[@]}"; do
        alive "nova-compute-$h" || date +%s >"$RUN/nova-compute-$h.since"
        launch "nova-compute-$h" "$V/bin/nova-compute" --config-file "$DATA/nova/common.conf" \
            --config-file "$DATA/nova/compute-$h.conf"
    done
    launch nova-novncproxy "$V/bin/nova-novncproxy" "${NC[@]}" --web "$DATA/novnc"
    launch nova-spicehtml5proxy "$V/bin/nova-spicehtml5proxy" "${NC[@]}" --web "$DATA/novnc"
    wait_for placement 60 http_up http://$IP:$PLACEMENT_PORT/
    wait_for glance 60 http_up http://$IP:$GLANCE_PORT/
    wait_for nova-api 90 http_up http://$IP:$NOVA_PORT/
    wait_for nova-novncproxy 60 port_open $NOVNC_PORT
    wait_for nova-spicehtml5proxy 60 port_open $SPICE_PROXY_PORT
    say "  APIs answering ($(secs "$t")s)"
    # Both computes have reported their provider trees (root + nested GPUs) to Placement.
    local deadline=$((SECONDS + 120))
    OSBED_COMPUTE_SINCE=$(cat "$RUN"/nova-compute-*.since | sort -n | tail -n 1)
    export OSBED_COMPUTE_SINCE
    local missing
    until missing=$("$PY" "$HERE/osbed_api.py" ready 2>/dev/null); do
        for h in "${COMPUTE_HOSTS[@]}"; do
            [ "$(restarts "nova-compute-$h")" -lt 3 ] \
                || fail_service "nova-compute-$h" "keeps exiting during start"
        done
        [ $SECONDS -lt $deadline ] || fail_service "nova-compute-${missing:-gpu-1}" \
            "was not up in Nova with its resource providers in Placement within 120s"
        sleep 1
    done
    "$V/bin/nova-manage" "${NC[@]}" cell_v2 discover_hosts >>"$LOG/setup.log" 2>&1
    "$PY" "$HERE/osbed_api.py" baseline >/dev/null || die "creating the image and flavors failed"
    "$PY" "$HERE/osbed_api.py" probe || {
        for s in nova-scheduler nova-conductor nova-compute-gpu-1 nova-compute-cpu-1; do
            say "--- $s:"; grep -E 'ERROR|Traceback' "$LOG/$s.log" | tail -n 5 >&2 || true
        done
        die "Nova could not boot the probe server"
    }
    say "start: ready to boot servers ($(secs "$t")s)"
}

# --- stop, status, env, reset -------------------------------------------------------------------

do_stop() {
    local name p f pid pids=()
    for name in "${SERVICES[@]}"; do
        alive "$name" && pids+=("$(pid_of "$name")")
    done
    kill_trees "${pids[@]}"
    for name in "${SERVICES[@]}"; do rm -f "$RUN/$name.pid"; done
    # The consoles' QEMUs (daemonized by the fake driver, so not in any group above).
    for f in "$DATA"/nova/*/osbed-vnc/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cut -d' ' -f1 "$f")
        grep -qa osbed- "/proc/$pid/cmdline" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    say "stopped"
}

do_status() {
    local name p all=0 rss total=0
    for name in "${SERVICES[@]}"; do
        if alive "$name"; then
            p=$(pid_of "$name")
            rss=$(tree "$p" | xargs ps -o rss= -p 2>/dev/null | awk '{s += $1} END {print int(s / 1024)}')
            total=$((total + rss))
            printf '%-20s running  pid %-8s %5s MiB  restarts %s\n' "$name" "$p" "$rss" "$(restarts "$name")"
        else
            printf '%-20s stopped\n' "$name"
            all=1
        fi
    done
    rss=$(cat "$DATA"/nova/*/osbed-vnc/*.pid 2>/dev/null | cut -d' ' -f1 \
        | xargs -r ps -o rss= -p 2>/dev/null | awk '{s += $1; n++} END {printf "%d %d", n, s / 1024}' || true)
    [ -n "$rss" ] || rss="0 0"
    printf '%-20s %s QEMU(s)        %5s MiB\n' console-qemu "${rss% *}" "${rss#* }"
    total=$((total + ${rss#* }))
    echo "total ${total} MiB; token expiration $(cat "$RUN/keystone.running-expiration" 2>/dev/null || echo ?)s; state in $D"
    return $all
}

do_env() {
    [ -s "$DATA/secrets.env" ] && [ -s "$DATA/appcred" ] || die "no test bed set up in $D: run '$0 start'"
    secrets
    local id secret
    read -r id secret <"$DATA/appcred"
    cat <<EOF
export OS_AUTH_URL=http://$IP:$KEYSTONE_PORT/v3
export OS_IDENTITY_API_VERSION=3
export OS_REGION_NAME=$REGION
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_PROJECT_NAME=osvdi
export OS_USERNAME=osvdi
export OS_PASSWORD=$OSBED_OSVDI_PASSWORD
export OSVDI_OS_ADMIN_USERNAME=admin
export OSVDI_OS_ADMIN_PASSWORD=$OSBED_ADMIN_PASSWORD
export OSVDI_OS_ADMIN_PROJECT_NAME=admin
export OSVDI_OS_APP_CRED_ID=$id
export OSVDI_OS_APP_CRED_SECRET=$secret
export OSVDI_OS_COMPUTE_URL=http://$IP:$NOVA_PORT/v2.1
export OSVDI_OS_IMAGE_URL=http://$IP:$GLANCE_PORT
export OSVDI_OS_PLACEMENT_URL=http://$IP:$PLACEMENT_PORT
export OSVDI_OS_NETWORK_URL=http://$IP:$NETWORK_PORT
export OSVDI_OS_NETWORK=none
export OSVDI_OS_NOVNCPROXY_URL=http://$IP:$NOVNC_PORT
export OSVDI_OS_SPICEPROXY_URL=http://$IP:$SPICE_PROXY_PORT
export OSVDI_OS_TOKEN_EXPIRATION=$(cat "$RUN/keystone.running-expiration" 2>/dev/null || echo "$TOKEN_EXPIRATION")
EOF
}

do_reset() {
    secrets
    api_env
    "$PY" "$HERE/osbed_api.py" reset
}

do_selftest() {
    eval "$(do_env)"
    "$PY" "$HERE/selftest.py"
}

do_restart_compute() { # stop the nova-compute processes, then start (waits until they are up)
    local h
    for h in "${COMPUTE_HOSTS[@]}"; do stop_service "nova-compute-$h"; done
    do_start
}

with_lock() { # one install/start/stop/reset at a time per state dir
    mkdir -p "$D"
    exec 9>"$D/.lock"
    flock -w 600 9 || die "another osbed.sh holds $D/.lock"
    "$@"
}

main() {
case "${1:-}" in
    install) with_lock do_install ;;
    start) with_lock do_start ;;
    # no lock: stopping must work even while a start hangs
    stop) if [ -d "$RUN" ]; then do_stop; else say "nothing to stop"; fi ;;
    status) [ -d "$RUN" ] || { echo "not set up in $D"; exit 1; }; do_status ;;
    env) do_env ;;
    reset) with_lock do_reset ;;
    # for the bed's own checks (selftest.py): not part of the tests' contract
    selftest) do_selftest ;;
    restart-compute) with_lock do_restart_compute ;;
    *) echo "usage: $0 install|start|stop|status|env|reset|selftest|restart-compute" >&2; exit 2 ;;
esac
}

# On one line, so that bash has read it all before it runs: an edit of this file while it
# runs (e.g. a git pull) cannot make it execute a half-read line.
main "$@"; exit $?
