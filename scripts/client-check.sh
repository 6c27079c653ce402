#!/usr/bin/env bash
# Validates openapi/openapi.json with an OpenAPI validator, generates a Python client from it
# with openapi-python-client, and drives an EduLibra run through that client against the real
# server — on SQLite and on PostgreSQL.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=""
pg_db=""
pg_server=${SHIPSHAPE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cleanup() {
    if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    if [[ -n $pg_db ]]; then psql "$pg_server" -qc "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

python3 -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install --quiet --disable-pip-version-check \
    openapi-spec-validator==0.9.0 openapi-python-client==0.29.1 httpx attrs python-dateutil

openapi-spec-validator "$root/openapi/openapi.json"
# text/markdown bodies are outside what the generator models; it skips them with a warning.
openapi-python-client generate --path "$root/openapi/openapi.json" --meta none \
    --output-path "$work/shipshape_client" 2>&1 | grep -v '^$' | grep -iv 'text/markdown' | head -5 || true
test -f "$work/shipshape_client/client.py"

(cd "$root" && cargo build --quiet --locked -p shipshape-api --bin shipshape)
target=${CARGO_TARGET_DIR:-$root/target}
password=client-check-password

drive() {
    local database_url=$1
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    SHIPSHAPE_ADMIN_PASSWORD=$password DATABASE_URL=$database_url SHIPSHAPE_BIND=127.0.0.1:$port \
        RUST_LOG=warn "$target/debug/shipshape" serve &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    PYTHONPATH=$work python3 "$root/scripts/client_drive.py" "http://127.0.0.1:$port" "$password"
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

echo "client check on SQLite"
drive "sqlite://$work/client-check.db"

echo "client check on PostgreSQL"
pg_db="shipshape_client_check_$$"
psql "$pg_server" -qc "CREATE DATABASE $pg_db" >/dev/null
pg_url=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$pg_server" "$pg_db")
drive "$pg_url"
echo "client check passed"
