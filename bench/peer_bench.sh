#!/usr/bin/env bash
# Peer benchmark (issue: peers). Three hubnode peers, each in its own network namespace behind a
# veth link rate-limited with tc (tbf, RATE each, default 200mbit), hold the same ~165 MB model
# (OLMoE-shaped, --size medium). A puller in the root namespace fetches the model's LFS files
# chunk by chunk: from 1 peer, then from all 3. Goal: >= 2.5x faster with 3.
# Needs root (ip netns, tc). Usage: bench/peer_bench.sh path/to/hubnode [workdir]
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: peer_bench.sh HUBNODE [WORKDIR]}")
WORK=${2:-$(dirname "$0")/out-peer}
RATE=${RATE:-200mbit}
SIZE=${SIZE:-medium}
rm -rf "$WORK" && mkdir -p "$WORK"
WORK=$(realpath "$WORK")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for k in 1 2 3; do ip netns del "hnpeer$k" 2>/dev/null || true; ip link del "hnv$k" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup

"$HUBNODE" --data "$WORK/origin" -q testmodel --family olmoe --size "$SIZE" --seed 3 --out "$WORK/model" > /dev/null
"$HUBNODE" --data "$WORK/origin" -q import "$WORK/model" --repo org/moe > /dev/null
"$HUBNODE" --data "$WORK/origin" node-key > "$WORK/peer.pub"  # the copies below share this key
bytes=$(du -sb "$WORK/model" | cut -f1)

for k in 1 2 3; do
  cp -a "$WORK/origin" "$WORK/peer$k"
  ip netns add "hnpeer$k"
  ip link add "hnv$k" type veth peer name hnp
  ip link set hnp netns "hnpeer$k"
  ip addr add "10.77.$k.1/24" dev "hnv$k"
  ip link set "hnv$k" up
  ip netns exec "hnpeer$k" ip addr add "10.77.$k.2/24" dev hnp
  ip netns exec "hnpeer$k" ip link set hnp up
  ip netns exec "hnpeer$k" ip link set lo up
  # The peer's uplink: what it sends to the puller is limited to RATE.
  ip netns exec "hnpeer$k" tc qdisc add dev hnp root tbf rate "$RATE" burst 256kb latency 100ms
  ip netns exec "hnpeer$k" "$HUBNODE" --data "$WORK/peer$k" serve --listen "10.77.$k.2:8080" --no-inference \
    > "$WORK/peer$k.out" 2> "$WORK/peer$k.err" &
  PIDS+=($!)
done
for k in 1 2 3; do
  for _ in $(seq 100); do curl -s -o /dev/null "http://10.77.$k.2:8080/health" && break; sleep 0.1; done
done

pull() {  # pull NAME PEER_URLS... -> seconds
  local name=$1
  shift
  local args=()
  for p in "$@"; do args+=(--peer "$p"); done
  "$HUBNODE" --data "$WORK/$name" -q trust add-node-key --key "$WORK/peer.pub" --name peers > /dev/null
  local t0 t1
  t0=$(date +%s.%N)
  "$HUBNODE" --data "$WORK/$name" -q pull org/moe --from "$1" "${args[@]}" --peer-stats > "$WORK/$name.out" 2> "$WORK/$name.err"
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
one=$(pull one http://10.77.1.2:8080)
three=$(pull three http://10.77.1.2:8080 http://10.77.2.2:8080 http://10.77.3.2:8080)
fetch1=$(sed -n 's/^download phase: \([0-9.]*\) s/\1/p' "$WORK/one.out")
fetch3=$(sed -n 's/^download phase: \([0-9.]*\) s/\1/p' "$WORK/three.out")

printf '\nhubnode peer benchmark: %s model (%s bytes raw), each peer link %s\n' "$SIZE" "$bytes" "$RATE"
printf 'fetch = the download phase (chunks from peers, checked); pull = all of it (plan, chunk map, fetch, import)\n\n'
printf '| peers | fetch s | fetch MB/s (raw) | pull s |\n|---|---|---|---|\n'
awk -v f="$fetch1" -v s="$one" -v b="$bytes" 'BEGIN { printf "| 1 | %.2f | %.1f | %.2f |\n", f, b / f / 1e6, s }'
awk -v f="$fetch3" -v s="$three" -v b="$bytes" 'BEGIN { printf "| 3 | %.2f | %.1f | %.2f |\n", f, b / f / 1e6, s }'
awk -v a="$fetch1" -v b="$fetch3" -v c="$one" -v d="$three" 'BEGIN { printf "\nspeed-up with 3 peers: fetch %.2fx (goal >= 2.5), whole pull %.2fx\n", a / b, c / d }'
echo; cat "$WORK/three.out"

# The runtime from peers: a cold node holding nothing (weights and each expert fetched on demand
# from the 3 peers) vs a warm node (the model in its store, engine loaded): time to the first
# token, and bytes fetched per generated token while the cold node warms up.
PROMPT=5,6,7,8,9,10,11,12
mkdir -p "$WORK/cold"
"$HUBNODE" --data "$WORK/cold" -q trust add-node-key --key "$WORK/peer.pub" --name peers > /dev/null
t0=$(date +%s.%N)
"$HUBNODE" --data "$WORK/cold" run org/moe --peer http://10.77.1.2:8080 --peer http://10.77.2.2:8080 \
  --peer http://10.77.3.2:8080 --tokens "$PROMPT" --max-tokens 1 --stats > /dev/null 2> "$WORK/cold1.err"
t1=$(date +%s.%N)
"$HUBNODE" --data "$WORK/cold" run org/moe --peer http://10.77.1.2:8080 --peer http://10.77.2.2:8080 \
  --peer http://10.77.3.2:8080 --tokens "$PROMPT" --max-tokens 32 --ignore-eos --stats > /dev/null 2> "$WORK/cold32.err"
# Warm: the same engine already loaded (second of two runs in one process); its prefill + 1 token.
"$HUBNODE" --data "$WORK/three" run org/moe --tokens "$PROMPT" --max-tokens 1 --repeat 2 --stats > /dev/null 2> "$WORK/warm.err"
cold_ttft=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
warm_prefill=$(grep '^\[' "$WORK/warm.err" | tail -1 | sed -n 's|.*prompt \([0-9]*\) tokens (\([0-9.]*\) tok/s).*|\1 \2|p' | awk '{ printf "%.3f", $1 / $2 }')
mib1=$(sed -n 's/^from peers: [0-9]* chunks, \([0-9.]*\) MiB/\1/p' "$WORK/cold1.err")
mib32=$(sed -n 's/^from peers: [0-9]* chunks, \([0-9.]*\) MiB/\1/p' "$WORK/cold32.err")
printf '\n| runtime | value |\n|---|---|\n'
printf '| cold node, first token (process start, load from peers, prefill of 8 tokens) | %s s |\n' "$cold_ttft"
printf '| warm node, first token (prefill of 8 tokens, engine loaded) | %s s |\n' "$warm_prefill"
printf '| fetched for the first token (non-expert weights + experts of the prompt) | %s MiB |\n' "$mib1"
awk -v a="$mib1" -v b="$mib32" 'BEGIN { printf "| fetched per further generated token while warming (32 tokens) | %.2f MiB |\n", (b - a) / 31 }'
