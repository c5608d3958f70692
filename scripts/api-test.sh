#!/usr/bin/env bash
# The HTTP API tested through its OpenAPI document, against a live `sift serve`:
#
#  1. a TypeScript client is generated from the served /v1/openapi.json
#     (openapi-typescript, into api-client/generated/, git-ignored), the README's
#     "first segment in five minutes" walk-through (api-client/walkthrough.ts) is
#     type-checked with it by `tsc --strict` and run with openapi-fetch;
#  2. schemathesis generates requests from the document and checks every answer
#     against it (status codes, content types, response schemas, no 5xx, auth
#     enforced, 405 on undeclared methods, invalid requests refused), bounded to
#     SIFT_API_TEST_EXAMPLES (default 20) cases per operation, once with a
#     workspace key for the workspace routes and once with the admin key for the
#     admin routes; each time the stateful phase (chains of calls linked by the
#     ids they answer) runs apart, with its own configuration.
#
# Works on a fresh Debian 12 machine with only the Rust toolchain: installs what is
# missing (nodejs+npm, python3-venv; api-client/node_modules from its package-lock.json;
# schemathesis into target/api-tools/venv from scripts/api-test-requirements.txt,
# every package pinned) and downloads nothing that is already there.
#
#   scripts/api-test.sh
#
# Environment: CARGO_TARGET_DIR (where the binary is built), SIFT_API_TEST_EXAMPLES
# (schemathesis' examples per operation), SIFT_API_TEST_CHECKS (its checks, comma-
# separated, or `all`, instead of those in scripts/api-test-schemathesis.toml),
# SIFT_API_TEST_SERVER_LOG=1 (print the server's log even when everything passes).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
INSTALLED=$START

# --- What is missing gets installed (scripts/install-lib.sh). -------------------------
source scripts/install-lib.sh
need_node
if ! command -v curl >/dev/null 2>&1; then
  echo "Installing curl (apt)..."
  apt_install curl ca-certificates
fi
# Debian's python3 has no venv module (and so no pip) without python3-venv.
if ! command -v python3 >/dev/null 2>&1; then
  echo "Installing python3 and python3-venv (apt)..."
  apt_install python3 python3-venv
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  echo "Installing python3-venv (apt)..."
  apt_install python3-venv
fi

TARGET_DIR="${CARGO_TARGET_DIR:-target}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
TOOLS="$TARGET_DIR/api-tools"
VENV="$TOOLS/venv"
REQUIREMENTS=scripts/api-test-requirements.txt
if ! cmp -s "$REQUIREMENTS" "$VENV/.sift-requirements.txt"; then
  echo "Installing schemathesis into $VENV (pip)..."
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.sift-requirements.txt"
fi

STAMP_FILE=api-client/node_modules/.sift-package-lock.json
if ! cmp -s api-client/package-lock.json "$STAMP_FILE"; then
  echo "Installing api-client/node_modules (npm ci)..."
  (cd api-client && npm ci --ignore-scripts --no-audit --no-fund)
  cp api-client/package-lock.json "$STAMP_FILE"
fi
INSTALLED=$(date +%s)

# --- The binary (debug: the Rust tests already compile the dependencies in debug). ---------
cargo build -p sift --locked
SIFT_BIN="$TARGET_DIR/debug/sift"

# --- A server on a free loopback port, a fresh data directory, an admin key. -------------
WORK=$(mktemp -d)
LOG="$WORK/server.log"
ADMIN_KEY="admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
SERVER_PID=""
finish() {
  status=$?
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$status" -ne 0 ] || [ "${SIFT_API_TEST_SERVER_LOG:-}" = 1 ]; then
    echo "--- the server's log ($LOG) ---"
    cat "$LOG" 2>/dev/null || true
    echo "--- end of the server's log ---"
  fi
  rm -rf "$WORK"
  echo "API tests: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - START )) s ($(( $(date +%s) - INSTALLED )) s after installs)"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

SIFT_ADMIN_KEY="$ADMIN_KEY" "$SIFT_BIN" serve --data "$WORK/data" --listen 127.0.0.1:0 \
  >"$LOG" 2>&1 &
SERVER_PID=$!
BASE=""
for _ in $(seq 1 200); do
  BASE=$(sed -n 's/^Sift is listening on \(http:[^ ]*\).*/\1/p' "$LOG" | head -1)
  if [ -n "$BASE" ]; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "error: sift serve exited before listening" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$BASE" ]; then
  echo "error: sift serve did not say where it listens within 20 s" >&2
  exit 1
fi
echo "Server: $BASE (data in $WORK/data)"

# `call KEY METHOD PATH [BODY]` answers the JSON body; anything but a 2xx ends the run.
call() {
  curl -sS --fail-with-body -X "$2" "$BASE$3" -H "Authorization: Bearer $1" \
    -H 'Content-Type: application/json' ${4:+-d "$4"}
}
# `field NAME` reads one top-level field of the JSON on stdin.
field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# A workspace of its own for schemathesis, made the way an integrator makes one,
# with one resource of each kind for the operations that need an existing id
# (scripts/api-test-schemathesis.toml). The webhook is disabled: nothing leaves
# the machine.
created=$(call "$ADMIN_KEY" POST /v1/workspaces '{"name": "schemathesis"}')
WS_KEY=$(printf '%s' "$created" | field key)
SIFT_TEST_WORKSPACE=$(printf '%s' "$created" | field id)
SIFT_TEST_CONTACT=ana
call "$WS_KEY" PUT /v1/contacts/ana \
  '{"properties": {"email": "ana@example.com", "newsletter": true, "interests": ["shoes"]}}' >/dev/null
SIFT_TEST_SEGMENT=$(call "$WS_KEY" POST /v1/segments \
  '{"name": "Newsletter", "kind": "dynamic", "condition": "newsletter = true"}' | field id)
SIFT_TEST_STATIC_SEGMENT=$(call "$WS_KEY" POST /v1/segments \
  '{"name": "Picked", "kind": "static"}' | field id)
SIFT_TEST_RULE=$(call "$WS_KEY" POST /v1/scoring-rules \
  '{"event_type": "purchase", "where": "amount > 50", "points": 10}' | field id)
SIFT_TEST_WEBHOOK=$(call "$WS_KEY" POST /v1/webhooks \
  '{"url": "https://example.com/hooks/sift", "secret": "a-long-random-secret", "enabled": false}' | field id)
SIFT_TEST_WORKFLOW=$(call "$WS_KEY" POST /v1/workflows \
  "{\"name\": \"Pick subscribers\", \"status\": \"draft\",
    \"trigger\": {\"type\": \"segment_entered\", \"segment\": \"$SIFT_TEST_SEGMENT\"},
    \"actions\": [{\"type\": \"add_to_segment\", \"segment\": \"$SIFT_TEST_STATIC_SEGMENT\"}]}" | field id)
# Exported apart from the assignments, whose failure would otherwise go unnoticed.
export SIFT_TEST_WORKSPACE SIFT_TEST_CONTACT SIFT_TEST_SEGMENT SIFT_TEST_STATIC_SEGMENT
export SIFT_TEST_RULE SIFT_TEST_WEBHOOK SIFT_TEST_WORKFLOW

# --- The generated client and the README's walk-through. ----------------------------------
echo
echo "== Generating the TypeScript client from $BASE/v1/openapi.json"
rm -rf api-client/generated api-client/dist
# The generator's defaults: every object schema lists its keys or says it is
# open, and walkthrough.ts uses the types as generated, without casts.
(cd api-client && npx --no-install openapi-typescript "$BASE/v1/openapi.json" \
  -o generated/schema.d.ts)
echo "== Type-checking api-client/walkthrough.ts (tsc, strict)"
(cd api-client && npx --no-install tsc -p tsconfig.json)
echo "== Running the walk-through"
SIFT_URL="$BASE" SIFT_ADMIN_KEY="$ADMIN_KEY" node api-client/dist/walkthrough.js

# --- schemathesis. -------------------------------------------------------------------------
EXAMPLES="${SIFT_API_TEST_EXAMPLES:-20}"
# The checks are in scripts/api-test-schemathesis.toml; SIFT_API_TEST_CHECKS
# replaces them (e.g. `all`).
CHECKS=()
if [ -n "${SIFT_API_TEST_CHECKS:-}" ]; then CHECKS=(--checks "$SIFT_API_TEST_CHECKS"); fi
schemathesis() {
  local label=$1 config=$2
  shift 2
  echo
  echo "== schemathesis: $label"
  local report="$WORK/schemathesis-$label.txt"
  local status=0
  # Run from $WORK: schemathesis keeps a cache in ./.schemathesis.
  (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/$config" \
    run "$BASE/v1/openapi.json" \
    "${CHECKS[@]}" --max-examples "$EXAMPLES" --seed 1 --workers 2 \
    --request-timeout 10 --no-color "$@") >"$report" 2>&1 || status=$?
  if [ "$status" -ne 0 ]; then
    cat "$report"
    echo "error: schemathesis ($label) found failures (exit $status)" >&2
    return "$status"
  fi
  # The run's own warnings (operations it could not reach) and summary:
  # operations tested, phases, test cases, failures.
  if grep -q '= WARNINGS =' "$report"; then
    sed -n '/= WARNINGS =/,$p' "$report"
  else
    sed -n '/= SUMMARY =/,$p' "$report"
  fi
}
# The change stream never ends, so a generated request would wait for its
# timeout; the walk-through reads it instead.
# The stateful phase runs apart, without the fixed ids of the other phases
# (scripts/api-test-stateful.toml says why).
UNIT_PHASES=examples,coverage,fuzzing
schemathesis workspace api-test-schemathesis.toml -H "Authorization: Bearer $WS_KEY" \
  --exclude-operation-id changes_stream --exclude-tag admin --phases "$UNIT_PHASES"
schemathesis workspace-stateful api-test-stateful.toml -H "Authorization: Bearer $WS_KEY" \
  --exclude-operation-id changes_stream --exclude-tag admin --phases stateful
schemathesis admin api-test-schemathesis.toml -H "Authorization: Bearer $ADMIN_KEY" \
  --include-tag admin --phases "$UNIT_PHASES"
schemathesis admin-stateful api-test-stateful.toml -H "Authorization: Bearer $ADMIN_KEY" \
  --include-tag admin --phases stateful
