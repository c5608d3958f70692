#!/usr/bin/env bash
# Browser tests of the web UI (ui-tests/*.test.mjs): Debian's chromium driven by
# playwright-core, run by Node's built-in test runner, one file at a time, each
# against its own `sift serve` on a fresh data directory.
#
# Works on a fresh Debian 12 machine with only the Rust toolchain: installs what is
# missing (nodejs+npm, chromium, ui-tests/node_modules), builds the debug binary,
# runs the tests. Never downloads a browser (playwright-core uses /usr/bin/chromium).
#
#   scripts/ui-test.sh                      # all files
#   scripts/ui-test.sh ui-tests/auth.test.mjs   # some files
#
# Environment: CARGO_TARGET_DIR (where the binary is built), CHROMIUM (the browser,
# default /usr/bin/chromium), SIFT_UI_SCREENSHOTS (the screenshot folder, default
# target/ui-screenshots/<UTC timestamp>/), SIFT_UI_SERVER_LOG=1 (echo the servers' logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
export SIFT_UI_SCREENSHOTS="${SIFT_UI_SCREENSHOTS:-$ROOT/target/ui-screenshots/$STAMP}"
mkdir -p "$SIFT_UI_SCREENSHOTS"
echo "UI screenshots go to: $SIFT_UI_SCREENSHOTS"
trap 'echo "UI screenshots are in: $SIFT_UI_SCREENSHOTS ($(( $(date +%s) - START )) s)"' EXIT

# --- What is missing gets installed (scripts/install-lib.sh). -------------------------
source scripts/install-lib.sh
need_node

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$CHROMIUM" = /usr/bin/chromium ]; then
    echo "Installing chromium (apt)..."
    apt_install chromium fonts-liberation
  else
    echo "error: CHROMIUM=$CHROMIUM is not an executable" >&2
    exit 1
  fi
fi

# node_modules is rebuilt from package-lock.json when missing or older than the lock.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
STAMP_FILE=ui-tests/node_modules/.sift-package-lock.json
if ! cmp -s ui-tests/package-lock.json "$STAMP_FILE"; then
  echo "Installing ui-tests/node_modules (npm ci)..."
  (cd ui-tests && npm ci --ignore-scripts --no-audit --no-fund)
  cp ui-tests/package-lock.json "$STAMP_FILE"
fi

# --- The binary (debug: the Rust tests already compile the dependencies in debug). ---------
cargo build -p sift --locked
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
export SIFT_BIN="$TARGET_DIR/debug/sift"

# --- The tests, one file at a time (each file starts its own server and browser). ---------
if [ "$#" -gt 0 ]; then FILES=("$@"); else FILES=(ui-tests/*.test.mjs); fi
echo "Running ${#FILES[@]} UI test files with $(node --version), $("$CHROMIUM" --version 2>/dev/null | head -1)"
if node --help | grep -q -- '--test-concurrency'; then
  node --test --test-concurrency=1 --test-reporter=spec "${FILES[@]}"
else
  # Node 18 (Debian 12's) has no --test-concurrency: run the files one by one.
  status=0
  for f in "${FILES[@]}"; do
    node --test --test-reporter=spec "$f" || status=1
  done
  exit "$status"
fi
