#!/usr/bin/env bash
# Fuzzes the real server against its own OpenAPI document with schemathesis (every check, the
# coverage, fuzzing and stateful phases, a fixed seed and a bounded number of examples), on
# SQLite and on PostgreSQL. Zero failures are expected: a value the document allows must be
# served, a value it forbids must be refused with a 4xx problem, and nothing may be a 5xx.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=""
pg_db=""
pg_server=${SHIPSHAPE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
examples=${SHIPSHAPE_FUZZ_EXAMPLES:-25}
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [[ -n $pg_db ]]; then psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# SHIPSHAPE_FUZZ_VENV names a virtual environment that has schemathesis 4.32.5 already.
venv=${SHIPSHAPE_FUZZ_VENV:-$work/venv}
if [[ ! -x $venv/bin/schemathesis ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi

(cd "$root" && cargo build --quiet --locked -p shipshape-api --bin shipshape)
target=${CARGO_TARGET_DIR:-$root/target}
password=api-fuzz-admin-password

fuzz() {
    local name=$1 database_url=$2
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    SHIPSHAPE_ADMIN_PASSWORD=$password DATABASE_URL=$database_url SHIPSHAPE_BIND=127.0.0.1:$port \
        SHIPSHAPE_WEB_DIR="$work/no-web-app" RUST_LOG=warn "$target/debug/shipshape" serve \
        2>"$work/$name-server.log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    # Real resources for the path parameters, so that operations reach more than 404.
    python3 "$root/scripts/api_fuzz_fixtures.py" "http://127.0.0.1:$port" "$password" "$work/$name"
    (
        cd "$work/$name"
        "$venv/bin/schemathesis" --config-file schemathesis.toml \
            run "http://127.0.0.1:$port/api-docs/openapi.json" \
            -H "Authorization: Bearer $(cat token)" \
            --checks all \
            --phases coverage,fuzzing,stateful \
            --max-examples "$examples" \
            --seed 1 \
            --generation-database none \
            --exclude-operation-id logout \
            --exclude-operation-id update_password \
            --exclude-operation-id login ${SHIPSHAPE_FUZZ_ARGS:-} \
            --request-timeout 10 \
            --workers 2 \
            --no-color
    ) || { echo "server log:"; tail -20 "$work/$name-server.log"; return 1; }
    if grep -q " ERROR " "$work/$name-server.log"; then
        echo "the server logged errors while fuzzed:"; grep " ERROR " "$work/$name-server.log" | head -20
        return 1
    fi
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

echo "api fuzz on SQLite"
fuzz sqlite "sqlite://$work/api-fuzz.db"

echo "api fuzz on PostgreSQL"
pg_db="shipshape_api_fuzz_$$"
psql "$pg_server" -qc "CREATE DATABASE $pg_db" >/dev/null
pg_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$pg_server" "$pg_db")
fuzz postgres "$pg_url"
echo "api fuzz passed"
