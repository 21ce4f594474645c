#!/usr/bin/env bash
# A local PostgreSQL and MLflow tracking server, for trying seedhp's scale-out on one machine.
#   scripts/services.sh start | stop | status | urls
# Settings (environment): SEEDHP_SERVICES_DIR (default .services/), SEEDHP_PG_PORT (5433),
# SEEDHP_MLFLOW_PORT (5055), SEEDHP_PG_PASSWORD (seedhp). Databases: optuna, mlflow; artifacts
# under $SEEDHP_SERVICES_DIR/artifacts. Everything listens on 127.0.0.1 only.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SEEDHP_SERVICES_DIR:-$ROOT/.services}
PG_PORT=${SEEDHP_PG_PORT:-5433}
MLFLOW_PORT=${SEEDHP_MLFLOW_PORT:-5055}
PASSWORD=${SEEDHP_PG_PASSWORD:-seedhp}
MLFLOW=${SEEDHP_MLFLOW:-$ROOT/.venv/bin/mlflow}
BASE="postgresql://seedhp:$PASSWORD@127.0.0.1:$PG_PORT"

pg_bin() {
  local found
  found=$(command -v pg_ctl || ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || true)
  [ -n "$found" ] || { echo "services: PostgreSQL not found: install it (Debian: apt-get install postgresql)" >&2; exit 1; }
  dirname "$(readlink -f "$found")"
}

# PostgreSQL refuses to run as root: as root, run it as the postgres user
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

start() {
  local bin; bin=$(pg_bin)
  mkdir -p "$DIR/pg" "$DIR/artifacts"
  [ "$(id -u)" = 0 ] && chown postgres "$DIR" "$DIR/pg"
  if [ ! -f "$DIR/pg/PG_VERSION" ]; then
    printf '%s\n' "$PASSWORD" > "$DIR/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR/pwfile"
    as_pg "$bin/initdb" -D "$DIR/pg" -U seedhp --pwfile="$DIR/pwfile" --auth=scram-sha-256 >"$DIR/initdb.log"
    rm -f "$DIR/pwfile"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pg/server.log" -w \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200" start >/dev/null
  fi
  for db in optuna mlflow; do
    psql "$BASE/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || psql "$BASE/postgres" -qc "CREATE DATABASE $db" >/dev/null
  done
  if ! curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null 2>&1; then
    nohup "$MLFLOW" server --backend-store-uri "$BASE/mlflow" \
      --artifacts-destination "$DIR/artifacts" --host 127.0.0.1 --port "$MLFLOW_PORT" \
      --workers 2 >"$DIR/mlflow.log" 2>&1 &
    echo $! >"$DIR/mlflow.pid"
    for _ in $(seq 120); do
      curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null 2>&1 && break
      sleep 0.5
    done
    curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" >/dev/null \
      || { tail -20 "$DIR/mlflow.log"; echo "services: the MLflow server did not start ($DIR/mlflow.log)" >&2; exit 1; }
  fi
  urls
}

stop() {
  if [ -f "$DIR/mlflow.pid" ]; then
    pkill -TERM -P "$(cat "$DIR/mlflow.pid")" 2>/dev/null || true
    kill "$(cat "$DIR/mlflow.pid")" 2>/dev/null || true
    rm -f "$DIR/mlflow.pid"
  fi
  if [ -f "$DIR/pg/PG_VERSION" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg" -m fast stop >/dev/null 2>&1 || true
  fi
}

urls() {
  echo "optuna storage:  hydra.sweeper.storage=postgresql://seedhp:$PASSWORD@127.0.0.1:$PG_PORT/optuna"
  echo "mlflow tracking: tracking.uri=http://127.0.0.1:$MLFLOW_PORT   (UI: the same address)"
}

status() {
  as_pg "$(pg_bin)/pg_ctl" -D "$DIR/pg" status || true
  curl -fs "http://127.0.0.1:$MLFLOW_PORT/health" && echo " (mlflow)" || echo "mlflow: not running"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  urls) urls ;;
  *) echo "usage: $0 start|stop|status|urls" >&2; exit 2 ;;
esac
