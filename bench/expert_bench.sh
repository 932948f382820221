#!/usr/bin/env bash
# Experts on a trained router (issue 18): how many distinct experts real text routes to, how well
# the next layer's experts are predicted (layer l + 1's router on layer l's hidden state: what the
# expert cache prefetches), and decode speed and cache hit rate at 100/50/25/10% expert budget,
# with and without prefetch. Two models trained by tools/train on the King James Bible:
#   kjv-moe   the committed demo model (models/kjv-moe: 4 layers, 8 experts of 192, top-2; tiny)
#   bench     a larger one trained here by tools/train/train.sh (default: hidden 384, 8 layers,
#             64 experts of width 128, top-8, 300 steps of 8 x 128 tokens; ~30 min on 2 cores, run
#             with nice); kept in WORKDIR/trained/ and reused by later runs
# Prompt: the first PROMPT_TOKENS ids of the held-out chapters (models/kjv-moe.held-out.u32, which
# `hubnode run --tokenize` wrote: text neither model trained on; both share the tokenizer), then
# GEN tokens generated greedily (ignore_eos). Figures of a table row are the second (warm) of two
# identical runs in one process (bench/runtime_bench.sh's method).
# Usage: bench/expert_bench.sh HUBNODE_BIN [WORKDIR]     (WORKDIR default bench/out-expert)
#   env: THREADS (default nproc), PROMPT_TOKENS (256), GEN (128), STEPS (300), SKIP_BENCH_MODEL=1
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: expert_bench.sh HUBNODE_BIN [WORKDIR]}")
[[ -x $HUBNODE ]] || { echo "not executable: $HUBNODE" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${2:-$ROOT/bench/out-expert}
THREADS=${THREADS:-$(nproc)}
PROMPT_TOKENS=${PROMPT_TOKENS:-256}
GEN=${GEN:-128}
STEPS=${STEPS:-300}
SHAPE=(--hidden 384 --layers 8 --experts 64 --top-k 8 --moe-intermediate 128 --heads 6 --kv-heads 2)
TRAIN=(--batch 8 --seq 128 --threads 1)
mkdir -p "$WORK/trained"
WORK=$(realpath "$WORK")
rm -rf "$WORK/data" "$WORK/runs" && mkdir -p "$WORK/runs"
export HUBNODE_DATA="$WORK/data"
HELD=$ROOT/models/kjv-moe.held-out.u32
# A binary with the expert tier (raw copies of weight shards, `run --raw-cache-size`) reloads
# evicted experts from those copies: the table measures the store's compressed chunks (the tier
# off), then two rows with the tier on.
CHUNKS=() TIER_CASES=()
if "$HUBNODE" run --help 2> /dev/null | grep -q -- --raw-cache-size; then
  CHUNKS=(--raw-cache-size 0)
  TIER_CASES=("25% tier" "10% tier")
fi

"$HUBNODE" -q import "$ROOT/models/kjv-moe" --repo bench/kjv-moe > /dev/null
MODELS=(kjv-moe)
BENCH_DIR=$WORK/trained/kjv-olmoe-h384-l8-e64x128-k8-s$STEPS
if [[ ${SKIP_BENCH_MODEL:-0} != 1 ]]; then
  if [[ ! -f $BENCH_DIR/training.json ]]; then
    echo "training the bench model into $BENCH_DIR (log: $BENCH_DIR.log) ..." >&2
    rm -rf "$BENCH_DIR"
    nice -n 10 "$ROOT/tools/train/train.sh" "$HUBNODE" "$BENCH_DIR" "$STEPS" "${SHAPE[@]}" "${TRAIN[@]}" \
      > "$BENCH_DIR.log" 2>&1 || { tail -20 "$BENCH_DIR.log" >&2; exit 1; }
  fi
  "$HUBNODE" -q import "$BENCH_DIR" --repo bench/bench > /dev/null
  MODELS+=(bench)
fi
PROMPT=$(/usr/bin/python3 -c '
import struct, sys
n = int(sys.argv[2]); data = open(sys.argv[1], "rb").read(4 * n)
print(",".join(str(i) for i in struct.unpack("<%dI" % (len(data) // 4), data)))' "$HELD" "$PROMPT_TOKENS")

printf '\n# Experts on a trained router: bench/expert_bench.sh (%s threads, prompt %s held-out tokens, %s generated)\n' \
  "$THREADS" "$PROMPT_TOKENS" "$GEN"
for m in "${MODELS[@]}"; do
  cfg=$(cat "$([[ $m == kjv-moe ]] && echo "$ROOT/models/kjv-moe" || echo "$BENCH_DIR")/config.json")
  printf '\n## %s: %s\n\n' "$m" "$(/usr/bin/python3 -c '
import json, sys; c = json.loads(sys.argv[1])
print("hidden %d, %d layers, %d experts of width %d per layer, top-%d" % (c["hidden_size"], c["num_hidden_layers"],
      c["num_experts"], c["intermediate_size"], c["num_experts_per_tok"]))' "$cfg")"
  if [[ $m == bench ]]; then
    /usr/bin/python3 -c '
import json, sys; t = json.load(open(sys.argv[1]))
print("trained by tools/train/train.sh: %d steps of %d x %d tokens in %.0f s; final training loss %.4f; held-out loss %.4f "
      "(perplexity %.1f; the runtime computes %.4f)\n" % (t["steps"], t["batch"], t["seq"], t["train_seconds"],
      t["final_train_loss"], t["held_out"]["loss"], t["held_out"]["perplexity"], t["held_out"].get("runtime_loss", float("nan"))))' \
      "$BENCH_DIR/training.json"
  fi

  # The routing trace of one run at full budget.
  trace=$WORK/runs/$m.trace.jsonl
  "$HUBNODE" run "bench/$m" --tokens "$PROMPT" --max-tokens "$GEN" --ignore-eos --runtime-threads "$THREADS" \
    --routing-trace "$trace" --stats > "$WORK/runs/$m.text" 2> "$WORK/runs/$m.trace.err"
  printf 'greedy continuation (first 160 characters): %s\n\n' "$(head -c 160 "$WORK/runs/$m.text" | tr '\n' ' ')"
  /usr/bin/python3 - "$trace" "$cfg" "$PROMPT_TOKENS" <<'PY'
import json, sys
from collections import defaultdict
trace, cfg, prompt = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
L, E, K = cfg["num_hidden_layers"], cfg["num_experts"], cfg["num_experts_per_tok"]
routed, predicted = defaultdict(dict), defaultdict(dict)  # layer -> pos -> experts
for line in open(trace):
    r = json.loads(line)
    routed[r["layer"]][r["pos"]] = r["routed"]
    if "predicted" in r:
        predicted[r["layer"] + 1][r["pos"]] = r["predicted"]
positions = sorted(routed[0])
segments = [("prompt (held-out text, one prefill pass)", [p for p in positions if p < prompt]),
            ("generated (greedy, one pass per token)", [p for p in positions if p >= prompt])]
W = 64
print("Distinct experts per layer (averaged over the %d layers; %d experts per layer, top-%d):\n" % (L, E, K))
print("| tokens | per token | per %d tokens (sliding windows) | whole segment | share of a token's experts the previous token used |" % W)
print("|---|---|---|---|---|")
for name, ps in segments:
    if len(ps) < 2:
        continue
    per_window, whole, reuse = [], [], []
    for l in range(L):
        seq = [set(routed[l][p]) for p in ps]
        per_window += [len(set().union(*seq[i:i + W])) for i in range(max(1, len(seq) - W + 1))]
        whole.append(len(set().union(*seq)))
        reuse += [len(seq[i] & seq[i - 1]) / K for i in range(1, len(seq))]
    print("| %s, %d | %d | %.1f (%.0f%%) | %.1f (%.0f%%) | %.2f |" % (
        name, len(ps), K, sum(per_window) / len(per_window), 100 * sum(per_window) / len(per_window) / E,
        sum(whole) / L, 100 * sum(whole) / L / E, sum(reuse) / len(reuse)))
print()
print("Next-layer prediction (layer l + 1's router on layer l's hidden state vs the experts layer l + 1 then")
print("routed to; %d layer pairs). Per pass over its distinct experts, as the prefetcher asks: precision = predicted" % (L - 1))
print("and routed / predicted, recall = predicted and routed / routed (equal when each side has k experts):\n")
print("| tokens | predicted | routed | both | precision | recall | per-token overlap (of %d) |" % K)
print("|---|---|---|---|---|---|---|")
for name, ps in segments:
    # The prompt is prefilled in passes of up to 256 tokens (EngineOptions::prefill_chunk).
    passes = [ps[i:i + 256] for i in range(0, len(ps), 256)] if ps and ps[0] < prompt else [[p] for p in ps]
    pr = ro = both = 0
    overlap = []
    for group in passes:
        for l in range(1, L):
            want = set().union(*(predicted[l][p] for p in group))
            used = set().union(*(routed[l][p] for p in group))
            pr, ro, both = pr + len(want), ro + len(used), both + len(want & used)
            overlap += [len(set(predicted[l][p]) & set(routed[l][p])) for p in group]
    if pr:
        print("| %s | %d | %d | %d | %.3f | %.3f | %.2f |" % (name, pr, ro, both, both / pr, both / ro, sum(overlap) / len(overlap)))
print()
# The best hit rate any cache of the budget could reach on these accesses (Belady's MIN: evict the
# expert used again furthest in the future), each token's experts taken layer by layer as a decode
# step acquires them; the prompt's tokens as if decoded one by one. An upper bound for the runtime's
# cache (which also starts warm from the first of two runs).
print("Best possible hit rate at each budget (Belady's MIN on these accesses, cold start):\n")
budgets = (0.5, 0.25, 0.1)
print("| tokens | " + " | ".join("%d%% (%d experts)" % (100 * b, int(b * L * E)) for b in budgets) + " |")
print("|---|" + "---|" * len(budgets))
for name, ps in segments:
    seq = [(l, e) for p in ps for l in range(L) for e in sorted(routed[l][p])]
    nxt, last = [0] * len(seq), {}
    for i in range(len(seq) - 1, -1, -1):
        nxt[i] = last.get(seq[i], len(seq) + i)
        last[seq[i]] = i
    cells = []
    for b in budgets:
        cap, held, hits = int(b * L * E), {}, 0  # held: key -> its next use
        for i, key in enumerate(seq):
            if key in held:
                hits += 1
            elif len(held) >= cap:
                del held[max(held, key=held.get)]
            held[key] = nxt[i]
        cells.append("%.3f" % (hits / len(seq)))
    print("| %s | %s |" % (name.split(" (")[0] + ", %d" % len(ps), " | ".join(cells)))
PY
  printf '\n--stats of the traced run: %s\n' "$(grep 'next-layer' "$WORK/runs/$m.trace.err" | sed 's/^ *//')"

  # Budget x prefetch: the second (warm) of two runs.
  printf '\n| expert budget | prefetch | decode tok/s | vs 100%% | hit rate | MiB loaded | load s | prefill + decode s | loaded ahead (used) | predictions not loaded: cache full |\n'
  printf '|---|---|---|---|---|---|---|---|---|---|\n'
  ref='' notes=()
  for case in "100%" "100% --no-prefetch" "50%" "50% --no-prefetch" "25%" "25% --no-prefetch" "10%" "10% --no-prefetch" \
    "${TIER_CASES[@]}"; do
    flags=("${CHUNKS[@]}")
    [[ $case == *--no-prefetch ]] && flags+=(--no-prefetch)
    [[ $case == *tier ]] && flags=()
    "$HUBNODE" run "bench/$m" --tokens "$PROMPT" --max-tokens "$GEN" --ignore-eos --stats --repeat 2 \
      --runtime-threads "$THREADS" --expert-budget "${case%% *}" "${flags[@]}" > /dev/null 2> "$WORK/runs/$m.stats"
    first=$(grep -n '^\[' "$WORK/runs/$m.stats" | tail -1 | cut -d: -f1)
    line=$(sed -n "${first}p" "$WORK/runs/$m.stats")
    next=$(sed -n "$((first + 1))p" "$WORK/runs/$m.stats")
    # -> "DECODE TOTAL_S" (the reference, from the first row) | the table row | a note or nothing
    out=$(/usr/bin/python3 - "$case" "$line" "$next" "$ref" "$PROMPT_TOKENS" <<'PY'
import re, sys
case, line, nxt, ref, prompt = sys.argv[1:]
f = lambda pat, s=line: float(re.search(pat, s).group(1))
prefill = f(r"prompt \d+ tokens \(([0-9.]+) tok/s\)")
decode = f(r"generated \d+ tokens \(([0-9.]+) tok/s\)")
gen = f(r"generated (\d+) tokens")
hits, misses = f(r"experts: (\d+) hits"), f(r" (\d+) misses")
loaded, load_s = f(r" ([0-9.]+) MiB loaded"), f(r"MiB loaded in ([0-9.]+) s")
ahead = "%d (%d)" % (f(r"(\d+) loaded ahead", nxt), f(r"(\d+) of those used", nxt)) if "loaded ahead" in nxt else "-"
full = "%d" % f(r"(\d+) not loaded", nxt) if "not loaded" in nxt else "-"
total = int(prompt) / prefill + (gen - 1) / decode
ref_decode, ref_total = (float(x) for x in ref.split()) if ref else (decode, total)
budget, _, flag = case.partition(" ")
if flag == "tier":
    budget, flag = budget + ", expert tier (raw copies)", ""
row = "| %s | %s | %.1f | %.2f | %.3f | %.1f | %.2f | %.2f | %s | %s |" % (
    budget, "off" if flag else "on", decode, decode / ref_decode, hits / max(1, hits + misses), loaded, load_s, total,
    ahead, full)
note = ""
if flag and budget != "100%" and load_s > 0:  # without prefetch every load is a miss the step waits for
    note = ("%s without prefetch: %.2f s of the run's %.2f s were spent loading experts (%.0f%%: %.0f MiB read from "
            "the store, %.0f MiB/s, %.2f MiB per generated token); the rest took %.2f s (the 100%% run: %.2f s)." % (
            budget, load_s, total, 100 * load_s / total, loaded, loaded / load_s, loaded / gen, total - load_s, ref_total))
print("%s %s|%s|%s" % (decode, total, row, note))
PY
)
    [[ -z $ref ]] && ref=${out%%|*}
    row=${out#*|}
    echo "${row%|*}"
    [[ -n ${out##*|} ]] && notes+=("${out##*|}")
  done
  printf '\n'
  for n in "${notes[@]}"; do printf -- '- %s\n' "$n"; done
done
