#!/usr/bin/env bash
# Fuzzes the real server against its own OpenAPI document with schemathesis (every check, the
# coverage, fuzzing and stateful phases, a fixed seed and a bounded number of examples), on
# SQLite and on PostgreSQL. Zero failures are expected: a value the document allows must be
# served, a value it forbids must be refused with a 4xx problem, and nothing may be a 5xx.
set -euo pipefail

# shellcheck source=scripts/serve-lib.sh
. "$(dirname "$0")/serve-lib.sh"
examples=${SHIPSHAPE_FUZZ_EXAMPLES:-25}

# SHIPSHAPE_FUZZ_VENV names a virtual environment that has schemathesis 4.32.5 already.
venv=${SHIPSHAPE_FUZZ_VENV:-$work/venv}
if [[ ! -x $venv/bin/schemathesis ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
# Hypothesis parses the source of schemathesis's large modules to describe its filters; in a
# worker thread that can meet CPython 3.11's AST depth bug (cpython#106905: "AST constructor
# recursion depth mismatch", a runtime error of the tool, not a finding). A higher recursion
# limit makes it rarer; where it still happens, the parse is tried again on a fresh thread,
# and if that fails too it reads as a syntax error, on which hypothesis describes the filter
# as "<unknown>" and goes on.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
cat > "$site/sitecustomize.py" <<'PY'
import ast
import sys
import threading

sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
_parse = ast.parse


def _parse_mended(*args, **kwargs):
    try:
        return _parse(*args, **kwargs)
    except SystemError as e:
        if "recursion depth mismatch" not in str(e):
            raise
        out = {}

        def fresh():
            try:
                out["tree"] = _parse(*args, **kwargs)
            except SystemError as again:
                out["error"] = again

        t = threading.Thread(target=fresh)
        t.start()
        t.join()
        if "tree" in out:
            return out["tree"]
        raise SyntaxError(f"not parsed: {out['error']}") from e


ast.parse = _parse_mended
PY

build_server
password=api-fuzz-admin-password

fuzz() {
    local name=$1 database_url=$2
    start_server "$database_url" "$password" "$work/$name-server.log"
    # Real resources for the path parameters, so that operations reach more than 404.
    python3 "$root/scripts/api_fuzz_fixtures.py" "http://127.0.0.1:$port" "$password" "$work/$name"
    # Not fuzzed: signing out and changing the password end the session the run uses,
    # sign-in guesses from one address are paced (seconds each) by design, and deleting the
    # webhook subscription the other webhook operations are pinned to would leave them only
    # 404s; the API tests cover all four. SHIPSHAPE_FUZZ_ARGS adds options (e.g. one operation, one phase).
    # shellcheck disable=SC2086
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
            --exclude-operation-id delete_webhook \
            --exclude-operation-id login ${SHIPSHAPE_FUZZ_ARGS:-} \
            --request-timeout 10 \
            --workers 2 \
            --no-color
    ) || { echo "server log:"; tail -20 "$work/$name-server.log"; return 1; }
    if grep -q " ERROR " "$work/$name-server.log"; then
        echo "the server logged errors while fuzzed:"; grep " ERROR " "$work/$name-server.log" | head -20
        return 1
    fi
    stop_server
}

echo "api fuzz on SQLite"
fuzz sqlite "sqlite://$work/api-fuzz.db"

echo "api fuzz on PostgreSQL"
fresh_postgres_database "shipshape_api_fuzz_$$"
fuzz postgres "$pg_url"
echo "api fuzz passed"
