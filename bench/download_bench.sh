#!/usr/bin/env bash
# Download benchmark (issue: the node serves). One run, one generated ~1 GB safetensors file:
#   single-stream and 8-stream download throughput from hubnode and from nginx (Debian package)
#   serving the exported file — the named baseline; the ratio is the figure. A hot file is served
#   from the node's raw cache (DATA/rawcache, filled after its first download); the chunk path
#   (first download, or --raw-cache-size 0) is measured too.
#   where the time goes: the same file served from a store with --codec raw (no decompression),
#   and `hubnode cat` to /dev/null (store reads + decompression, no HTTP).
#   cold pull-through: the file through B (empty, --upstream A; streamed while B fills) vs directly from A.
# Usage: bench/download_bench.sh HUBNODE [WORKDIR]     (SIZE=small for a quick run)
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: download_bench.sh HUBNODE [WORKDIR]}")
WORK=${2:-$(dirname "$0")/out-download}
SIZE=${SIZE:-bench}
command -v nginx > /dev/null || { echo "download_bench: needs nginx (apt-get install nginx-light)" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK" && WORK=$(realpath "$WORK") && cd "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f "$WORK/nginx.pid" ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null
  true
}
trap cleanup EXIT

now() { date +%s.%N; }
start_node() {  # start_node NAME DATA [flags]; sets URL_NAME
  local name=$1 data=$2; shift 2
  "$HUBNODE" --data "$data" serve --listen 127.0.0.1:0 "$@" > "$name.out" 2> /dev/null &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q serving "$name.out" && break; sleep 0.05; done
  eval "URL_$name=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$name.out")"
}
# seconds for N parallel GETs of URL (bodies discarded, sizes checked)
fetch() {
  local url=$1 n=$2 t0 t1 jobs=()
  t0=$(now)
  for _ in $(seq "$n"); do
    (got=$(curl -s -o /dev/null -w '%{size_download}' "$url"); [[ $got == "$BYTES" ]] || echo "short body from $url: $got" >&2) &
    jobs+=($!)
  done
  wait "${jobs[@]}"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
mbps() { awk -v n="$1" -v s="$BYTES" -v t="$2" 'BEGIN { printf "%.0f", n * s / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --shards 1 --seed 1 --out model
F=model-00001-of-00001.safetensors
BYTES=$(stat -c %s "model/$F")
"$HUBNODE" --data data -q import model --repo bench/m > /dev/null
"$HUBNODE" --data data-raw --codec raw -q import model --repo bench/m > /dev/null
mkdir -p www/bench/m/resolve/main && cp model/* www/bench/m/resolve/main/
cat > nginx.conf <<NGINX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path $WORK/tmp;
  proxy_temp_path $WORK/tmp;
  fastcgi_temp_path $WORK/tmp;
  uwsgi_temp_path $WORK/tmp;
  scgi_temp_path $WORK/tmp;
  server { listen 127.0.0.1:18481; root $WORK/www; }
}
NGINX
mkdir -p tmp
NGINX_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/listen 127.0.0.1:18481/listen 127.0.0.1:$NGINX_PORT/" nginx.conf
nginx -c "$WORK/nginx.conf" -g 'user root;'
"$HUBNODE" --data data-hot -q import model --repo bench/m > /dev/null
start_node A data --raw-cache-size 0
start_node R data-raw --raw-cache-size 0
start_node H data-hot
NGINX_URL="http://127.0.0.1:$NGINX_PORT/bench/m/resolve/main/$F"
NODE_URL="$URL_A/bench/m/resolve/main/$F"
RAW_URL="$URL_R/bench/m/resolve/main/$F"
HOT_URL="$URL_H/bench/m/resolve/main/$F"
cat "model/$F" > /dev/null
fetch "$NODE_URL" 1 > /dev/null; fetch "$NGINX_URL" 1 > /dev/null  # warm both
# H: the first download queues the file into the raw cache; wait until its copy is in place.
fetch "$HOT_URL" 1 > /dev/null
for _ in $(seq 600); do [[ -n "$(ls data-hot/rawcache 2>/dev/null | grep -v tmp)" ]] && break; sleep 0.1; done
fetch "$HOT_URL" 1 > /dev/null
h1=$(fetch "$HOT_URL" 1); h8=$(fetch "$HOT_URL" 8)

n1=$(fetch "$NODE_URL" 1); g1=$(fetch "$NGINX_URL" 1); r1=$(fetch "$RAW_URL" 1)
n8=$(fetch "$NODE_URL" 8); g8=$(fetch "$NGINX_URL" 8); r8=$(fetch "$RAW_URL" 8)
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true
t0=$(now); "$HUBNODE" --data data cat "bench/m:$F" > /dev/null; t1=$(now)
cat_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
start_node A data --raw-cache-size 0
NODE_URL="$URL_A/bench/m/resolve/main/$F"
fetch "$NODE_URL" 1 > /dev/null

# Cold pull-through: B has nothing and pulls the whole revision from A on the first request.
start_node B data-b --upstream "$URL_A" --raw-cache-size 0
direct=$(fetch "$NODE_URL" 1)
cold=$(fetch "$URL_B/bench/m/resolve/main/$F" 1)
curl -s -o /dev/null "$URL_B/api/models/bench/m"  # returns once B's fill has committed
warm=$(fetch "$URL_B/bench/m/resolve/main/$F" 1)

cat <<TABLE

hubnode download benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, one $(awk -v b="$BYTES" 'BEGIN{printf "%.0f", b/1e6}') MB bf16 safetensors file

| measure | hubnode | baseline | ratio (hubnode / baseline) | goal |
|---|---|---|---|---|
| single stream, hot file (raw cache, the default) | $(mbps 1 "$h1") MB/s | nginx $(mbps 1 "$g1") MB/s | $(ratio "$g1" "$h1") | >= 0.5 |
| 8 streams (total), hot file | $(mbps 8 "$h8") MB/s | nginx $(mbps 8 "$g8") MB/s | $(ratio "$g8" "$h8") | - |
| single stream, from chunks (first download, or --raw-cache-size 0) | $(mbps 1 "$n1") MB/s | nginx $(mbps 1 "$g1") MB/s | $(ratio "$g1" "$n1") | - |
| 8 streams (total), from chunks | $(mbps 8 "$n8") MB/s | nginx $(mbps 8 "$g8") MB/s | $(ratio "$g8" "$n8") | - |
| single stream, store without compression (--codec raw) | $(mbps 1 "$r1") MB/s | nginx $(mbps 1 "$g1") MB/s | $(ratio "$g1" "$r1") | - |
| 8 streams, store without compression | $(mbps 8 "$r8") MB/s | nginx $(mbps 8 "$g8") MB/s | $(ratio "$g8" "$r8") | - |
| store read + decompress, no HTTP (hubnode cat) | $(mbps 1 "$cat_s") MB/s | - | - | - |
| cold pull-through via B (streamed while it fills) | ${cold} s | direct from A ${direct} s | $(ratio "$direct" "$cold") | - |
| warm, via B (held) | ${warm} s | direct from A ${direct} s | $(ratio "$direct" "$warm") | - |
TABLE
