#!/usr/bin/env bash
# Two reader nodes vs one (issue 19), each node with its own shaped network interface.
#
# bench/tier_bench.sh runs every node on 127.0.0.1 of one machine, so its "two readers vs one"
# measures the machine's CPU. Here each reader node lives in its own network namespace (hb-r1,
# hb-r2) joined to a bridge (hb-br0, 10.77.0.1/24) by a veth whose two ends are shaped with tbf at
# RATE: egress inside the namespace is the node's upload to its clients, egress on the bridge side
# its download from the bucket and the writer. That models one NIC per machine. radosgw
# (tests/tools/ceph, bluestore) and the writer node sit in the root namespace on the bridge
# address; the clients (curl) run in the root namespace, unshaped. Nothing leaves this machine:
# every address is on the bridge or loopback.
#
# One generated ~305 MB safetensors file (llama, hidden 1024, 16 layers) is imported by the writer
# into the bucket; each reader trusts the writer's key, pulls the repo with --experts all and
# serves with --raw-cache-size 0, --chunk-cache 1GiB and --writer. Measured: STREAMS (16)
# parallel downloads of the file from one reader vs from two (8 each), ROUNDS (3) rounds with the
# order alternated, warm (every chunk in the readers' caches) and cold (the reader restarted after
# opening its store once with --chunk-cache 0, which empties the cache and keeps the pack indexes
# and metadata). Sizes are checked on every download, SHA-256 on the downloads that fill each
# reader's cache from the bucket and on one from each warm cache. Per run it also counts the bytes
# into the readers' NICs (bucket + writer + TCP ACKs; the bridge-side veths' transmit counters) and
# the cores used by the readers, radosgw and the OSD (their CPU time over the run's wall time).
#
# RATE_MBIT 0 = no tc: the same namespaces and veths unshaped, so every node shares the two cores
# and the figure is the machine's CPU ceiling (the baseline).
# Needs root (ip netns, veth, bridge, tc). Env: ROUNDS (3), STREAMS (16), LAYERS (16).
# Usage: bench/tier_readers_bench.sh HUBNODE [WORKDIR] [RATE_MBIT]
#   WORKDIR default $TMPDIR/hubnode-tier-readers (emptied first); RATE_MBIT default 400, i.e.
#   ~48 MB/s of payload per direction per reader: two readers stay far below the ~700 MB/s the two
#   cores serve unshaped (bench/RESULTS.md), so the shaped NIC, not the CPU, is the limit.
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: tier_readers_bench.sh HUBNODE [WORKDIR] [RATE_MBIT]}")
CEPH=$(cd "$(dirname "$0")/../tests/tools/ceph" && pwd)
WORK=${2:-${TMPDIR:-/tmp}/hubnode-tier-readers}
RATE=${3:-400}
ROUNDS=${ROUNDS:-3}; STREAMS=${STREAMS:-16}; LAYERS=${LAYERS:-16}
NET=10.77.0 BR=hb-br0 NS=(hb-r1 hb-r2)
[[ $RATE =~ ^[0-9]+$ ]] || { echo "RATE_MBIT must be a whole number (0 = unshaped)" >&2; exit 2; }
for ns in "${NS[@]}"; do
  ! ip netns list | grep -qw "$ns" || { echo "network namespace $ns exists: another run?" >&2; exit 1; }
done
! ip link show "$BR" > /dev/null 2>&1 || { echo "link $BR exists: another run?" >&2; exit 1; }
rm -rf "$WORK" && mkdir -p "$WORK" && WORK=$(realpath "$WORK") && cd "$WORK"

PIDS=()  # the writer; readers in READER_PID (restarted); radosgw is stopped by ceph-down.sh
declare -A READER_PID
cleanup() {
  set +e
  for p in "${PIDS[@]}" "${READER_PID[@]}"; do kill "$p" 2> /dev/null; done
  for p in "${PIDS[@]}" "${READER_PID[@]}"; do wait "$p" 2> /dev/null; done
  "$CEPH/ceph-down.sh" "$WORK/ceph" > /dev/null 2>&1
  for k in 1 2; do ip link del "hb-v$k" 2> /dev/null; ip netns del "${NS[k - 1]}" 2> /dev/null; done
  ip link del "$BR" 2> /dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the network: a bridge in the root namespace, one namespace + veth (+ tbf) per reader
ip link add "$BR" type bridge
ip addr add "$NET.1/24" dev "$BR"
ip link set "$BR" up
for k in 1 2; do
  ns=${NS[k - 1]}
  ip netns add "$ns"
  ip link add "hb-v$k" type veth peer name "hb-n$k"
  ip link set "hb-n$k" netns "$ns"
  ip link set "hb-v$k" master "$BR" up
  ip netns exec "$ns" ip addr add "$NET.1$k/24" dev "hb-n$k"
  ip netns exec "$ns" ip link set "hb-n$k" up
  ip netns exec "$ns" ip link set lo up
  if ((RATE > 0)); then
    # bridge side: what the node receives (bucket, writer); namespace side: what it sends (clients)
    tc qdisc add dev "hb-v$k" root tbf rate "${RATE}mbit" burst 256kb latency 50ms
    ip netns exec "$ns" tc qdisc add dev "hb-n$k" root tbf rate "${RATE}mbit" burst 256kb latency 50ms
  fi
done

# ---- radosgw: ceph-up.sh binds it to 127.0.0.1; restart it (same command line) bound to the
# bridge address as well, so the namespaces reach it, and record the new PID for ceph-down.sh.
PORT=$((20000 + RANDOM % 20000))
STORE=bluestore "$CEPH/ceph-up.sh" "$WORK/ceph" "$PORT" > ceph.out
C=$WORK/ceph/ceph.conf
old=$(awk '$1 == "rgw.a" { print $2 }' "$WORK/ceph/pids")
sed -i "s|^rgw frontends = beast endpoint=127.0.0.1:$PORT\$|& endpoint=$NET.1:$PORT|" "$C"
grep -q "endpoint=$NET.1:$PORT" "$C" || { echo "ceph.conf: no 'rgw frontends' line to extend" >&2; exit 1; }
kill -TERM "$old"
for _ in $(seq 100); do [[ -e /proc/$old ]] || break; sleep 0.1; done
radosgw -n client.rgw.a -c "$C" -f < /dev/null >> "$WORK/ceph/log/rgw.a.out" 2>&1 &
sed -i "s/^rgw.a .*/rgw.a $!/" "$WORK/ceph/pids"
for _ in $(seq 200); do curl -sf -m 2 -o /dev/null "http://$NET.1:$PORT/" && break; sleep 0.1; done
for ns in "${NS[@]}"; do
  ip netns exec "$ns" curl -sf -m 5 -o /dev/null "http://$NET.1:$PORT/" || { echo "radosgw not answering on $NET.1:$PORT in $ns" >&2; exit 1; }
done
set -a; source "$WORK/ceph/s3.env"; set +a
export AWS_ENDPOINT_URL=http://$NET.1:$PORT
T="s3://bench/m"

now() { date +%s.%N; }
jnum() { sed -n "s/^ *\"$1\": *\([0-9][0-9]*\).*/\1/p" | head -1; }  # jnum KEY < stats --json
wait_serving() {  # wait_serving NAME: the URL the node printed
  for _ in $(seq 200); do grep -q serving "$1.out" && break; sleep 0.05; done
  sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$1.out"
}

# ---- the writer: import into the bucket, serve its metadata on the bridge address
"$HUBNODE" -q testmodel --family llama --size medium --hidden 1024 --layers "$LAYERS" --shards 1 --out model > /dev/null
F=model-00001-of-00001.safetensors
BYTES=$(stat -c %s "model/$F")
SHA=$(sha256sum "model/$F" | cut -d' ' -f1)
"$HUBNODE" --data writer --chunks "$T" -q tier init > /dev/null
"$HUBNODE" --data writer --chunks "$T" -q --chunk-cache 0 import model --repo bench/m > /dev/null
"$HUBNODE" --data writer node-key > writer.pub
"$HUBNODE" --data writer --chunks "$T" stats --json > writer.stats
STORED=$(jnum remote_bytes < writer.stats)  # the file's chunk records in the bucket (compressed)
"$HUBNODE" --data writer --chunks "$T" --chunk-cache 0 serve --listen "$NET.1:0" --no-inference \
  > writer.out 2> writer.err &
PIDS+=($!)
WRITER=$(wait_serving writer)
[[ -n $WRITER ]] || { echo "writer did not start" >&2; cat writer.err >&2; exit 1; }

# ---- the readers
reader() {  # reader K ARGS...: hubnode as reader K, in its namespace
  local k=$1; shift
  nsenter "--net=/run/netns/${NS[k - 1]}" "$HUBNODE" --data "$WORK/r$k" --chunks "$T" --chunks-reader "$@"
}
start_reader() {
  local k=$1
  # nsenter, not the reader function: a backgrounded function is a subshell, and $! must be hubnode
  nsenter "--net=/run/netns/${NS[k - 1]}" "$HUBNODE" --data "$WORK/r$k" --chunks "$T" --chunks-reader \
    --chunk-cache 1GiB serve --listen "$NET.1$k:8080" --no-inference --raw-cache-size 0 \
    --writer "$WRITER" > "r$k.out" 2>> "r$k.err" &
  READER_PID[$k]=$!
  [[ -n $(wait_serving "r$k") ]] || { echo "reader $k did not start" >&2; cat "r$k.err" >&2; exit 1; }
}
stop_reader() {
  local k=$1
  kill "${READER_PID[$k]}"; wait "${READER_PID[$k]}" 2> /dev/null || true
  unset "READER_PID[$k]"
}
empty_cache() {  # stop reader K, open its store once with --chunk-cache 0 (evicts every copy), restart
  local k=$1 cached
  stop_reader "$k"
  cached=$(reader "$k" --chunk-cache 0 stats --json | jnum cached_bytes)
  [[ $cached == 0 ]] || { echo "reader $k still caches '$cached' bytes" >&2; exit 1; }
  start_reader "$k"
}
for k in 1 2; do
  reader "$k" -q trust add-node-key --key writer.pub --name writer > /dev/null
  reader "$k" -q pull bench/m --from "$WRITER" --experts all > "r$k.pull" 2>&1
  start_reader "$k"
done
R1="http://$NET.11:8080/bench/m/resolve/main/$F"; R2="http://$NET.12:8080/bench/m/resolve/main/$F"

rx() {  # bytes the readers' NICs received so far (bridge-side veth transmit counters)
  echo $(($(cat /sys/class/net/hb-v1/statistics/tx_bytes) + $(cat /sys/class/net/hb-v2/statistics/tx_bytes)))
}
check_sha() {  # check_sha URL: one download, SHA-256 and size against the source file
  local got
  got=$(curl -sf --max-time 900 "$1" | sha256sum | cut -d' ' -f1)
  [[ $got == "$SHA" ]] || { echo "sha256 mismatch from $1: $got" >&2; exit 1; }
}
FAILS=0
fetch() {  # fetch URL...: seconds for STREAMS parallel GETs, round-robin over the URLs, sizes checked
  local t0 t1 jobs=() urls=("$@") i
  t0=$(now)
  for ((i = 0; i < STREAMS; i++)); do
    local url=${urls[$((i % ${#urls[@]}))]}
    (got=$(curl -s --max-time 900 -o /dev/null -w '%{http_code} %{size_download}' "$url")
     [[ $got == "200 $BYTES" ]] || { echo "bad download from $url: $got" >&2; exit 1; }) &
    jobs+=($!)
  done
  for j in "${jobs[@]}"; do wait "$j" || FAILS=$((FAILS + 1)); done
  t1=$(now)
  ((FAILS == 0)) || { echo "$FAILS downloads failed" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
# CPU seconds so far of the readers, radosgw and the OSD (not curl, not other work on the machine)
cpu() {
  local p t=0
  for p in "${READER_PID[@]}" $(awk '$1 == "rgw.a" || $1 == "osd.0" { print $2 }' "$WORK/ceph/pids"); do
    t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
declare -A SECS INMB BUSY
measure() {  # measure warm|cold one|two
  local cache=$1 nodes=$2 r0 s c0 mb cores urls=("$R1")
  [[ $nodes == two ]] && urls+=("$R2")
  if [[ $cache == cold ]]; then
    empty_cache 1
    if [[ $nodes == two ]]; then empty_cache 2; fi
  fi
  r0=$(rx); c0=$(cpu)
  s=$(fetch "${urls[@]}")
  cores=$(awk -v a="$c0" -v b="$(cpu)" -v t="$s" 'BEGIN { printf "%.2f", (b - a) / t }')
  mb=$(awk -v a="$r0" -v b="$(rx)" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')
  SECS[$cache.$nodes]+="$s "; INMB[$cache.$nodes]+="$mb "; BUSY[$cache.$nodes]+="$cores "
  echo "  $cache $nodes: $s s, $mb MB into the NICs, $cores cores" >&2
}

# First downloads fill each cache from the bucket (SHA-256 checked); then the rounds.
r0=$(rx)
check_sha "$R1"; check_sha "$R2"
FILL_MB=$(awk -v a="$r0" -v b="$(rx)" 'BEGIN { printf "%.0f", (b - a) / 2e6 }')
echo "model file: $BYTES bytes; rate: $( ((RATE > 0)) && echo "$RATE mbit/s per direction per reader" || echo unshaped); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((round = 1; round <= ROUNDS; round++)); do
  echo "round $round" >&2
  if ((round % 2)); then order=(one two); else order=(two one); fi
  for c in cold warm; do for n in "${order[@]}"; do measure "$c" "$n"; done; done
done
check_sha "$R1"; check_sha "$R2"

median() { printf '%s\n' $1 | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mbps() { awk -v n="$STREAMS" -v s="$BYTES" -v t="$1" 'BEGIN { printf "%.0f", n * s / t / 1e6 }'; }
echo
echo "$STREAMS parallel downloads of a $BYTES-byte file; $( ((RATE > 0)) && echo "each reader's NIC shaped to $RATE mbit/s per direction (tbf)" || echo "no shaping (same-machine CPU ceiling)"); median of $ROUNDS rounds; $(nproc) cores; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(chunk records in the bucket: $((STORED / 1000000)) MB; first download per reader, its cache filling from the bucket: $FILL_MB MB into each NIC)"
echo
echo "| cache | one reader s | one reader MB/s | two readers s | two readers MB/s | two/one | MB into the readers' NICs (one; two) | cores used by readers + radosgw + OSD (one; two) |"
echo "|---|---|---|---|---|---|---|---|"
for c in warm cold; do
  one=$(median "${SECS[$c.one]}"); two=$(median "${SECS[$c.two]}")
  echo "| $c | $one | $(mbps "$one") | $two | $(mbps "$two") | $(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f", a / b }') | $(median "${INMB[$c.one]}"); $(median "${INMB[$c.two]}") | $(median "${BUSY[$c.one]}"); $(median "${BUSY[$c.two]}") |"
done
echo
echo "all runs (seconds): $(for k in "${!SECS[@]}"; do printf '%s: %s; ' "$k" "${SECS[$k]}"; done)"
echo "MB into the NICs per run: $(for k in "${!INMB[@]}"; do printf '%s: %s; ' "$k" "${INMB[$k]}"; done)"
echo "cores used per run by the readers, radosgw and the OSD: $(for k in "${!BUSY[@]}"; do printf '%s: %s; ' "$k" "${BUSY[$k]}"; done)"
