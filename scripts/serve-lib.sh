# Shared by the scripts that drive a real server (client-check.sh, api-fuzz.sh): a work folder,
# the server built and started on a free loopback port, and a fresh PostgreSQL database per
# run, all cleaned up at exit. Source it from bash with `set -euo pipefail`.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
server_pid=""
pg_db=""
pg_server=${SHIPSHAPE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}

cleanup() {
    stop_server
    if [[ -n $pg_db ]]; then psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Builds the `shipshape` binary (debug) and sets $target to the target folder.
build_server() {
    (cd "$root" && cargo build --quiet --locked -p shipshape-api --bin shipshape)
    target=${CARGO_TARGET_DIR:-$root/target}
}

# start_server DATABASE_URL ADMIN_PASSWORD LOG_FILE: starts the server and waits until it is
# ready; sets $port and $server_pid.
start_server() {
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # Strict egress: webhooks that clients and the fuzzer create may reach only `localhost`
    # (loopback; nothing listens where the fixtures point), and no name is looked up.
    SHIPSHAPE_ADMIN_PASSWORD=$2 DATABASE_URL=$1 SHIPSHAPE_BIND=127.0.0.1:$port \
        SHIPSHAPE_OUTBOUND_PUBLIC=false SHIPSHAPE_OUTBOUND_ALLOW=localhost \
        SHIPSHAPE_WEB_DIR="$work/no-web-app" RUST_LOG=warn "$target/debug/shipshape" serve 2>"$3" &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the server did not become ready:"; cat "$3"
    return 1
}

stop_server() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    server_pid=""
}

# fresh_postgres_database NAME: creates it (dropped at exit) and sets $pg_url.
fresh_postgres_database() {
    pg_db=$1
    psql "$pg_server" -qc "CREATE DATABASE $pg_db" >/dev/null
    pg_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$pg_server" "$pg_db")
}
