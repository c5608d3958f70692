#!/usr/bin/env bash
# A 3-node NATS JetStream cluster on loopback for Sift's cluster mode
# (docs/cluster.md). Usage:
#   scripts/cluster.sh up       start it (installs nats-server when missing)
#   scripts/cluster.sh status   each node: running or not, JetStream health
#   scripts/cluster.sh down     stop it (data folders are kept; remove them to start empty)
# Ports: clients BASE..BASE+2, routes BASE+2000.., monitoring BASE+4000..
# (BASE: SIFT_CLUSTER_BASE_PORT, default 14222). Data and logs: target/cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE=${SIFT_CLUSTER_BASE_PORT:-14222}
DIR="${CARGO_TARGET_DIR:-target}/cluster"
NODES=(n1 n2 n3)

client_port() { echo $((BASE + $1)); }
route_port() { echo $((BASE + 2000 + $1)); }
monitor_port() { echo $((BASE + 4000 + $1)); }

running() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

up() {
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
      echo "cluster up: --cluster nats://127.0.0.1:$(client_port 0),nats://127.0.0.1:$(client_port 1),nats://127.0.0.1:$(client_port 2)"
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
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
