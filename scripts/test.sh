#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test of every crate.
# Needs only the Rust toolchain (rustfmt and clippy are added with rustup if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

have() { cargo "$1" --version >/dev/null 2>&1 || rustup component add "$2" >/dev/null 2>&1; }

if have fmt rustfmt; then
  cargo fmt --all -- --check
else
  echo "warning: rustfmt is not available; skipping the formatting check" >&2
fi
if have clippy clippy; then
  cargo clippy --workspace --all-targets --locked -- -D warnings
else
  echo "warning: clippy is not available; skipping lints" >&2
fi
# The cluster tests run real nats-server processes (installed under target/ when missing).
SIFT_NATS_SERVER="$(./scripts/nats-tools.sh)"
export SIFT_NATS_SERVER
cargo test --workspace --locked
# The API test suite again, against a 3-node cluster (docs/cluster.md), the
# requests spread over its nodes.
./scripts/cluster-api-test.sh
# The web UI in a real browser (installs Node.js and chromium when missing; see the script).
./scripts/ui-test.sh
# The HTTP API through its OpenAPI document: a generated TypeScript client runs
# README's walk-through, schemathesis checks every operation's answers (installs
# Node.js, python3-venv, npm and pip packages when missing; see the script).
./scripts/api-test.sh
