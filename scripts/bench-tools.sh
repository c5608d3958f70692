#!/usr/bin/env bash
# Installs what `sift bench --suite state --duckdb PYTHON` compares Sift with:
# DuckDB's Python package (pinned), in a virtual environment under target/,
# and prints the interpreter to pass. Usage:
#   cargo build --release -p sift
#   target/release/sift bench --suite state --duckdb "$(scripts/bench-tools.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=install-lib.sh
source scripts/install-lib.sh

TARGET_DIR=${CARGO_TARGET_DIR:-target}
VENV="$TARGET_DIR/bench-tools"
pip_venv "$VENV" scripts/bench-tools-requirements.txt DuckDB
echo "$(cd "$VENV/bin" && pwd)/python"
