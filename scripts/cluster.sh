#!/usr/bin/env bash
# Sift's cluster mode on loopback (docs/cluster.md): a 3-node NATS JetStream
# cluster and 3 Sift nodes on it. Usage:
#   scripts/cluster.sh up       start it (installs nats-server when missing, builds sift)
#   scripts/cluster.sh status   each node: running or not, health
#   scripts/cluster.sh down     stop it (data folders are kept; remove target/cluster to start empty)
#   scripts/cluster.sh nats     only the NATS cluster
# NATS ports: clients BASE..BASE+2, routes BASE+2000.., monitoring BASE+4000..
# (BASE: SIFT_CLUSTER_BASE_PORT, default 14222). Sift nodes s1..s3 answer HTTP on
# SIFT_CLUSTER_HTTP_PORT..+2 (default 7871). The admin key is SIFT_ADMIN_KEY, else
# one made up and kept in target/cluster/admin.key. The binary: SIFT_BIN, else
# target/release/sift (built when missing). Data and logs: target/cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${SIFT_CLUSTER_BASE_PORT:-14222}
DIR="${SIFT_CLUSTER_DIR:-${CARGO_TARGET_DIR:-target}/cluster}"
NODES=(n1 n2 n3)
SIFTS=(s1 s2 s3)
HTTP_BASE=${SIFT_CLUSTER_HTTP_PORT:-7871}

client_port() { echo $((BASE + $1)); }
route_port() { echo $((BASE + 2000 + $1)); }
monitor_port() { echo $((BASE + 4000 + $1)); }

running() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

nats_urls() {
  echo "nats://127.0.0.1:$(client_port 0),nats://127.0.0.1:$(client_port 1),nats://127.0.0.1:$(client_port 2)"
}

up() {
  nats_up
  sift_up
}

sift_up() {
  local bin=${SIFT_BIN:-target/release/sift}
  if [ ! -x "$bin" ]; then
    echo "Building sift (cargo build --release)..."
    cargo build --release -p sift >&2
  fi
  local admin=${SIFT_ADMIN_KEY:-}
  if [ -z "$admin" ]; then
    if [ ! -f "$DIR/admin.key" ]; then
      (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/admin.key")
    fi
    admin=$(cat "$DIR/admin.key")
  fi
  for i in 0 1 2; do
    local name=${SIFTS[$i]}
    if running "$name"; then
      echo "$name: already running (pid $(cat "$DIR/$name.pid"))"
      continue
    fi
    SIFT_ADMIN_KEY="$admin" "$bin" serve --cluster "$(nats_urls)" --node "$name" \
      --listen "127.0.0.1:$((HTTP_BASE + i))" --data "$DIR/$name" >> "$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
    echo "$name: http://127.0.0.1:$((HTTP_BASE + i)), data $DIR/$name, log $DIR/$name.log"
  done
  for _ in $(seq 150); do
    if grep -qh "leads the cluster" "$DIR"/s?.log 2>/dev/null; then break; fi
    sleep 0.2
  done
  local key
  key=$(grep -h "^Workspace key" "$DIR"/s?.log 2>/dev/null | tail -1 | sed 's/.*: //')
  echo "admin key: $DIR/admin.key (or your SIFT_ADMIN_KEY)"
  if [ -n "$key" ]; then echo "workspace key (first start): $key"; fi
  grep -h "^Web UI" "$DIR"/s?.log 2>/dev/null | tail -1 || true
  echo "any node answers the whole API: curl -H 'Authorization: Bearer KEY' http://127.0.0.1:$HTTP_BASE/v1/segments"
}

nats_up() {
  local server
  server="$(scripts/nats-tools.sh)"
  mkdir -p "$DIR"
  local routes=""
  for i in 0 1 2; do
    routes="$routes nats://127.0.0.1:$(route_port "$i")"
  done
  for i in 0 1 2; do
    local name=${NODES[$i]}
    if running "$name"; then
      echo "$name: already running (pid $(cat "$DIR/$name.pid"))"
      continue
    fi
    mkdir -p "$DIR/$name/jetstream"
    cat > "$DIR/$name.conf" <<CONF
server_name: $name
listen: 127.0.0.1:$(client_port "$i")
http: 127.0.0.1:$(monitor_port "$i")
max_payload: 20MB
jetstream { store_dir: "$(cd "$DIR/$name" && pwd)/jetstream" }
cluster {
  name: sift
  listen: 127.0.0.1:$(route_port "$i")
  routes: [$(echo "$routes" | sed 's/^ //; s/ /, /g')]
}
CONF
    "$server" -c "$DIR/$name.conf" > "$DIR/$name.log" 2>&1 &
    echo $! > "$DIR/$name.pid"
    echo "$name: nats://127.0.0.1:$(client_port "$i") (routes $(route_port "$i"), monitoring http://127.0.0.1:$(monitor_port "$i")), data $DIR/$name, log $DIR/$name.log"
  done
  # JetStream is usable once the nodes have elected a meta leader.
  for _ in $(seq 100); do
    if healthy 0 && healthy 1 && healthy 2; then
      echo "NATS cluster up: --cluster $(nats_urls)"
      return 0
    fi
    sleep 0.2
  done
  echo "error: the NATS nodes did not report JetStream healthy within 20 s; see $DIR/*.log" >&2
  exit 1
}

healthy() {
  if command -v curl >/dev/null 2>&1; then
    curl -sf "http://127.0.0.1:$(monitor_port "$1")/healthz?js-enabled-only=true" >/dev/null
  else
    running "${NODES[$1]}"
  fi
}

status() {
  for i in 0 1 2; do
    local name=${SIFTS[$i]}
    if running "$name"; then
      local health="not answering"
      if command -v curl >/dev/null 2>&1 && curl -sf -m 2 "http://127.0.0.1:$((HTTP_BASE + i))/healthz" >/dev/null; then
        health="healthy"
      fi
      echo "$name: running (pid $(cat "$DIR/$name.pid")), http://127.0.0.1:$((HTTP_BASE + i)), $health"
    else
      echo "$name: stopped"
    fi
  done
  for i in 0 1 2; do
    local name=${NODES[$i]}
    if running "$name"; then
      local health="JetStream not ready"
      if healthy "$i"; then health="JetStream healthy"; fi
      echo "$name: running (pid $(cat "$DIR/$name.pid")), nats://127.0.0.1:$(client_port "$i"), $health"
    else
      echo "$name: stopped"
    fi
  done
}

down() {
  for name in "${SIFTS[@]}"; do
    if running "$name"; then
      local pid
      pid=$(cat "$DIR/$name.pid")
      kill "$pid"
      # A Sift node checkpoints and hands its lease back before it exits.
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      echo "$name: stopped"
    fi
    rm -f "$DIR/$name.pid"
  done
  for name in "${NODES[@]}"; do
    if running "$name"; then
      kill "$(cat "$DIR/$name.pid")"
      echo "$name: stopped"
    fi
    rm -f "$DIR/$name.pid"
  done
}

case "${1:-}" in
  up) up ;;
  nats) nats_up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down|nats" >&2; exit 2 ;;
esac
