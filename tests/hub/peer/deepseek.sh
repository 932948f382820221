#!/usr/bin/env bash
# DeepSeek models (issue 20) through the node, several processes on 127.0.0.1: an origin A holds a
# generated deepseek_v3 model in FP8 (DeepSeek-V3's release layout: each expert is three F8_E4M3
# weights and their weight_scale_inv) and a deepseek_v2 one in bf16. The expert index names their
# routed experts by layer (dense layer 0 has none) and the shared experts apart; the OpenAI API
# lists and serves both; a node pulls the V3 model with --experts 1:3 and stores that expert's six
# tensors and no other; its expert map (GET /api/models/{repo}/peers) says 1:3 local and every
# other routed expert on the peer; concurrent requests, batched, equal each made alone; a node
# holding no expert generates A's tokens, fetching experts from A on their misses. Prints
# "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
PY=/usr/bin/python3
node() { local d=$1; shift; "$HUBNODE" --data "$WORK/$d" -q "$@"; }
serve() {  # serve NAME [FLAGS...] -> sets URL and SPID
  local name=$1
  shift
  "$HUBNODE" --data "$WORK/$name" serve --listen 127.0.0.1:0 --runtime-threads 2 "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  SPID=$!
  PIDS+=($SPID)
  for _ in $(seq 600); do grep -q serving "$WORK/$name.out" && break; sleep 0.05; done
  URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")
}
stat_raw() { node "$1" stats --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["chunk_raw_bytes"])'; }
jq_py() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
post() { curl -s -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: application/json' "$@"; }

node a testmodel --family deepseek_v3 --size small --dtype fp8 --seed 31 --out "$WORK/v3" > /dev/null
node a testmodel --family deepseek_v2 --size tiny --seed 32 --out "$WORK/v2" > /dev/null
node a import "$WORK/v3" --repo org/ds3 > /dev/null
node a import "$WORK/v2" --repo org/ds2 > /dev/null
node a node-key > "$WORK/a.pub"
TOTAL=$(cat "$WORK/v3"/*.safetensors | wc -c)
LAYERS=$($PY -c "import json; print(json.load(open('$WORK/v3/config.json'))['num_hidden_layers'])")

# The expert index: routed experts of layers 1.. (layer 0 is dense), each three FP8 weights with
# their scales; the shared experts listed apart.
node a experts org/ds3 > "$WORK/experts"
check "expert index: 8 routed experts per MoE layer" $((8 * (LAYERS - 1))) "$(grep -c '^layer [0-9]* expert [0-9]*:' "$WORK/experts")"
check "expert index: no expert in dense layer 0" 0 "$(grep -c '^layer 0 ' "$WORK/experts")"
check "expert index: an expert is 6 tensors (F8_E4M3 + weight_scale_inv)" "6" \
  "$(awk '/^layer 1 expert 3:/ { on = 1; next } /^layer/ { on = 0 } on { n++ } END { print n }' "$WORK/experts")"
check "expert index: shared experts apart" True "$(grep -q 'shared_experts' "$WORK/experts" && ! grep -A8 '^layer 1 expert 3:' "$WORK/experts" | grep -q shared_experts && echo True)"
EXPERT_BYTES=$(awk '/^layer/ { on = ($0 ~ /^layer 1 expert 3:/); next } on { n += $4 } END { print n }' "$WORK/experts")
WANT=$(node a run org/ds3 --tokens 1,2,3,4 --max-tokens 12 --temperature 0 --ignore-eos 2>/dev/null | md5sum)
check "V3 fp8 generates" True "$([[ "$WANT" != "d41d8cd98f00b204e9800998ecf8427e  -" ]] && echo True)"

# The OpenAI API serves both.
serve a; A=$URL
curl -s "$A/v1/models" > "$WORK/models"
check "models lists org/ds3 and org/ds2" True "$(jq_py '{"org/ds3", "org/ds2"} <= {m["id"] for m in d["data"]}' < "$WORK/models")"
for repo in org/ds3 org/ds2; do
  BODY='{"model":"'$repo'","messages":[{"role":"user","content":"Hello there"}],"max_tokens":8,"temperature":0}'
  check "$repo chat status" 200 "$(post "$A/v1/chat/completions" -d "$BODY")"
  check "$repo chat tokens" True "$(jq_py 'd["usage"]["completion_tokens"] >= 1 and d["choices"][0]["finish_reason"] in ("stop","length")' < "$WORK/body")"
  check "$repo completion from token ids" 200 "$(post "$A/v1/completions" -d '{"model":"'$repo'","prompt":[1,2,3],"max_tokens":4,"temperature":0}')"
done

# Concurrent requests are batched into one forward pass (MLA over each sequence's own cache):
# each answer equals the same request made alone.
for i in 1 2 3 4 5; do
  curl -s -H 'Content-Type: application/json' "$A/v1/completions" \
    -d "{\"model\":\"org/ds3\",\"prompt\":[$i,9,$i,4],\"max_tokens\":8,\"ignore_eos\":true,\"temperature\":0}" > "$WORK/par$i" &
done
wait $(jobs -p | grep -v "^$SPID$") 2>/dev/null
same=0
for i in 1 2 3 4 5; do
  post "$A/v1/completions" -d "{\"model\":\"org/ds3\",\"prompt\":[$i,9,$i,4],\"max_tokens\":8,\"ignore_eos\":true,\"temperature\":0}" > /dev/null
  [[ "$(jq_py 'd["choices"][0]["text"]' < "$WORK/par$i" 2>/dev/null)" == "$(jq_py 'd["choices"][0]["text"]' < "$WORK/body")" ]] && same=$((same + 1))
done
check "5 concurrent completions = each alone" 5 "$same"

# A partial pull of one expert: its six tensors and no other expert.
node b trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node b pull org/ds3 --from "$A" --experts none > /dev/null 2>&1
check "partial pull (--experts none)" 0 "$?"
NONE=$(stat_raw b)
check "--experts none stores under half of the weights" True "$($PY -c "print($NONE < $TOTAL / 2)")"
node b pull org/ds3 --from "$A" --experts 1:3 > /dev/null 2>&1
check "pull expert 1:3" 0 "$?"
ADDED=$(( $(stat_raw b) - NONE ))
check "expert 1:3: bytes added within [its bytes, 2 x its bytes]" True \
  "$($PY -c "print($EXPERT_BYTES <= $ADDED <= 2 * $EXPERT_BYTES)")"

# The expert map on B (peer A): 1:3 local, every other routed expert on the peer.
node b node-key > "$WORK/b.pub"
node a trust add-node-key --key "$WORK/b.pub" --name mirror-b > /dev/null
serve b --no-inference --peer "$A"; BPID=$SPID
OUT=$(curl -s "$URL/api/models/org/ds3/peers")
check "expert map: 1:3 local" local "$(jq_py '[e[2] for e in d["experts"] if e[0] == 1 and e[1] == 3][0]' <<< "$OUT")"
check "expert map: every other routed expert on the peer" "['peer']" \
  "$(jq_py 'sorted(set(e[2] for e in d["experts"] if (e[0], e[1]) != (1, 3) and e[1] < 8))' <<< "$OUT")"
check "expert map: no layer-0 expert" 0 "$(jq_py 'len([e for e in d["experts"] if e[0] == 0])' <<< "$OUT")"
kill "$BPID"; wait "$BPID" 2>/dev/null

# The runtime on a node holding no expert: A's tokens, experts fetched from A on their misses.
node r trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node r pull org/ds3 --from "$A" --experts none > /dev/null 2>&1
node r node-key > "$WORK/r.pub"
node a trust add-node-key --key "$WORK/r.pub" --name runner-r > /dev/null
GOT=$(node r run org/ds3 --tokens 1,2,3,4 --max-tokens 12 --temperature 0 --ignore-eos --peer "$A" --stats 2> "$WORK/r.err" | md5sum)
check "0% experts local: same tokens as the full copy" "$WANT" "$GOT"
check "experts fetched from the peer" True "$(grep -Eq 'from peers into the store: [1-9][0-9]* chunks' "$WORK/r.err" && echo True)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
