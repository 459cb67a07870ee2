#!/usr/bin/env bash
# Serve a lecture hall from one machine: N `streamlit run app.py` replicas on consecutive loopback
# ports, HAProxy in front of them (deploy/haproxy.cfg), one shared model store, until Ctrl-C.
#
#   deploy/start.sh [N]        # N replicas (default: REPLICAS, else the number of CPU cores)
#   SCOREVIZ_BIND=0.0.0.0:8080 deploy/start.sh 1     # a single-server hall, still behind HAProxy
#
# Serve a hall through this script even with one replica: HAProxy refuses Streamlit's metrics
# endpoint (/_stcore/metrics, however it is spelled) and sends the frame-ancestors policy;
# `streamlit run app.py --server.address 0.0.0.0` alone can do neither.
#
# Environment (all optional):
#   BASE_PORT=8601                       replica i listens on 127.0.0.1:BASE_PORT+i-1
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
PY=${PYTHON:-.venv/bin/python}
RUN_DIR=${RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/scoreviz-deploy.XXXXXX")}
mkdir -p "$RUN_DIR"
export SCOREVIZ_MODEL_STORE=${SCOREVIZ_MODEL_STORE:-$RUN_DIR/models}
export SCOREVIZ_BIND=${SCOREVIZ_BIND:-127.0.0.1:8080}
export SCOREVIZ_STATS_BIND=${SCOREVIZ_STATS_BIND:-127.0.0.1:8404}
export MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2}  # see README: freed session memory goes back
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
command -v haproxy >/dev/null || { echo "haproxy not found (apt-get install haproxy)" >&2; exit 1; }

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
  echo "    server s$i 127.0.0.1:$((BASE_PORT + i - 1)) cookie s$i check" >> "$CFG"
done
haproxy -c -q -f "$CFG"

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
    "$PY" -m streamlit run app.py --server.port "$port" --server.address 127.0.0.1 \
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
haproxy -db -f "$CFG" > "$RUN_DIR/haproxy.log" 2>&1 &
pids+=($!)
echo $! > "$RUN_DIR/haproxy.pid"

echo "scoreviz: $N replicas (ports $BASE_PORT-$((BASE_PORT + N - 1))) behind http://$SCOREVIZ_BIND"
echo "  stats: http://$SCOREVIZ_STATS_BIND/stats   logs: $RUN_DIR   models: $SCOREVIZ_MODEL_STORE"
# Run until HAProxy stops or a signal arrives (a dead replica is its supervisor's to restart, and
# HAProxy's to route around meanwhile).
wait "${pids[-1]}"
