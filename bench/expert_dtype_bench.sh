#!/usr/bin/env bash
# Experts held quantized (`--expert-dtype`, issue 20): for bf16 (as stored), fp8, int8 and int4,
# the bytes of all experts as held, experts per GiB of budget, the held-out loss of both trained
# models (the accuracy cost), and decode speed at 100% and 25% expert budget. A budget is a share
# of the checkpoint's expert bytes (bf16), whatever dtype the cache holds them in: at 25% an int4
# cache holds ~80% of the experts. Decode figures alternate the cases in ROUNDS rounds (the VM is
# noisy) and report each case's median and its ratio to the median of bf16 at 100%; each run is
# the warm second of `--repeat 2`, the expert tier on (bench/expert_bench.sh's model and method).
# Usage: bench/expert_dtype_bench.sh HUBNODE_BIN [WORKDIR]   (WORKDIR default bench/out-expert,
#   which must hold the bench model bench/expert_bench.sh trained)
#   env: THREADS (nproc), PROMPT_TOKENS (256), GEN (128), ROUNDS (3), EVAL_TOKENS (8192),
#        SKIP_TRAINED=1 (only the DeepSeek table), SKIP_DEEPSEEK=1 (only the trained model's)
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: expert_dtype_bench.sh HUBNODE_BIN [WORKDIR]}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(realpath "${2:-$ROOT/bench/out-expert}")
THREADS=${THREADS:-$(nproc)} PROMPT_TOKENS=${PROMPT_TOKENS:-256} GEN=${GEN:-128} ROUNDS=${ROUNDS:-3}
EVAL_TOKENS=${EVAL_TOKENS:-8192}
BENCH_DIR=$WORK/trained/kjv-olmoe-h384-l8-e64x128-k8-s300
[[ -f $BENCH_DIR/training.json ]] || { echo "no bench model in $BENCH_DIR: run bench/expert_bench.sh first" >&2; exit 2; }
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
export HUBNODE_DATA=$DATA
"$HUBNODE" -q import "$ROOT/models/kjv-moe" --repo bench/kjv-moe > /dev/null
"$HUBNODE" -q import "$BENCH_DIR" --repo bench/bench > /dev/null
HELD=$ROOT/models/kjv-moe.held-out.u32
head -c $((4 * EVAL_TOKENS)) "$BENCH_DIR.held-out.u32" > "$DATA/bench.held-out.u32"
PROMPT=$(/usr/bin/python3 -c '
import struct, sys
n = int(sys.argv[2]); data = open(sys.argv[1], "rb").read(4 * n)
print(",".join(str(i) for i in struct.unpack("<%dI" % (len(data) // 4), data)))' "$HELD" "$PROMPT_TOKENS")
DTYPES=(stored fp8 int8 int4)

# decode_table REPO PROMPT CASE... : the alternating rounds and the table (ratios to the first case).
decode_table() {
  local repo=$1 prompt=$2
  shift 2
  local cases=("$@") c r line
  local -A runs=()
  for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${cases[@]}"; do
      "$HUBNODE" run "$repo" --tokens "$prompt" --max-tokens "$GEN" --ignore-eos --stats --repeat 2 \
        --runtime-threads "$THREADS" --expert-dtype "${c% *}" --expert-budget "${c#* }" > /dev/null 2> "$DATA/stats"
      line=$(grep '^\[' "$DATA/stats" | tail -1)
      runs[$c]+="$(/usr/bin/python3 -c '
import re, sys; s = sys.argv[1]
f = lambda p: re.search(p, s).group(1)
print("%s/%s/%s/%s" % (f(r"generated \d+ tokens \(([0-9.]+) tok/s\)"), f(r"experts: (\d+) hits"), f(r" (\d+) misses"), f(r"([0-9.]+) MiB loaded")))' "$line") "
    done
  done
  printf '\n| experts held as | budget | decode tok/s (median) | all rounds | vs %s | hits, misses | MiB loaded |\n|---|---|---|---|---|---|---|\n' "${cases[0]}"
  for c in "${cases[@]}"; do printf '%s=%s\n' "$c" "${runs[$c]}"; done | /usr/bin/python3 -c '
import statistics, sys
rows = [l.rstrip("\n").split("=", 1) for l in sys.stdin]
med = lambda runs: statistics.median(float(x.split("/")[0]) for x in runs.split())
ref = med(rows[0][1])
for c, runs in rows:
    rs = [x.split("/") for x in runs.split()]
    dt, budget = c.split()
    print("| %s | %s | %.1f | %s | **%.2f** | %s, %s | %s |" % (dt, budget, med(runs), ", ".join("%.0f" % float(x[0]) for x in rs),
          med(runs) / ref, rs[-1][1], rs[-1][2], rs[-1][3]))'
}

printf '\n# Quantized experts: bench/expert_dtype_bench.sh (%s threads, prompt %s held-out tokens, %s generated, %s rounds)\n\n' \
  "$THREADS" "$PROMPT_TOKENS" "$GEN" "$ROUNDS"
if [[ ${SKIP_TRAINED:-0} != 1 ]]; then
printf '| experts held as | all experts (bench model) | experts per GiB | kjv-moe held-out loss (all %s) | bench model held-out loss (first %s tokens) |\n|---|---|---|---|---|\n' \
  "$(($(stat -c %s "$HELD") / 4))" "$EVAL_TOKENS"
for dt in "${DTYPES[@]}"; do
  loss_k=$("$HUBNODE" -q run bench/kjv-moe --eval "$HELD" --eval-window 128 --runtime-threads "$THREADS" --expert-dtype "$dt")
  loss_b=$("$HUBNODE" -q run bench/bench --eval "$DATA/bench.held-out.u32" --eval-window 128 --runtime-threads "$THREADS" \
    --expert-dtype "$dt")
  stats=$("$HUBNODE" run bench/bench --tokens 1,2 --max-tokens 1 --stats --runtime-threads "$THREADS" --expert-dtype "$dt" 2>&1 >/dev/null | grep '^\[')
  /usr/bin/python3 - "$dt" "$loss_k" "$loss_b" "$stats" "$BENCH_DIR/config.json" <<'PY'
import json, re, sys
dt, lk, lb, stats, cfg = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], json.load(open(sys.argv[5]))
mib = float(re.search(r"of ([0-9.]+) MiB", stats).group(1))
n = cfg["num_hidden_layers"] * cfg["num_experts"]
print("| %s | %.1f MiB | %.0f | %.6f | %.6f |" % ("bf16 (stored)" if dt == "stored" else dt, mib, n / (mib / 1024), lk["loss"], lb["loss"]))
PY
done

decode_table bench/bench "$PROMPT" "stored 100%" "stored 25%" "fp8 25%" "int8 25%" "int4 25%" "fp8 100%" "int8 100%" "int4 100%"
fi

# DeepSeek-V3 as released (float8 experts with 128 x 128 scales), generated by testmodel: medium
# size (hidden 512, 9 layers, the first dense, 16 routed experts of 384 + 1 shared, top-4, MLA),
# untrained (its router spreads tokens over all experts). Budgets are shares of the float8 bytes.
if [[ ${SKIP_DEEPSEEK:-0} != 1 ]]; then
  "$HUBNODE" testmodel --out "$DATA/dsv3" --family deepseek_v3 --size medium --dtype fp8 --seed 3 > /dev/null
  "$HUBNODE" -q import "$DATA/dsv3" --repo bench/dsv3 > /dev/null
  DS_PROMPT=$(/usr/bin/python3 -c 'print(",".join(str(7 + (i * 37) % 600) for i in range(128)))')
  printf '\n## deepseek_v3 (generated, medium, float8 release layout; prompt 128 tokens)\n'
  for dt in stored bf16 int8 int4; do
    stats=$("$HUBNODE" run bench/dsv3 --tokens 1,2 --max-tokens 1 --stats --runtime-threads "$THREADS" --expert-dtype "$dt" 2>&1 >/dev/null | grep '^\[')
    printf -- '- experts held as %s: %s\n' "$dt" "$(grep -o 'of [0-9.]* MiB ([a-z0-9]*)' <<< "$stats")"
  done
  decode_table bench/dsv3 "$DS_PROMPT" "stored 100%" "stored 25%" "int8 25%" "int4 25%" "bf16 100%" "int8 100%" "int4 100%"
fi
