#!/usr/bin/env bash
# Chunk tier benchmark (issue 19) against Ceph's radosgw on 127.0.0.1 (tests/tools/ceph, bluestore
# on a sparse file). One generated ~290 MB safetensors file (llama, hidden 1024, 16 layers):
#   import throughput: into a local store vs into the bucket (--chunks);
#   download throughput, 1 and 8 parallel streams: a local store vs the bucket with an empty local
#   cache (--chunk-cache 0: every chunk a range GET) — raw copies off (--raw-cache-size 0) on both;
#   16 parallel downloads from one reader node vs from two (8 each), both over the bucket.
# Usage: bench/tier_bench.sh HUBNODE [WORKDIR]
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: tier_bench.sh HUBNODE [WORKDIR]}")
CEPH=$(cd "$(dirname "$0")/../tests/tools/ceph" && pwd)
WORK=${2:-$(dirname "$0")/out-tier}
rm -rf "$WORK" && mkdir -p "$WORK" && WORK=$(realpath "$WORK") && cd "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null
  "$CEPH/ceph-down.sh" "$WORK/ceph" > /dev/null 2>&1 || true
}
trap cleanup EXIT
STORE=bluestore "$CEPH/ceph-up.sh" "$WORK/ceph" $((20000 + RANDOM % 20000)) > ceph.out
set -a; source "$WORK/ceph/s3.env"; set +a
export AWS_ENDPOINT_URL=$S3_ENDPOINT
T="s3://bench/m"

now() { date +%s.%N; }
start_node() {  # start_node NAME DATA [flags]; sets URL_NAME
  local name=$1 data=$2; shift 2
  "$HUBNODE" --data "$data" "$@" serve --listen 127.0.0.1:0 --no-inference --raw-cache-size 0 > "$name.out" 2> "$name.err" &
  PIDS+=($!)
  for _ in $(seq 200); do grep -q serving "$name.out" && break; sleep 0.05; done
  eval "URL_$name=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$name.out")"
}
fetch() {  # fetch N URL [URL2]: seconds for N parallel GETs (alternating URLs), sizes checked
  local n=$1 t0 t1 jobs=() urls=("${@:2}") i
  t0=$(now)
  for ((i = 0; i < n; i++)); do
    local url=${urls[$((i % ${#urls[@]}))]}
    (got=$(curl -s -o /dev/null -w '%{size_download}' "$url"); [[ $got == "$BYTES" ]] || echo "short body from $url: $got" >&2) &
    jobs+=($!)
  done
  wait "${jobs[@]}"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
mbps() { awk -v n="$1" -v s="$BYTES" -v t="$2" 'BEGIN { printf "%.0f", n * s / t / 1e6 }'; }

"$HUBNODE" -q testmodel --family llama --size medium --hidden 1024 --layers 16 --shards 1 --out model > /dev/null
F=model-00001-of-00001.safetensors
BYTES=$(stat -c %s "model/$F")
t0=$(now); "$HUBNODE" --data local -q import model --repo bench/m > /dev/null; t1=$(now)
IMPORT_LOCAL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
"$HUBNODE" --data tiered --chunks "$T" -q tier init > /dev/null
t0=$(now); "$HUBNODE" --data tiered --chunks "$T" -q --chunk-cache 0 import model --repo bench/m > /dev/null; t1=$(now)
IMPORT_TIER=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
"$HUBNODE" --data tiered --chunks "$T" stats --json > tiered.stats
"$HUBNODE" --data tiered node-key > writer.pub
echo "model file: $BYTES bytes; load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| import | seconds | MB/s |"
echo "|---|---|---|"
echo "| local store | $IMPORT_LOCAL | $(mbps 1 "$IMPORT_LOCAL") |"
echo "| to the bucket (packs of 32 MiB, multipart) | $IMPORT_TIER | $(mbps 1 "$IMPORT_TIER") |"

start_node local local
start_node tier tiered --chunks "$T" --chunk-cache 0
U1="$URL_local/bench/m/resolve/main/$F"; U2="$URL_tier/bench/m/resolve/main/$F"
fetch 1 "$U1" > /dev/null; fetch 1 "$U2" > /dev/null  # warm the page cache and the connections
best() { printf '%s\n' "$@" | sort -g | head -1; }
echo
echo "| download (best of 3, alternating) | local store MB/s | bucket, empty cache MB/s |"
echo "|---|---|---|"
for n in 1 8; do
  la=() lb=()
  for _ in 1 2 3; do la+=("$(fetch $n "$U1")"); lb+=("$(fetch $n "$U2")"); done
  echo "| $n stream(s) | $(mbps $n "$(best "${la[@]}")") | $(mbps $n "$(best "${lb[@]}")") |"
done

# Readers: pull the writer's metadata, serve from the bucket with an empty cache.
for r in r1 r2; do
  "$HUBNODE" --data $r --chunks "$T" --chunks-reader -q trust add-node-key --key writer.pub --name writer > /dev/null
  "$HUBNODE" --data $r --chunks "$T" --chunks-reader -q pull bench/m --from "$URL_tier" --experts all > /dev/null
  start_node $r $r --chunks "$T" --chunks-reader --chunk-cache 0
done
R1="$URL_r1/bench/m/resolve/main/$F"; R2="$URL_r2/bench/m/resolve/main/$F"
l1=() l2=()
for _ in 1 2; do l1+=("$(fetch 16 "$R1")"); l2+=("$(fetch 16 "$R1" "$R2")"); done
one=$(best "${l1[@]}"); two=$(best "${l2[@]}")
echo
echo "| 16 parallel downloads over the bucket (best of 2) | seconds | MB/s |"
echo "|---|---|---|"
echo "| one reader node | $one | $(mbps 16 "$one") |"
echo "| two reader nodes (8 each) | $two | $(mbps 16 "$two") |"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); cpus: $(nproc)"
