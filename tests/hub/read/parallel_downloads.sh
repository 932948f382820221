#!/usr/bin/env bash
# N parallel downloads of the largest shard of a generated model from one hubnode: every body must
# be byte-exact; the server's peak RSS (VmHWM) is reported and must stay under a bound, since
# bodies are streamed chunk by chunk.
# Usage: parallel_downloads.sh HUBNODE [N] [SIZE_PRESET] [RSS_LIMIT_MB]
set -uo pipefail
HUBNODE=$(realpath "$1")
N=${2:-64}
SIZE=${3:-small}
LIMIT_MB=${4:-300}
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --shards 1 --out "$WORK/m" > /dev/null
"$HUBNODE" --data "$WORK/data" -q import "$WORK/m" --repo p/m > /dev/null
F=$(cd "$WORK/m" && ls -S *.safetensors | head -1)
SHA=$(sha256sum "$WORK/m/$F" | cut -d' ' -f1)
BYTES=$(stat -c %s "$WORK/m/$F")
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 > "$WORK/out" 2> /dev/null &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)

start=$(date +%s.%N)
for i in $(seq "$N"); do
  (curl -s --fail "$U/p/m/resolve/main/$F" | sha256sum | cut -d' ' -f1 > "$WORK/sum.$i") &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
end=$(date +%s.%N)
peak_kb=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)

ok=0 bad=0
for i in $(seq "$N"); do
  if [[ "$(cat "$WORK/sum.$i")" == "$SHA" ]]; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
mbps=$(awk -v n="$N" -v s="$BYTES" -v t="$secs" 'BEGIN { printf "%.0f", n * s / t / 1e6 }')
echo "parallel downloads: $N x $((BYTES / 1000000)) MB in $secs s ($mbps MB/s total); server RSS idle $((rss_before / 1024)) MB, peak $((peak_kb / 1024)) MB"
rss_ok=0
[[ $((peak_kb / 1024)) -lt $LIMIT_MB ]] && rss_ok=1
echo "$((ok + rss_ok)) passed, $((bad + 1 - rss_ok)) failed"
[[ $bad -eq 0 && $rss_ok -eq 1 ]]
