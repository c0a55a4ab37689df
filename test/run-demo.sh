#!/usr/bin/env bash
# `make run`: install what is missing, build, make sample clips, start the reference
# server and three instances with the GStreamer engine, run the demo scenario, then keep
# the instances alive and idle until Ctrl-C.
#   --once   scripted one-shot: run the scenario, terminate everything, exit 0 on success
# Env: DEMO_PORT (default: a free port), DEMO_DIR (default: a new /tmp/ds-demo.XXXXXX),
#      DEMO_CONFIG (default: configs/gst/three-slots.txt, else the first configs/gst/*.txt,
#      else test/demo/gst-3slots.txt; the scenario needs 3 slots).
set -euo pipefail

ONCE=0
for arg in "$@"; do
  case "$arg" in
    --once) ONCE=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "run-demo.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PY=/usr/bin/python3
export PATH=/usr/local/go/bin:$PATH

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }

step "Debian packages"
bash .ci/deps.sh
step "build"
make --no-print-directory build

WORK=${DEMO_DIR:-$(mktemp -d /tmp/ds-demo.XXXXXX)}
mkdir -p "$WORK/clips" "$WORK/logs" "$WORK/inst"
PORT=${DEMO_PORT:-$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
SERVER_URL="http://127.0.0.1:$PORT"

CONFIG=${DEMO_CONFIG:-}
if [ -z "$CONFIG" ]; then
  CONFIG=$(ls "$REPO"/configs/gst/three-slots.txt "$REPO"/configs/gst/*.txt 2>/dev/null | head -n1 || true)
  [ -n "$CONFIG" ] || CONFIG="$REPO/test/demo/gst-3slots.txt"
fi

step "sample clips in $WORK/clips (2 s, 640x360, H.264/MP4)"
patterns=(smpte ball snow circular gamut bar)
names=(a b c d e f)
pids=()
for i in "${!names[@]}"; do
  gst-launch-1.0 -q videotestsrc num-buffers=60 pattern="${patterns[$i]}" ! \
    video/x-raw,format=I420,width=640,height=360,framerate=30/1 ! \
    x264enc speed-preset=ultrafast key-int-max=30 ! h264parse ! mp4mux ! \
    filesink location="$WORK/clips/${names[$i]}.mp4" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

SERVER_PID=
cleanup() {
  trap - EXIT INT TERM
  echo
  step "stopping instances and the server"
  $PY test/demo/scenario.py stop --server "$SERVER_URL" --work "$WORK" || true
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  echo "logs and outputs are under $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "reference server on $SERVER_URL (log: $WORK/server.log)"
REFSERVER_DATA_DIR="$WORK/server" DS_LOG_ROOT="$WORK/logs" DS_INSTANCE_ROOT="$WORK/inst" \
  $PY -m uvicorn refserver.app:app --app-dir test --host 127.0.0.1 --port "$PORT" \
  --ws websockets --ws-max-size 67108864 --log-level warning >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  $PY -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$SERVER_URL/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done

args=(--server "$SERVER_URL" --work "$WORK" --config "$CONFIG" --clips "$WORK/clips")
if [ "$ONCE" = 1 ]; then
  $PY test/demo/scenario.py run "${args[@]}" --once
else
  $PY test/demo/scenario.py run "${args[@]}"
  echo "   instances: $SERVER_URL/instances   recorded messages: $SERVER_URL/instances/demo-1/messages"
  wait "$SERVER_PID"
fi
