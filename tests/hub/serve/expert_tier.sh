#!/usr/bin/env bash
# The expert tier (docs/decisions.md 46): a model run with an expert budget below its experts
# copies its weight shards into the raw cache (DATA/rawcache) in the background and reloads
# evicted experts from the copies; its logits and tokens are those of a run with every expert
# resident and of a run that reads the chunks. A copy altered on disk while no node ran is
# re-hashed at the next start, removed and written again, never read. `serve` shares its raw cache
# with its model host the same way. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
export HUBNODE_DATA="$WORK/data"

# 64 experts (4 layers of 16, top-2) in two shards of 14 MB (over the raw cache's 8 MiB minimum).
"$HUBNODE" -q testmodel --family olmoe --size small --experts 16 --shards 2 --seed 5 --out "$WORK/m" > /dev/null
"$HUBNODE" -q import "$WORK/m" --repo t/moe > /dev/null
SHAS=$(cd "$WORK/m" && for f in *.safetensors; do sha256sum < "$f" | cut -c1-64; done | sort | tr '\n' ' ')
check "two shards over 8 MiB" 2 "$(find "$WORK/m" -name '*.safetensors' -size +8M | wc -l)"
PROMPT=3,14,15,92,65,35,89,79,32,38,46,26,43,38,32,79,50,28,84,19

logits() { "$HUBNODE" run t/moe --tokens "$PROMPT" --dump-logits 8 "$@" 2> "$WORK/logits.err" | sha256sum | cut -c1-64; }
gen() { "$HUBNODE" run t/moe --tokens "$PROMPT" --max-tokens 16 --ignore-eos --stats "$@" 2> "$WORK/gen.err"; }
cached() { ls "$HUBNODE_DATA/rawcache" 2> /dev/null | grep -v tmp | sort | tr '\n' ' '; }
# "RAW CHUNKS" MiB of experts read by the last --repeat of the last gen
reads() { sed -n 's/.*experts read: \([0-9.]*\) MiB from raw copies.*, \([0-9.]*\) MiB from chunks/\1 \2/p' "$WORK/gen.err" | tail -1; }

REF=$(logits --expert-budget 100% --raw-cache-size 0)
REF_TEXT=$(gen --expert-budget 100% --raw-cache-size 0)
check "100% logits dumped" 1 "$(grep -c '"decode"' <("$HUBNODE" run t/moe --tokens "$PROMPT" --dump-logits 8 --raw-cache-size 0 2> /dev/null))"
check "10% from the chunks: logits of 100%" "$REF" "$(logits --expert-budget 10% --raw-cache-size 0)"
check "10% from the chunks: tokens of 100%" "$REF_TEXT" "$(gen --expert-budget 10% --raw-cache-size 0)"
read -r raw chunks <<< "$(reads)"
check "10% from the chunks: experts reloaded from chunks only" "0.0 True" "$raw $(awk "BEGIN { print ($chunks > 0) ? \"True\" : \"False\" }")"
check "--raw-cache-size 0: nothing copied" "" "$(cached)"
logits --expert-budget 100% > /dev/null
check "100% budget: nothing copied (no expert is reloaded)" "" "$(cached)"

# The first runs at 10% copy both shards (each run's copy finishes while it runs, or is dropped
# at its end and asked for again by the next).
for _ in $(seq 20); do
  gen --expert-budget 10% > /dev/null
  [[ "$(cached)" == "$SHAS" ]] && break
done
check "both shards copied under their SHA-256" "$SHAS" "$(cached)"
for f in "$HUBNODE_DATA"/rawcache/*; do
  check "copy $(basename "$f" | cut -c1-12) hashes to its name" "$(basename "$f")" "$(sha256sum < "$f" | cut -c1-64)"
done

check "10% with the tier: logits of 100%" "$REF" "$(logits --expert-budget 10%)"
check "10% with the tier: tokens of 100%" "$(printf '%s\n%s\n%s' "$REF_TEXT" "$REF_TEXT" "$REF_TEXT")" \
  "$(gen --expert-budget 10% --repeat 3)"
read -r raw chunks <<< "$(reads)"
check "10% with the tier: experts reloaded from the raw copies only" "True 0.0" \
  "$(awk "BEGIN { print ($raw > 0) ? \"True\" : \"False\" }") $chunks"
check "100% reading the copies: logits of 100%" "$REF" "$(logits --expert-budget 100%)"

# Copies altered while no node ran: half of each overwritten with 0xff bytes (bf16 NaNs), the
# size unchanged. Read, they would change every logit; they are re-hashed first and removed.
for f in "$HUBNODE_DATA"/rawcache/*; do
  /usr/bin/python3 -c "
import os, sys
f = sys.argv[1]
n = os.path.getsize(f)
with open(f, 'r+b') as h:
    h.seek(n // 2)
    h.write(b'\xff' * (n - n // 2))" "$f"
done
check "copies altered" 0 "$(for f in "$HUBNODE_DATA"/rawcache/*; do [[ "$(sha256sum < "$f" | cut -c1-64)" == "$(basename "$f")" ]] && echo; done | wc -l)"
check "altered copies: logits of 100%" "$REF" "$(logits --expert-budget 10%)"
check "altered copies: both re-hashed and removed" 2 "$(grep -c 'does not match its name; removed' "$WORK/logits.err")"
for _ in $(seq 20); do
  [[ "$(cached)" == "$SHAS" ]] && break
  gen --expert-budget 10% > /dev/null
done
check "altered copies written again, good" "$SHAS" \
  "$(for f in "$HUBNODE_DATA"/rawcache/*; do sha256sum < "$f" | cut -c1-64; done | sort | tr '\n' ' ')"
check "then: tokens of 100%" "$REF_TEXT" "$(gen --expert-budget 10%)"

# serve: its model host fills and reads the node's raw cache.
rm -rf "$HUBNODE_DATA/rawcache"
"$HUBNODE" serve --listen 127.0.0.1:0 --expert-budget 10% > "$WORK/s.out" 2> "$WORK/s.err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/s.out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/s.out")
complete() {
  curl -s -H 'Content-Type: application/json' "$U/v1/completions" \
    -d "{\"model\":\"t/moe\",\"prompt\":[$PROMPT],\"max_tokens\":16,\"ignore_eos\":true,\"temperature\":0}" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["choices"][0]["text"])'
}
check "serve at 10%: tokens of 100%" "$REF_TEXT" "$(complete)"
for _ in $(seq 100); do [[ "$(cached)" == "$SHAS" ]] && break; sleep 0.05; done
check "serve copied both shards" "$SHAS" "$(cached)"
check "serve at 10% from the copies: tokens of 100%" "$REF_TEXT" "$(complete)"
check "serve's /metrics counts tensor bytes read from the copies" True \
  "$(curl -s "$U/metrics" | awk '/^hubnode_runtime_tensor_bytes_raw_total\{model="t\/moe"\}/ { print ($2 > 0) ? "True" : "False" }')"
kill "$PID"
wait "$PID" 2> /dev/null
PID=

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
