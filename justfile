# Shipshape task menu. `just` lists the recipes.

_default:
    @just --list

# Build and start Shipshape on SQLite (./data/shipshape.db) at http://127.0.0.1:8080
run:
    cargo run --release -p shipshape-api --bin shipshape -- serve

# Run every test: domain, store, API and black-box suites, on SQLite and PostgreSQL
test:
    cargo test --workspace --locked

# Rewrite openapi/openapi.json from the code
openapi:
    cargo run --quiet -p shipshape-api --bin shipshape -- openapi > openapi/openapi.json

# Formatting, lints and the wasm32 build of the domain crate (the web app's wire types)
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo check --locked --target wasm32-unknown-unknown -p shipshape-domain

# Check the committed OpenAPI document with an OpenAPI validator and drive a run through a generated Python client
client-check:
    bash scripts/client-check.sh

# What CI runs: lints, every test, the OpenAPI/client checks
ci: lint test client-check
