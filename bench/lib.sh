# Helpers the benchmark scripts share; source it after setting WORK (a
# scratch folder) and BIN (the argus binary). Each function says what it
# sets or prints.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 not open" >&2; exit 1; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss_peak_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
rss_now_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo 0; }

# start_argus ARGS...: argus serve --demo on a free port with ARGS, its log
# in $WORK/log; sets PID and URL (or shows the log and exits).
start_argus() {
  "$BIN" serve --demo --port 0 --log-requests=false --web-dir "$WORK" "$@" 2>"$WORK/log" &
  PID=$!
  for _ in $(seq 200); do
    URL=$(grep -o 'url=http://[^ ]*' "$WORK/log" | head -1 | cut -d= -f2) || true
    [ -n "${URL:-}" ] && return 0
    sleep 0.1
  done
  cat "$WORK/log"; exit 1
}
stop_argus() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

# start_bus redis|nats: a private server with its data in $WORK/bus; sets
# BUSPID and BUS_URL.
start_bus() {
  rm -rf "$WORK/bus"; mkdir -p "$WORK/bus"
  local port; port=$(free_port)
  if [ "$1" = redis ]; then
    redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/bus" --appendonly yes \
      --appendfsync everysec --save '' >"$WORK/bus.log" 2>&1 &
  else
    echo 'max_payload: 4194304' >"$WORK/nats.conf"
    nats-server -js -a 127.0.0.1 -p "$port" -sd "$WORK/bus" -c "$WORK/nats.conf" >"$WORK/bus.log" 2>&1 &
  fi
  BUSPID=$!
  wait_port "$port"
  BUS_URL="$1://127.0.0.1:$port"
}
stop_bus() { kill "$BUSPID"; wait "$BUSPID" 2>/dev/null || true; BUSPID=""; }

# e2e_quantiles [BASE] < /metrics text: p50 p95 p99 in ms of
# argus_pipeline_e2e_seconds (ingest receipt → points committed),
# interpolated within its buckets; with BASE (an earlier /metrics saved in a
# file), of what was observed since.
e2e_quantiles() {
  python3 -c '
import sys, re
def load(f):
    d = {}
    for line in f:
        m = re.match(r"argus_pipeline_e2e_seconds_bucket\{le=\"([^\"]+)\"\} (\S+)", line)
        if m: d[float("inf") if m.group(1) == "+Inf" else float(m.group(1))] = float(m.group(2))
    return d
now = load(sys.stdin)
base = load(open(sys.argv[1])) if len(sys.argv) > 1 else {}
b = sorted((le, c - base.get(le, 0)) for le, c in now.items())
total = b[-1][1] if b else 0
def q(p):
    if not total: return float("nan")
    want, lo, below = p * total, 0.0, 0.0
    for le, c in b:
        if c >= want:
            if le == float("inf"): return lo * 1000
            return (lo + (le - lo) * (want - below) / max(c - below, 1)) * 1000
        lo, below = le, c
print(q(0.5), q(0.95), q(0.99))' "$@"
}
