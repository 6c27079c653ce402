# Shipshape task menu. `just` lists the recipes.

_default:
    @just --list

# Build the web app and start Shipshape on SQLite (./data/shipshape.db) at http://127.0.0.1:8080
run: web
    cargo run --release --locked -p shipshape-api --bin shipshape -- serve

# Build the web app into frontend/dist (offline: cargo, wasm-bindgen as a library, binaryen's wasm-opt from npm when npm is there)
web:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v npm >/dev/null 2>&1 && { [ ! -x frontend/node_modules/.bin/wasm-opt ] || [ ! -f frontend/node_modules/axe-core/axe.min.js ]; }; then
        npm ci --prefix frontend --no-audit --no-fund --loglevel=error || echo "npm ci failed: building without wasm-opt"
    fi
    cargo run --release --locked -p shipshape-webbuild

# Run every test: domain, store, API, black-box and browser suites (headless Chromium), a generated OpenAPI client driving a run, and schemathesis fuzzing the API against its document — on SQLite and PostgreSQL
test: web
    #!/usr/bin/env bash
    set -euo pipefail
    bash scripts/client-check.sh
    bash scripts/api-fuzz.sh
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    status=0
    cargo test --workspace --all-targets --locked 2>&1 | tee "$log" || status=$?
    awk '/^test result:/ { passed += $4; failed += $6 } END { printf "\ntests: %d passed, %d failed\n", passed, failed }' "$log"
    exit "$status"

# Rewrite openapi/openapi.json from the code
openapi:
    cargo run --quiet --locked -p shipshape-api --bin shipshape -- openapi > openapi/openapi.json.tmp
    mv openapi/openapi.json.tmp openapi/openapi.json

# Formatting, lints, and the wasm32 builds of the domain crate (the wire types) and the web app
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo clippy --locked --target wasm32-unknown-unknown -p shipshape-domain -p shipshape-web -- -D warnings

# The dependency policy (deny.toml): licences, bans and sources; security advisories too where the advisory database can be fetched
deny:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo deny --locked check --hide-inclusion-graph licenses bans sources
    if cargo deny --locked check --hide-inclusion-graph advisories; then
        echo "advisories: checked"
    else
        # An offline machine cannot fetch the database; a fetched one with findings fails.
        if [ -d "${CARGO_HOME:-$HOME/.cargo}/advisory-dbs" ] && ls "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/*/crates >/dev/null 2>&1; then
            exit 1
        fi
        echo "advisories: not checked (the advisory database cannot be fetched from here)"
    fi

target := env_var_or_default("CARGO_TARGET_DIR", "target")

# Measure the hot paths against this machine's floors on SQLite and PostgreSQL (release build; needs wrk); writes bench/results/
bench:
    cargo build --release --locked -p shipshape-api --bin shipshape
    cargo bench --locked -p shipshape-domain --bench domain
    cargo run --release --locked -p shipshape-bench -- --server {{target}}/release/shipshape

# A quick run of every benchmark step, to keep the harness working (CI)
bench-smoke:
    cargo build --locked -p shipshape-api --bin shipshape
    cargo run --locked -p shipshape-bench -- --smoke --server {{target}}/debug/shipshape

# What CI runs: lints, the benchmark smoke run, then every test
ci: lint bench-smoke test
