#!/usr/bin/env bash
# The runtime on a node that holds nothing of a model: `hubnode run REPO --peer …` loads config,
# tokenizer and weights, and each expert on its cache miss, as chunks fetched from hubnode peers
# and checked against a trusted chunk map. Its logits are bit-identical to a full local copy's;
# an untrusted map is refused; the policy gate still applies. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
node() { local d=$1; shift; "$HUBNODE" --data "$WORK/$d" -q "$@"; }
serve() {
  "$HUBNODE" --data "$WORK/$1" serve --listen 127.0.0.1:0 --no-inference > "$WORK/$1.out" 2> "$WORK/$1.err" &
  PIDS+=($!)
  for _ in $(seq 600); do grep -q serving "$WORK/$1.out" && break; sleep 0.05; done
  URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$1.out")
}

node a testmodel --family qwen2_moe --size small --seed 21 --out "$WORK/model" > /dev/null
node a import "$WORK/model" --repo org/moe > /dev/null
node a import "$WORK/model" --repo closed/moe > /dev/null
node a run org/moe --tokens 5,6,7,8,9 --dump-logits 8 --runtime-threads 2 > "$WORK/local.json" 2> /dev/null
node a node-key > "$WORK/a.pub"
serve a; A=$URL

# R holds nothing and trusts A's node key.
node r trust add-node-key --key "$WORK/a.pub" --name a > /dev/null
node r run org/moe --peer "$A" --tokens 5,6,7,8,9 --dump-logits 8 --runtime-threads 2 > "$WORK/remote.json" 2> "$WORK/r.err"
check "run from a peer" 0 "$?"
check "logits identical to the local copy's" "" "$(cmp "$WORK/local.json" "$WORK/remote.json")"
node r run org/moe --peer "$A" --tokens 5,6,7 --max-tokens 8 --ignore-eos --stats --expert-budget 50% > /dev/null 2> "$WORK/stats"
check "generation from a peer" 0 "$?"
check "experts fetched on demand" True "$(grep -Eq 'from peers: [1-9][0-9]* chunks' "$WORK/stats" && grep -Eq '[1-9][0-9]* misses' "$WORK/stats" && echo True)"
check "nothing stored locally" "" "$(node r ls 2>/dev/null)"

# Without trust in A's key the map is refused; a model the policy denies is refused too.
node s run org/moe --peer "$A" --prompt hi > /dev/null 2> "$WORK/s.err"
check "untrusted map refused" "1 True" "$? $(grep -q PermissionDenied "$WORK/s.err" && echo True)"
node r trust policy --namespace closed --id apache-2.0 --verdict deny > /dev/null
node r run closed/moe --peer "$A" --prompt hi > /dev/null 2> "$WORK/d.err"
check "policy applies to remote models" "1 True" "$? $(grep -q "not allowed to run" "$WORK/d.err" && echo True)"

for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
