#!/usr/bin/env bash
# Partial models, several processes on 127.0.0.1: an origin node A holding an OLMoE-shaped model,
# and nodes that trust A's node key and pull from it with --experts. A partial pull stores the
# metadata and non-expert weights (and the named experts) and records every file's chunk list; a
# later pull adds one expert, moving only that expert's chunks; the repo info says per file and per
# expert what is local; a node serving with --peer streams a partly held file whole, fetching its
# missing chunks; the runtime on a node holding 0% of the experts gives the same tokens as A; with
# A down, a download needing missing chunks is a clean 503 with Retry-After and the store is
# unchanged. Prints "N passed, M failed".
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
  "$HUBNODE" --data "$WORK/$name" serve --listen 127.0.0.1:0 --no-inference "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  SPID=$!
  PIDS+=($SPID)
  for _ in $(seq 600); do grep -q serving "$WORK/$name.out" && break; sleep 0.05; done
  URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")
}
stat_raw() { node "$1" stats --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["chunk_raw_bytes"])'; }
jq_py() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

node a testmodel --family olmoe --size small --seed 21 --out "$WORK/model" > /dev/null
node a import "$WORK/model" --repo org/moe > /dev/null
node a import "$WORK/model" --repo acme/priv --private > /dev/null
node a node-key > "$WORK/a.pub"
check "node-key ends its output with a newline" "" "$(tail -c1 "$WORK/a.pub")"
SHARD=$(cd "$WORK/model" && ls *.safetensors | head -1)
TOTAL=$(cat "$WORK/model"/*.safetensors | wc -c)
# The bytes of expert 0:1 (every part), from A's expert index.
EXPERT_BYTES=$(node a experts org/moe | awk '/^layer/ { on = ($0 ~ /^layer 0 expert 1:/) ; next } on { n += $4 } END { print n }')
# The tokens of the full copy (before A serves: a run opens A's store).
WANT=$(node a run org/moe --tokens 1,2,3,4 --max-tokens 12 --temperature 0 --ignore-eos 2>/dev/null | md5sum)
check "full copy generates" True "$([[ "$WANT" != "d41d8cd98f00b204e9800998ecf8427e  -" ]] && echo True)"
serve a; A=$URL; APID=$SPID

# B: metadata and non-expert weights only.
node b trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node b pull org/moe --from "$A" --experts none > "$WORK/b.out" 2> "$WORK/b.err"
check "partial pull (--experts none)" 0 "$?"
NONE=$(stat_raw b)
check "--experts none stores under half of the weights" True "$($PY -c "print($NONE < $TOTAL / 2)")"
check "refused without a trusted map" 1 "$(node c pull org/moe --from "$A" --experts none > /dev/null 2> "$WORK/c.err"; echo $?)"
check "the refused chunk map is warned about once" 1 "$(grep -c 'chunk map of org/moe@.* refused' "$WORK/c.err")"

# One more expert moves that expert's chunks only.
node b pull org/moe --from "$A" --experts 0:1 > /dev/null 2>&1
check "pull one expert" 0 "$?"
ONE=$(stat_raw b)
ADDED=$((ONE - NONE))
check "one expert: bytes added = the expert's bytes" "$EXPERT_BYTES" "$ADDED"

node b pull org/moe --from "$A" --experts 0:2 --peer-stats > "$WORK/b2.out" 2> /dev/null
WIRE=$(awk '/^peer / { n += $5 } END { print n + 0 }' "$WORK/b2.out")
check "another expert: bytes on the wire <= 1.1 x its bytes" True "$($PY -c "print(0 < $WIRE <= 1.1 * $EXPERT_BYTES)")"

# Locality in the repo info, served by B (with A as its peer).
serve b --peer "$A"; B=$URL; BPID=$SPID
INFO=$(curl -s "$B/api/models/org/moe")
check "locality: incomplete" False "$(jq_py 'd["locality"]["complete"]' <<< "$INFO")"
check "locality: experts 0:1 and 0:2 local" True "$(jq_py '"0:1" not in d["locality"]["experts"]["missing"] and d["locality"]["experts"]["local"] == 2' <<< "$INFO")"
check "locality: per-file local bytes" True "$(jq_py 'all(f["localBytes"] < f["size"] for f in d["locality"]["files"] if f["path"].endswith(".safetensors"))' <<< "$INFO")"

# B's readers name no revision when they fetch a chunk: A serves them only to a node it trusts.
check "untrusted node: a download needing chunks is a 503" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$B/org/moe/resolve/main/$SHARD")"
node b node-key > "$WORK/b.pub"
node a trust add-node-key --key "$WORK/b.pub" --name mirror-b > /dev/null
# A download of a partly held file streams whole, the missing chunks fetched from A.
check "download through B is byte-exact" "$(sha256sum < "$WORK/model/$SHARD" | cut -c1-64)" \
  "$(curl -sf "$B/org/moe/resolve/main/$SHARD" | sha256sum | cut -c1-64)"
INFO=$(curl -s "$B/api/models/org/moe")
check "after the download the shard is local" True "$(jq_py "[f for f in d['locality']['files'] if f['path']=='$SHARD'][0]['localBytes'] == [f for f in d['locality']['files'] if f['path']=='$SHARD'][0]['size']" <<< "$INFO")"
kill "$BPID"; wait "$BPID" 2>/dev/null

# The runtime on a node holding no expert: same tokens as A, experts fetched on their misses.
node r trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node r pull org/moe --from "$A" --experts none > /dev/null 2>&1
node r node-key > "$WORK/r.pub"
node a trust add-node-key --key "$WORK/r.pub" --name runner-r > /dev/null
GOT=$(node r run org/moe --tokens 1,2,3,4 --max-tokens 12 --temperature 0 --ignore-eos --peer "$A" --stats 2> "$WORK/r.err" | md5sum)
check "0% experts local: same tokens as the full copy" "$WANT" "$GOT"
check "experts fetched from the peer" True "$(grep -Eq 'from peers into the store: [1-9][0-9]* chunks' "$WORK/r.err" && echo True)"

# A private repo pulls in part with a reader's token (the chunk map is asked for with it too).
APRIV=$(node a token create --name priv-reader --scope read --namespace acme)
node p trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
check "private repo, no token: refused" 1 "$(node p pull acme/priv --from "$A" --experts none > /dev/null 2>&1; echo $?)"
node p pull acme/priv --from "$A" --token "$APRIV" --experts 0:1 > /dev/null 2> "$WORK/p.err"
check "private repo, a reader's token: partial pull" 0 "$?"
check "...storing under half of the weights" True "$($PY -c "print($(stat_raw p) < $TOTAL / 2)")"

# A down: a download needing missing chunks is a clean 503 with Retry-After; nothing changes.
node d trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node d pull org/moe --from "$A" --experts none > /dev/null 2>&1
kill "$APID"; wait "$APID" 2>/dev/null
BEFORE=$(stat_raw d)
serve d --peer "$A"; D=$URL
curl -s -D "$WORK/d.h" -o "$WORK/d.body" "$D/org/moe/resolve/main/$SHARD"
check "peers down: 503" 503 "$(head -1 "$WORK/d.h" | cut -d' ' -f2)"
check "peers down: Retry-After" True "$(grep -qi '^Retry-After: ' "$WORK/d.h" && echo True)"
check "peers down: JSON error code" ChunksUnavailable "$(grep -i '^X-Error-Code' "$WORK/d.h" | tr -d '\r' | cut -d' ' -f2)"
check "peers down: metadata still served" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$D/org/moe/resolve/main/config.json")"
kill "$SPID"; wait "$SPID" 2>/dev/null
check "peers down: store unchanged" "$BEFORE" "$(stat_raw d)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
