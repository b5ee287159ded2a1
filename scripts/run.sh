#!/usr/bin/env bash
# `make run`: start soclite on the embedded store, a local agent, and replay the sample province.
set -euo pipefail
DATA_DIR="${1:-var}"
HTTP_PORT="${2:-8000}"
BIN=.venv/bin
URL="http://127.0.0.1:${HTTP_PORT}"
mkdir -p "$DATA_DIR"
chmod 700 "$DATA_DIR"

# A secret key of this installation, made once and kept 0600 in the data dir (never in the repository).
if [ ! -s "$DATA_DIR/secret.key" ]; then
  (umask 077; "$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$DATA_DIR/secret.key")
fi
export SOCLITE_AUTH__SECRET_KEY="$(cat "$DATA_DIR/secret.key")"
# Plain HTTP on loopback for a first look: cookies without the Secure flag. Put TLS in front for real use.
export SOCLITE_AUTH__SECURE_COOKIES="${SOCLITE_AUTH__SECURE_COOKIES:-false}"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

echo "soclite: starting the server on $URL (data in $DATA_DIR)"
"$BIN/soclite" server --data-dir "$DATA_DIR" --http-port "$HTTP_PORT" &
pids+=($!)

for _ in $(seq 1 120); do
  if curl -fsS "$URL/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then echo "soclite: the server exited" >&2; exit 1; fi
  sleep 0.5
done
curl -fsS "$URL/health" >/dev/null

# A local agent enrolled into the data centre unit, tailing this machine's own logs where readable.
if [ ! -s "$DATA_DIR/agent/agent.key" ] && [ ! -s "$DATA_DIR/agent/state.json" ]; then
  ENROLL=$("$BIN/soclite" agent enroll-token create --data-dir "$DATA_DIR" --unit ttdl 2>/dev/null || true)
else
  ENROLL=""
fi
mkdir -p "$DATA_DIR/agent"
if [ ! -f "$DATA_DIR/agent/agent.yml" ]; then
  {
    echo "host_type: server"
    echo "files:"
    for f in /var/log/auth.log /var/log/syslog /var/log/clamav/clamav.log; do
      [ -r "$f" ] && echo "  - path: $f"
    done
    echo "  - path: $PWD/$DATA_DIR/agent/demo.log"
  } > "$DATA_DIR/agent/agent.yml"
  touch "$DATA_DIR/agent/demo.log"
fi
"$BIN/soclite" agent --server "$URL" --enroll-token "${ENROLL:-already-enrolled}" --state-dir "$DATA_DIR/agent" \
  --config "$DATA_DIR/agent/agent.yml" &
pids+=($!)

echo "soclite: replaying the sample province"
"$BIN/soclite" demo replay --data-dir "$DATA_DIR" --server "$URL"

echo "soclite: ready at $URL  (Ctrl-C stops it)"
wait "${pids[0]}"
