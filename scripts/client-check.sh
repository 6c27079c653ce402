#!/usr/bin/env bash
# Validates openapi/openapi.json with an OpenAPI validator, generates a Python client from it
# with openapi-python-client, and drives an EduLibra run through that client against the real
# server — on SQLite and on PostgreSQL.
set -euo pipefail
# shellcheck source=scripts/serve-lib.sh
. "$(dirname "$0")/serve-lib.sh"

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

build_server
password=client-check-password

drive() {
    start_server "$1" "$password" "$work/server.log"
    PYTHONPATH=$work python3 "$root/scripts/client_drive.py" "http://127.0.0.1:$port" "$password"
    stop_server
}

echo "client check on SQLite"
drive "sqlite://$work/client-check.db"

echo "client check on PostgreSQL"
fresh_postgres_database "shipshape_client_check_$$"
drive "$pg_url"
echo "client check passed"
