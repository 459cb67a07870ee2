#!/usr/bin/env bash
# Serve a lecture hall from one machine: N `streamlit run app.py` replicas on consecutive loopback
# ports, HAProxy in front of them (deploy/haproxy.cfg), one shared model store, until Ctrl-C.
#
#   deploy/start.sh [N]        # N replicas (default: REPLICAS, else the number of CPU cores)
#   SCOREVIZ_BIND=0.0.0.0:8080 deploy/start.sh 1     # a single-server hall, still behind HAProxy
#
# Several machines (docs/lecture-hall.md, "Past one machine"): each worker runs its replicas on
# its LAN address without a balancer, and one front machine runs HAProxy for all of them:
#   worker$ BALANCER=0 REPLICA_ADDRESS=10.0.0.11 SCOREVIZ_MODEL_STORE=/mnt/models deploy/start.sh 8
#   front$  REMOTE_SERVERS="10.0.0.11:8601-8608 10.0.0.12:8601-8608" SCOREVIZ_BIND=0.0.0.0:8080 \
#           SCOREVIZ_MODEL_STORE=/mnt/models deploy/start.sh 0
#
# Serve a hall through this script even with one replica: HAProxy refuses Streamlit's metrics
# endpoint (/_stcore/metrics, however it is spelled) and sends the frame-ancestors policy;
# `streamlit run app.py --server.address 0.0.0.0` alone can do neither.
#
# Environment (all optional):
#   BASE_PORT=8601                       replica i listens on REPLICA_ADDRESS:BASE_PORT+i-1
#   REPLICA_ADDRESS=127.0.0.1            a worker of a several-machine hall: its LAN address (its
#                                        replica ports then must be reachable by the front
#                                        machine only: they serve /_stcore/metrics unfiltered)
#   BALANCER=1                           0: run (and supervise) the replicas only, no HAProxy
#   REMOTE_SERVERS=""                    more servers for HAProxy, "host:port" or
#                                        "host:first-last" each, space-separated (other machines)
#   RESTART_MIN_DELAY=1 RESTART_MAX_DELAY=30 RESTART_RESET=60   a dead replica's restart backoff
#   SCOREVIZ_BIND=127.0.0.1:8080         where students connect (0.0.0.0:8080 for a hall's LAN)
#   SCOREVIZ_STATS_BIND=127.0.0.1:8404   HAProxy stats: /stats (HTML), /stats;csv (keep it on
#                                        loopback: it names every replica and its load)
#   RUN_DIR=<new temp dir>               logs, pid files, the generated haproxy config
#   SCOREVIZ_MODEL_STORE=$RUN_DIR/models models shared by the replicas (scoreviz/model_store.py)
#   SCOREVIZ_STORE_SECRET                the store's MAC key, the same for every replica of the
#                                        hall (at least 16 characters, e.g. `openssl rand -hex
#                                        32`); unset, the store creates $SCOREVIZ_MODEL_STORE/
#                                        .secret (0600) on first use and every replica reads it
#   PYTHON=.venv/bin/python
#
# Each replica is one Python process: it runs one session's script at a time per core it can
# get, so one replica per core is the sensible maximum (each trains on one thread anyway, see
# scoreviz/threads.py). Every child is stopped when this script exits, is interrupted or
# terminated; the pids are in $RUN_DIR/*.pid.
set -euo pipefail
cd "$(dirname "$0")/.."
# Every replica runs as this user with this umask: model files are 0644 (the store sets that),
# lock files 0644, directories 0755 (scoreviz/model_store.py, "Permissions").
umask 022

N=${1:-${REPLICAS:-$(nproc)}}
BASE_PORT=${BASE_PORT:-8601}
REPLICA_ADDRESS=${REPLICA_ADDRESS:-127.0.0.1}
BALANCER=${BALANCER:-1}
REMOTE_SERVERS=${REMOTE_SERVERS:-}
PY=${PYTHON:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/scoreviz-deploy.XXXXXX")}
mkdir -p "$RUN_DIR"
export SCOREVIZ_MODEL_STORE=${SCOREVIZ_MODEL_STORE:-$RUN_DIR/models}
export SCOREVIZ_BIND=${SCOREVIZ_BIND:-127.0.0.1:8080}
export SCOREVIZ_STATS_BIND=${SCOREVIZ_STATS_BIND:-127.0.0.1:8404}
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}  # see README: freed session memory goes back
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
if [[ $BALANCER == 1 ]]; then
  command -v haproxy >/dev/null || { echo "haproxy not found (apt-get install haproxy)" >&2; exit 1; }
fi

pids=()
stop() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The config: deploy/haproxy.cfg with one server line per replica.
CFG=$RUN_DIR/haproxy.cfg
grep -v '^[[:space:]]*server ' deploy/haproxy.cfg > "$CFG"
for i in $(seq 1 "$N"); do
  echo "    server s$i $REPLICA_ADDRESS:$((BASE_PORT + i - 1)) cookie s$i check" >> "$CFG"
done
# Other machines' replicas: one server line (and cookie value) each, named by host and port.
for spec in $REMOTE_SERVERS; do
  host=${spec%:*} ports=${spec##*:}
  first=${ports%-*} last=${ports#*-}
  for port in $(seq "$first" "$last"); do
    name="r${host//[^0-9A-Za-z]/_}_$port"
    echo "    server $name $host:$port cookie $name check" >> "$CFG"
  done
done
if [[ $BALANCER == 1 ]]; then
  grep -q '^ *server ' "$CFG" || { echo "no replicas: give N > 0 or REMOTE_SERVERS" >&2; exit 1; }
  haproxy -c -q -f "$CFG"
fi

# One supervisor per replica: it runs the replica, and when the replica dies (a crash, the OOM
# killer, a kill) starts it again after a backoff, so the hall heals by itself: HAProxy's health
# check sees the new process answer and puts it back in the pool (`rise` checks later). The
# backoff doubles from RESTART_MIN_DELAY up to RESTART_MAX_DELAY seconds while the replica keeps
# dying young (alive under RESTART_RESET seconds), so a replica that cannot start (a broken
# checkout, a port taken) does not spin; a replica that ran a while starts again at once.
# The replica's pid is in $RUN_DIR/replica-i.pid (rewritten at each start), the supervisor's in
# replica-i.supervisor.pid, each restart counted in replica-i.restarts and logged.
RESTART_MIN_DELAY=${RESTART_MIN_DELAY:-1}
RESTART_MAX_DELAY=${RESTART_MAX_DELAY:-30}
RESTART_RESET=${RESTART_RESET:-60}
supervise() {
  local i=$1 port=$2 child="" delay=$RESTART_MIN_DELAY started rc restarts=0
  trap '[[ -n $child ]] && kill "$child" 2>/dev/null; wait 2>/dev/null; exit 0' TERM INT
  while true; do
    started=$SECONDS
    "$PY" -m streamlit run app.py --server.port "$port" --server.address "$REPLICA_ADDRESS" \
      --server.headless true >> "$RUN_DIR/replica-$i.log" 2>&1 &
    child=$!
    echo "$child" > "$RUN_DIR/replica-$i.pid"
    rc=0
    wait "$child" || rc=$?
    if ((SECONDS - started >= RESTART_RESET)); then delay=$RESTART_MIN_DELAY; fi
    restarts=$((restarts + 1))
    echo "$restarts" > "$RUN_DIR/replica-$i.restarts"
    echo "$(date -u +%FT%TZ) replica $i (pid $child) exited with $rc; restart $restarts in" \
      "${delay}s" | tee -a "$RUN_DIR/replica-$i.log" >&2
    sleep "$delay" & wait $! || true  # a plain sleep would hold the TERM trap until it ends
    delay=$((delay * 2 > RESTART_MAX_DELAY ? RESTART_MAX_DELAY : delay * 2))
  done
}
for i in $(seq 1 "$N"); do
  supervise "$i" $((BASE_PORT + i - 1)) &
  pids+=($!)
  echo $! > "$RUN_DIR/replica-$i.supervisor.pid"
done
if [[ $BALANCER != 1 ]]; then
  echo "scoreviz: $N replicas on $REPLICA_ADDRESS:$BASE_PORT-$((BASE_PORT + N - 1)), no balancer"
  echo "  logs: $RUN_DIR   models: $SCOREVIZ_MODEL_STORE"
  wait  # the supervisors run until a signal arrives
  exit 0
fi
haproxy -db -f "$CFG" > "$RUN_DIR/haproxy.log" 2>&1 &
pids+=($!)
echo $! > "$RUN_DIR/haproxy.pid"

echo "scoreviz: $N local replicas (ports $BASE_PORT-$((BASE_PORT + N - 1)))" \
  "${REMOTE_SERVERS:+and $REMOTE_SERVERS }behind http://$SCOREVIZ_BIND"
echo "  stats: http://$SCOREVIZ_STATS_BIND/stats   logs: $RUN_DIR   models: $SCOREVIZ_MODEL_STORE"
# Run until HAProxy stops or a signal arrives (a dead replica is its supervisor's to restart, and
# HAProxy's to route around meanwhile).
wait "${pids[-1]}"
