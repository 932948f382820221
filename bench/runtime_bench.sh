#!/usr/bin/env bash
# Runtime benchmark (issue: the runtime). One generated OLMoE-shaped bf16 checkpoint of ~1 GB
# (64 experts of 16 layers, top-8), imported into a store and run from it:
#   prefill and decode tokens/s (warm: the second of two identical runs)
#   decode vs the memory-bandwidth roofline measured in the same run:
#     roofline tok/s = copy bandwidth (bench/membw, all threads) / bytes of active weights per token
#   decode speed and expert hit rate with the expert budget at 25%, 50% and 100% of the experts
#   (and 10%, and without prefetch: the baseline for the prefetcher). The number of distinct
#   experts the prompt routes to is printed: the generated router is untrained. These rows read
#   evicted experts from the store's chunks (--raw-cache-size 0).
#   TIER=1: also the expert tier (docs/decisions.md 46): 25% and 10% with the raw copies of the
#   weight shards (DATA/rawcache, filled by a first run) and without them, alternately, ROUNDS
#   times each (default 3; the median run by decode speed is shown).
# Usage: bench/runtime_bench.sh BUILD_DIR [workdir]   (SIZE=small for a quick run)
set -euo pipefail
BUILD=$(realpath "${1:?usage: runtime_bench.sh BUILD_DIR [WORKDIR]}")
HUBNODE=$BUILD/hub/hubnode
WORK=${2:-$(dirname "$0")/out-runtime}
SIZE=${SIZE:-bench}
THREADS=${THREADS:-$(nproc)}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
GEN=${GEN:-64}
TIER=${TIER:-0}
ROUNDS=${ROUNDS:-3}
rm -rf "$WORK" && mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HUBNODE_DATA="$WORK/data"

"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --seed 1 --out "$WORK/model" > /dev/null
"$HUBNODE" -q import "$WORK/model" --repo bench/olmoe > /dev/null
SHARDS=$(ls "$WORK/model" | grep -c '\.safetensors$')
rm -rf "$WORK/model"
PROMPT=$(/usr/bin/python3 -c "import random; r = random.Random(1); print(','.join(str(r.randrange(3, 300)) for _ in range($PROMPT_TOKENS)))")
BW=$("$BUILD/bench/membw" "$THREADS" 1024)

# stats BUDGET [extra flags] -> the stats of the second (warm) run: its line, and where the
# experts it loaded came from
stats() {
  local budget=$1
  shift
  "$HUBNODE" run bench/olmoe --tokens "$PROMPT" --max-tokens "$GEN" --ignore-eos --stats --repeat 2 \
    --runtime-threads "$THREADS" --expert-budget "$budget" "$@" 2>&1 > /dev/null | grep '^\[\|experts read' | tail -2
}
# run BUDGET [extra flags] -> the stats line of the second (warm) run, experts read from chunks
run() { stats "$@" --raw-cache-size 0 | grep '^\['; }
field() { sed -n "s|.*$1.*|\\1|p"; }

printf '\nhubnode runtime benchmark: %s OLMoE-shaped bf16, prompt %s tokens, %s generated, %s threads\n' \
  "$SIZE" "$PROMPT_TOKENS" "$GEN" "$THREADS"
printf 'memory copy bandwidth (membw, %s threads): %s GB/s\n' "$THREADS" "$BW"
used=$("$HUBNODE" run bench/olmoe --tokens "$PROMPT" --max-tokens "$GEN" --ignore-eos --stats --runtime-threads "$THREADS" --no-prefetch --raw-cache-size 0 2>&1 > /dev/null | sed -n 's|.* \([0-9]*\) misses.*|\1|p')
printf 'distinct experts used by this prompt + generation (cold run misses): %s of %s\n\n' "$used" "$(( $("$HUBNODE" experts bench/olmoe | grep -c '^layer') ))"
printf '| expert budget | prefill tok/s | decode tok/s | hit rate | MiB loaded | roofline tok/s | decode / roofline |\n'
printf '|---|---|---|---|---|---|---|\n'
for case in "100%" "50%" "25%" "10%" "25% --no-prefetch" "10% --no-prefetch"; do
  # shellcheck disable=SC2086
  line=$(run $case)
  prefill=$(echo "$line" | field 'prompt [0-9]* tokens (\([0-9.]*\) tok/s)')
  decode=$(echo "$line" | field 'generated [0-9]* tokens (\([0-9.]*\) tok/s)')
  hits=$(echo "$line" | field 'experts: \([0-9]*\) hits')
  misses=$(echo "$line" | field ' \([0-9]*\) misses')
  loaded=$(echo "$line" | field ' \([0-9.]*\) MiB loaded')
  active=$(echo "$line" | field 'active weights \([0-9.]*\) MiB/token')
  /usr/bin/python3 - "$case" "$prefill" "$decode" "$hits" "$misses" "$loaded" "$active" "$BW" <<'PY'
import sys
case, prefill, decode, hits, misses, loaded, active, bw = sys.argv[1:]
hits, misses = int(hits), int(misses)
roof = float(bw) * 1e9 / (float(active) * 1048576)
rate = hits / (hits + misses) if hits + misses else 1.0
print(f"| {case} | {float(prefill):.1f} | {float(decode):.1f} | {rate:.3f} | {float(loaded):.1f} | {roof:.1f} | {float(decode) / roof:.2f} |")
PY
done

[[ "$TIER" == 1 ]] || exit 0
# The expert tier: a first run at 10% copies the weight shards into DATA/rawcache (in the
# background, while it runs); runs go on until all are there.
for _ in $(seq 10); do
  [[ $(ls "$HUBNODE_DATA/rawcache" 2> /dev/null | grep -vc tmp) -ge $SHARDS ]] && break
  stats 10% > /dev/null
done
printf '\nexpert tier: raw copies of the weight shards (%s MiB in DATA/rawcache), alternating with chunk reads; median of %s runs by decode speed\n\n' \
  "$(( $(du -sm "$HUBNODE_DATA/rawcache" | cut -f1) ))" "$ROUNDS"
printf '| expert budget | expert tier | decode tok/s | hit rate | MiB loaded | load s | MiB from raw copies | MiB from chunks |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for budget in 25% 10%; do
  rm -f "$WORK/tier-on" "$WORK/tier-off"
  for _ in $(seq "$ROUNDS"); do
    stats "$budget" --raw-cache-size 0 | tr '\n' ' ' >> "$WORK/tier-off" && echo >> "$WORK/tier-off"
    stats "$budget" | tr '\n' ' ' >> "$WORK/tier-on" && echo >> "$WORK/tier-on"
  done
  for tier in off on; do
    /usr/bin/python3 - "$budget" "$tier" "$WORK/tier-$tier" <<'PY'
import re, sys
budget, tier, path = sys.argv[1:]
rows = []
for line in open(path):
    num = lambda pat: float(re.search(pat, line).group(1))
    hits, misses = num(r"experts: (\d+) hits"), num(r" (\d+) misses")
    rows.append((num(r"generated \d+ tokens \(([\d.]+) tok/s\)"), hits / (hits + misses) if hits + misses else 1.0,
                 num(r" ([\d.]+) MiB loaded"), num(r"loaded in ([\d.]+) s"),
                 num(r"experts read: ([\d.]+) MiB from raw"), num(r"MiB from raw copies \(DATA/rawcache\), ([\d.]+) MiB from chunks")))
rows.sort()
d, rate, loaded, secs, raw, chunks = rows[len(rows) // 2]
runs = ", ".join(f"{r[0]:.1f}" for r in rows)
print(f"| {budget} | {tier} | {d:.1f} ({runs}) | {rate:.3f} | {loaded:.1f} | {secs:.2f} | {raw:.1f} | {chunks:.1f} |")
PY
  done
done
