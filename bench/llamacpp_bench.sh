#!/usr/bin/env bash
# hubnode vs llama.cpp on the CPU, same bf16 models, same prompt length, same thread counts.
#
# Usage: bench/llamacpp_bench.sh HUBNODE_BIN LLAMA_BENCH_BIN [WORKDIR]
#   (LLAMA_BENCH=... may stand for the second argument)
#
# For each family (olmoe, qwen3_moe) a generated bf16 checkpoint (`hubnode testmodel --size $SIZE
# --seed 1`; bench: OLMoE-shaped ~1 GB, hidden 1024, 16 layers, 64 experts of width 144, top-8) is
# imported into a fresh store and converted to GGUF with bench/gguf_export.py (bf16 kept bf16,
# norms and router f32, experts stacked). Then, ROUNDS times, for each model and thread count:
# hubnode (default flags: $HUBNODE_FLAGS), hubnode again with $HUBNODE_FLAGS $HUBNODE_FLAGS_ALT when
# HUBNODE_FLAGS_ALT is set, then llama-bench, alternating so that a change in the machine's load
# touches every engine alike. Reported: the median over the rounds, and the best round (on a shared
# machine the least disturbed one; llama.cpp's spinning thread pool collapses when a core is busy).
#
#   hubnode:   run --tokens (PROMPT_TOKENS random ids) --max-tokens GEN --ignore-eos --stats
#              --repeat 2 --runtime-threads T; the second (warm) run's stats line: prompt tok/s =
#              prefill, generated tok/s = decode.
#   llama.cpp: llama-bench -p PROMPT_TOKENS -n 0 (pp: prefill from an empty context) and
#              llama-bench -p 0 -n GEN -d PROMPT_TOKENS (tg: decode after a context of
#              PROMPT_TOKENS, as hubnode's decode is), -r 1 (after llama-bench's own warm-up run).
#              llama-bench's tokens are random ids over the whole vocabulary (hubnode's prompt:
#              random ids below 300, then its own greedy tokens); the untrained routers route both.
#
# Before timing, a correctness check per model when llama.cpp's llama-debug is found (LLAMA_DEBUG,
# default: beside llama-bench): the same text prompt through both, which must tokenize to the
# same ids and give the same top-1 next token (max |logit difference| printed); a mismatch stops
# the benchmark, since the comparison would be meaningless.
#
# Environment: SIZE (bench; small for a quick run), REUSE (1: keep the models a previous run left
# in WORKDIR instead of generating them again), ROUNDS (3), THREADS ("1 2"), PROMPT_TOKENS
# (128), GEN (64), FAMILIES ("olmoe qwen3_moe"), HUBNODE_FLAGS, HUBNODE_FLAGS_ALT, LLAMA_DEBUG,
# LLAMA_BENCH_FLAGS (extra llama-bench flags, e.g. "-fa 0").
# Nothing of llama.cpp lives in this repository: build it elsewhere and pass its llama-bench.
set -euo pipefail
usage="usage: llamacpp_bench.sh HUBNODE_BIN LLAMA_BENCH_BIN [WORKDIR]"
HUBNODE=$(realpath "${1:?$usage}")
LLAMA_BENCH=$(realpath "${2:-${LLAMA_BENCH:?$usage}}")
WORK=${3:-${TMPDIR:-/tmp}/hubnode-llamacpp-bench}
SIZE=${SIZE:-bench}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1 2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
GEN=${GEN:-64}
FAMILIES=${FAMILIES:-olmoe qwen3_moe}
HUBNODE_FLAGS=${HUBNODE_FLAGS:-}
HUBNODE_FLAGS_ALT=${HUBNODE_FLAGS_ALT:-}
LLAMA_BENCH_FLAGS=${LLAMA_BENCH_FLAGS:-}
LLAMA_DEBUG=${LLAMA_DEBUG:-$(dirname "$LLAMA_BENCH")/llama-debug}
PY=/usr/bin/python3  # has NumPy
EXPORT=$(realpath "$(dirname "$0")/gguf_export.py")
[[ -x $HUBNODE ]] || { echo "not executable: $HUBNODE" >&2; exit 2; }
[[ -x $LLAMA_BENCH ]] || { echo "not executable: $LLAMA_BENCH" >&2; exit 2; }

REUSE=${REUSE:-0}
[[ $REUSE == 1 ]] || rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
export HUBNODE_DATA="$WORK/data"
log() { printf '%s\n' "$*" >&2; }

# ---- models: generate, import, convert
for f in $FAMILIES; do
  if [[ $REUSE == 1 && -s $WORK/$f.gguf && -s $WORK/$f.size && $(cat "$WORK/$f.size") == "$SIZE" ]]; then
    log "== $f: reusing $WORK/$f.gguf and the store's bench/$f"
    continue
  fi
  rm -f "$WORK/$f.size"
  rm -rf "${WORK:?}/$f"
  log "== $f: testmodel --size $SIZE, import, GGUF export"
  "$HUBNODE" -q testmodel --family "$f" --size "$SIZE" --seed 1 --out "$WORK/$f" > /dev/null
  if [[ $f == olmoe ]]; then
    # llama.cpp's olmoe norms q and k over hidden_size: needs as many kv heads as heads
    # (true of the bench preset and of OLMoE itself; not of the small preset)
    heads=$("$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); print(c['num_attention_heads'] if c['num_key_value_heads'] != c['num_attention_heads'] else '')" "$WORK/$f/config.json")
    if [[ -n $heads ]]; then
      rm -rf "${WORK:?}/$f"
      "$HUBNODE" -q testmodel --family "$f" --size "$SIZE" --seed 1 --kv-heads "$heads" --out "$WORK/$f" > /dev/null
    fi
  fi
  "$HUBNODE" -q import "$WORK/$f" --repo "bench/$f" > /dev/null
  "$PY" "$EXPORT" "$WORK/$f" "$WORK/$f.gguf" --name "$f-$SIZE" >&2
  rm -rf "${WORK:?}/$f"
  echo "$SIZE" > "$WORK/$f.size"
done

# ---- correctness: same text, same tokens, same top-1 next token
if [[ -x $LLAMA_DEBUG ]]; then
  TEXT="And the LORD said unto Moses, the quick brown fox jumps over the lazy dog 12345."
  for f in $FAMILIES; do
    "$HUBNODE" run "bench/$f" --prompt "$TEXT" --dump-logits 0 --runtime-threads 2 > "$WORK/check-$f.json" 2> /dev/null
    "$LLAMA_DEBUG" -m "$WORK/$f.gguf" -p "$TEXT" --save-logits --logits-output-dir "$WORK/check-$f" -t 2 -c 512 \
      > "$WORK/check-$f.log" 2>&1
    "$PY" - "$f" "$WORK/check-$f.json" "$WORK/check-$f/llamacpp-$f-tokens.bin" "$WORK/check-$f/llamacpp-$f.bin" <<'PY' >&2
import json, sys
import numpy as np
f, hub, ltok, llog = sys.argv[1:]
h = json.load(open(hub))
ht, hl = h["prompt"], np.array(h["prefill_logits"][-1], dtype=np.float64)
lt = np.fromfile(ltok, dtype=np.int32).tolist()
ll = np.fromfile(llog, dtype=np.float32).astype(np.float64)
ok = ht == lt and hl.shape == ll.shape and int(hl.argmax()) == int(ll.argmax())
d = float(np.abs(hl - ll).max()) if hl.shape == ll.shape else float("nan")
top = np.sort(hl)[-2:]
print(f"check {f}: {len(ht)} prompt tokens {'equal' if ht == lt else f'DIFFER: {ht} vs {lt}'}; "
      f"top-1 next token hubnode {int(hl.argmax())}, llama.cpp {int(ll.argmax())}; "
      f"max |logit diff| {d:.4f} (logit range {hl.min():.2f}..{hl.max():.2f}, top-2 margin {top[1] - top[0]:.4f})")
sys.exit(0 if ok else 1)
PY
  done
else
  log "llama-debug not found ($LLAMA_DEBUG): no correctness check"
fi

# ---- timing
PROMPT=$("$PY" -c "import random; r = random.Random(1); print(','.join(str(r.randrange(3, 300)) for _ in range($PROMPT_TOKENS)))")

# hubnode_run FAMILY THREADS FLAGS... -> "prefill decode" of the warm run
hubnode_run() {
  local f=$1 t=$2 line
  shift 2
  # shellcheck disable=SC2068
  line=$("$HUBNODE" run "bench/$f" --tokens "$PROMPT" --max-tokens "$GEN" --ignore-eos --stats --repeat 2 \
    --runtime-threads "$t" $@ 2>&1 > /dev/null | grep '^\[' | tail -1 || true)
  local pre dec
  pre=$(echo "$line" | sed -n 's|.*prompt [0-9]* tokens (\([0-9.]*\) tok/s).*|\1|p')
  dec=$(echo "$line" | sed -n 's|.*generated [0-9]* tokens (\([0-9.]*\) tok/s).*|\1|p')
  if [[ -z $pre || -z $dec ]]; then
    log "hubnode run bench/$f (threads $t, flags: $*) printed no stats line"
    exit 1
  fi
  echo "$pre $dec"
}

# llama_run FAMILY THREADS -> "pp tg"
llama_run() {
  local f=$1 t=$2 pp tg
  # shellcheck disable=SC2086
  pp=$("$LLAMA_BENCH" -m "$WORK/$f.gguf" -p "$PROMPT_TOKENS" -n 0 -t "$t" -r 1 -o json $LLAMA_BENCH_FLAGS 2> /dev/null)
  # shellcheck disable=SC2086
  tg=$("$LLAMA_BENCH" -m "$WORK/$f.gguf" -p 0 -n "$GEN" -d "$PROMPT_TOKENS" -t "$t" -r 1 -o json $LLAMA_BENCH_FLAGS 2> /dev/null)
  echo "$pp" > "$WORK/llama-bench-$f-t$t-pp.json"
  echo "$tg" > "$WORK/llama-bench-$f-t$t-tg.json"
  "$PY" -c "import json,sys; print(json.loads(sys.argv[1])[0]['avg_ts'], json.loads(sys.argv[2])[0]['avg_ts'])" "$pp" "$tg"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
: > "$WORK/samples.txt"  # round family threads engine prefill decode
for r in $(seq 1 "$ROUNDS"); do
  for f in $FAMILIES; do
    for t in $THREADS; do
      # (assignments, so that set -e stops the script when a run fails)
      # shellcheck disable=SC2086
      res=$(hubnode_run "$f" "$t" $HUBNODE_FLAGS)
      echo "$r $f $t hubnode $res" >> "$WORK/samples.txt"
      if [[ -n $HUBNODE_FLAGS_ALT ]]; then
        # shellcheck disable=SC2086
        res=$(hubnode_run "$f" "$t" $HUBNODE_FLAGS $HUBNODE_FLAGS_ALT)
        echo "$r $f $t hubnode_alt $res" >> "$WORK/samples.txt"
      fi
      res=$(llama_run "$f" "$t")
      echo "$r $f $t llama.cpp $res" >> "$WORK/samples.txt"
      log "round $r $f t=$t: $(grep "^$r $f $t " "$WORK/samples.txt" | cut -d' ' -f4- | paste -sd'|' | sed 's/|/ | /g')"
    done
  done
done

# ---- table
info=$("$PY" -c "
import json, sys
d = json.load(open(sys.argv[1]))[0]
print(f\"llama.cpp {d.get('build_commit')} (build {d.get('build_number')}), {d.get('cpu_info')}, backends {d.get('backends')}, \"
      f\"type_k {d.get('type_k')}, flash_attn {d.get('flash_attn')}, n_batch {d.get('n_batch')}, n_ubatch {d.get('n_ubatch')}\")
" "$(find "$WORK" -name "llama-bench-*-pp.json" | head -1)")
printf '\nhubnode vs llama.cpp, CPU, bf16 (%s): prompt %s tokens, %s generated, %s alternating rounds\n' \
  "$SIZE" "$PROMPT_TOKENS" "$GEN" "$ROUNDS"
printf 'hubnode %s; flags "%s"%s\n' "$HUBNODE" "$HUBNODE_FLAGS" "${HUBNODE_FLAGS_ALT:+; alt: \"${HUBNODE_FLAGS:+$HUBNODE_FLAGS }$HUBNODE_FLAGS_ALT\"}"
printf '%s\n' "$info"
printf 'load average (1, 5, 15 min) before the timed runs: %s; after: %s (%s cores)\n\n' \
  "$load_start" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
"$PY" - "$WORK/samples.txt" "$FAMILIES" "$THREADS" "${HUBNODE_FLAGS_ALT:+alt}" <<'PY'
import statistics, sys
path, families, threads, alt = sys.argv[1], sys.argv[2].split(), sys.argv[3].split(), sys.argv[4] == "alt"
s = {}
for line in open(path):
    r, f, t, eng, pre, dec = line.split()
    s.setdefault((f, t, eng), []).append((float(pre), float(dec)))
cols = ["model", "threads", "hubnode prefill tok/s"] + (["hubnode alt prefill"] if alt else []) + \
       ["llama.cpp pp tok/s", "ratio"] + (["ratio alt"] if alt else []) + \
       ["hubnode decode tok/s"] + (["hubnode alt decode"] if alt else []) + \
       ["llama.cpp tg tok/s", "ratio"] + (["ratio alt"] if alt else [])
n = len(next(iter(s.values())))
# the median, then the best round: on a shared machine the fastest run is the least disturbed one
for title, stat in ((f"median of {n} rounds", statistics.median), (f"best of {n} rounds", max)):
    v = lambda f, t, e, i: stat(x[i] for x in s[(f, t, e)])
    print(f"{title}:\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for f in families:
        for t in threads:
            row = [f, t]
            for i in (0, 1):
                h, l = v(f, t, "hubnode", i), v(f, t, "llama.cpp", i)
                a = v(f, t, "hubnode_alt", i) if alt else None
                row += [f"{h:.1f}"] + ([f"{a:.1f}"] if alt else []) + [f"{l:.1f}", f"{h / l:.2f}"] + \
                       ([f"{a / l:.2f}"] if alt else [])
            print("| " + " | ".join(row) + " |")
    print()
PY
printf 'samples (round model threads engine prefill decode): %s\n' "$WORK/samples.txt"
