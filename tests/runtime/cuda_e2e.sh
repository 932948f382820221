#!/usr/bin/env bash
# The CUDA backend end to end on a device, through the same `hubnode` commands users run (the op-by-op
# comparison with the CPU is cuda_backend_test's; this one checks whole models, the scheduler and
# the API on the device):
#  (a) logits: every model of logits_test.sh (each family, dtype, RoPE variant, DeepSeek's MLA,
#      routing methods and FP8 layouts) run with --backend cuda against the float64 NumPy reference
#      (reference.py): every prompt position and 16 greedy steps within the tolerance logits_test
#      holds fp32 and bf16x2 to (1e-4), and identical greedy tokens. A GPU kernel must therefore
#      keep fp32 activations (bf16 weights widened, fp32 accumulation; no TF32, no bf16-rounded
#      activations): bf16 activations cost ~4e-3 per product (logits_test.sh measures it on the CPU)
#      and TF32 ~1e-3. CUDA_TOL=... runs with a looser bound (printed), e.g. while a kernel is
#      being brought up.
#  (b) medium-sized models (more layers, experts and a longer decode than (a)): greedy text of
#      `run` (the scheduler's path) and 32 greedy steps of `--dump-logits` from --backend cuda equal
#      to --backend cpu --matmul-precision fp32 (tokens identical, logits within the same tolerance).
#  (c) the OpenAI API served from the GPU: `serve --backend cuda` on 127.0.0.1 (port 0); greedy
#      /v1/completions (token-id prompt) and /v1/chat/completions equal to `run --backend cpu`;
#      8 concurrent greedy completions (decoded in one batch on the device) each equal to its CPU
#      run; /v1/models reports the loaded model's backend as cuda/….
#  (d) --gpu-expert-budget 25% (experts evicted from and reloaded into GPU memory) gives the same
#      greedy text as 100%, and its warm run really misses (else the budget was not applied).
# Without a device it prints "SKIP: <reason>" and exits 77 (ctest's SKIP_RETURN_CODE) after a
# probe of a tiny model (about a second). Prints PASS/FAIL lines and "N passed, M failed".
# Usage: [ONLY=regex] [CUDA_TOL=1e-4] [CUDA_FLAGS="..."] cuda_e2e.sh HUBNODE
#   ONLY: a subset of the checks by name, while developing; CUDA_FLAGS: extra flags for every
#   --backend cuda command (e.g. "--matmul-precision fp32").
set -euo pipefail
BIN=$(realpath "${1:?usage: cuda_e2e.sh HUBNODE}")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
SERVER=
trap '[[ -n "$SERVER" ]] && kill "$SERVER" 2> /dev/null; rm -rf "$WORK"' EXIT
export HUBNODE_DATA="$WORK/data"
# A python3 with NumPy (on the device image it is the one first on PATH, not /usr/bin/python3).
if [[ -z ${PY:-} ]]; then
  for PY in /usr/bin/python3 python3; do "$PY" -c 'import numpy' 2> /dev/null && break; done
fi
# HTTP through Python (the device image may have no curl): http URL [JSON-BODY] -> the body.
http() {
  $PY - "$@" <<'PYEOF'
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode() if len(sys.argv) > 2 else None,
                             headers={"Content-Type": "application/json"})
sys.stdout.write(urllib.request.urlopen(req, timeout=120).read().decode())
PYEOF
}
PROMPT=3,17,42,99,5,63,120,7,88,31,2,150
TOL=${CUDA_TOL:-1e-4}
# shellcheck disable=SC2206  # CUDA_FLAGS is a list of words
CUDA=(--backend cuda ${CUDA_FLAGS:-})
CPU=(--backend cpu --matmul-precision fp32)
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
want() { [[ -z "${ONLY:-}" || $1 =~ $ONLY ]]; }  # ONLY=regex: a subset, while developing

# model NAME FAMILY SIZE DTYPE CONFIG-EDIT(JSON merged into config.json, or -) [testmodel options...]:
# generated and imported as test/NAME.
model() {
  local name=$1 family=$2 size=$3 dtype=$4 edit=$5
  shift 5
  "$BIN" testmodel --out "$WORK/$name" --family "$family" --size "$size" --dtype "$dtype" --seed 7 "$@" > /dev/null
  if [[ "$edit" != "-" ]]; then
    $PY "$HERE/edit_config.py" "$WORK/$name/config.json" "$edit"
  fi
  "$BIN" -q import "$WORK/$name" --repo "test/$name" > /dev/null
}

# The device: a tiny model's first token on --backend cuda. Without one (or in a build without
# CUDA) the run fails naming why; any other failure is a failure of this test.
model probe llama tiny bf16 -
if ! "$BIN" run test/probe --tokens 1,2 --max-tokens 1 --stats "${CUDA[@]}" > /dev/null 2> "$WORK/probe.err"; then
  if why=$(grep -m1 -e 'no CUDA device' -e 'built without CUDA' "$WORK/probe.err"); then
    echo "SKIP: $why"
    exit 77
  fi
  echo "FAIL device probe: hubnode run --backend cuda failed:"
  cat "$WORK/probe.err"
  exit 1
fi
backend=$(grep '^\[' "$WORK/probe.err" | sed 's/.*; //' || true)
echo "device: $backend"
# --backend cuda must run on the device, never fall back to the CPU quietly.
if [[ $backend == cuda/* ]]; then ok "--backend cuda runs on the device ($backend)"; else bad "--backend cuda ran on [$backend]"; fi

# (a) Logits against the reference: the cases of logits_test.sh.
logits() {
  local name=$1
  want "logits_$name" || return 0
  model "$@"
  $PY "$HERE/reference.py" "$WORK/$name" --tokens "$PROMPT" --decode 16 > "$WORK/$name.ref.json"
  if ! "$BIN" run "test/$name" --tokens "$PROMPT" --dump-logits 16 "${CUDA[@]}" > "$WORK/$name.cuda.json" 2> "$WORK/$name.err"; then
    bad "logits $name (cuda): run failed: $(tail -3 "$WORK/$name.err")"
    return 0
  fi
  if out=$($PY "$HERE/compare_logits.py" "$WORK/$name.ref.json" "$WORK/$name.cuda.json" --tol "$TOL"); then
    ok "logits $name (cuda, tol $TOL): $out"
  else
    bad "logits $name (cuda, tol $TOL): $out"
  fi
}
logits mixtral mixtral tiny bf16 -
logits qwen2_moe qwen2_moe tiny bf16 -
logits qwen3_moe qwen3_moe tiny bf16 -
logits olmoe olmoe tiny bf16 -
logits llama llama tiny bf16 -
logits qwen2 qwen2 tiny fp16 -
logits qwen3 qwen3 tiny fp32 -
logits olmoe_small olmoe small bf16 -
logits qwen2_moe_small qwen2_moe small fp16 -
logits mixtral_window mixtral tiny bf16 '{"sliding_window": 5}'
logits llama_linear llama tiny bf16 '{"rope_scaling": {"type": "linear", "factor": 2.0}}'
logits llama3_rope llama tiny bf16 '{"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}'
logits llama_dynamic llama tiny bf16 '{"max_position_embeddings": 16, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}'
logits qwen3_yarn qwen3 tiny bf16 '{"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}}'
logits olmoe_norm_topk olmoe tiny bf16 '{"norm_topk_prob": true}'
logits deepseek_v2 deepseek_v2 tiny bf16 -
logits deepseek_v3 deepseek_v3 tiny bf16 -
logits deepseek_v3_fp8 deepseek_v3 tiny fp8 -
logits deepseek_v2_fp8 deepseek_v2 tiny fp8 -
logits deepseek_v3_fp8_blocks deepseek_v3 tiny fp8 - --hidden 256 --heads 2
logits deepseek_v3_halves deepseek_v3 tiny bf16 '{"rope_interleave": false}'
logits deepseek_v3_greedy deepseek_v3 tiny bf16 '{"topk_method": "greedy"}'
logits deepseek_v2_greedy deepseek_v2 tiny bf16 '{"topk_method": "greedy"}'
logits deepseek_v2_norm deepseek_v2 tiny bf16 '{"norm_topk_prob": true}'

# (b) Medium models, cuda against the CPU in fp32: the generated text (the scheduler's path) and
# 32 greedy steps of logits.
LONG=$($PY -c "import random; r = random.Random(3); print(','.join(str(r.randrange(3, 300)) for _ in range(40)))")
greedy() {
  local name=$1
  want "greedy_$name" || return 0
  model "$@"
  local c g
  c=$("$BIN" run "test/$name" --tokens "$LONG" --max-tokens 48 --ignore-eos "${CPU[@]}" 2> "$WORK/$name.err") || true
  if ! g=$("$BIN" run "test/$name" --tokens "$LONG" --max-tokens 48 --ignore-eos "${CUDA[@]}" 2>> "$WORK/$name.err") || [[ -z "$c" ]]; then
    bad "greedy text $name: a run failed: $(tail -3 "$WORK/$name.err")"
  elif [[ "$c" == "$g" ]]; then
    ok "greedy text $name: 48 tokens, cuda = cpu fp32"
  else
    bad "greedy text $name: cuda [$g] != cpu fp32 [$c]"
  fi
  "$BIN" run "test/$name" --tokens "$LONG" --dump-logits 32 "${CPU[@]}" > "$WORK/$name.cpu.json" 2> /dev/null || true
  "$BIN" run "test/$name" --tokens "$LONG" --dump-logits 32 "${CUDA[@]}" > "$WORK/$name.cuda.json" 2> /dev/null || true
  if out=$($PY "$HERE/compare_logits.py" "$WORK/$name.cpu.json" "$WORK/$name.cuda.json" --tol "$TOL" 2>&1); then
    ok "greedy logits $name (cuda vs cpu fp32, tol $TOL): $out"
  else
    bad "greedy logits $name (cuda vs cpu fp32, tol $TOL): $(tail -3 <<< "$out")"
  fi
}
greedy olmoe_medium olmoe medium bf16 -
greedy qwen3_moe_medium qwen3_moe medium bf16 -
greedy qwen2_moe_medium qwen2_moe medium bf16 -
greedy llama_medium llama medium bf16 -
greedy deepseek_v3_medium deepseek_v3 medium bf16 -
greedy deepseek_v3_fp8_small deepseek_v3 small fp8 -

# (c) The OpenAI API served from the device, against `run` on the CPU (run first: serve holds the
# store's lock).
if want serve; then
  [[ -d "$WORK/olmoe_medium" ]] || model olmoe_medium olmoe medium bf16 -
  M=test/olmoe_medium
  "$BIN" run $M --tokens "$LONG" --max-tokens 32 --ignore-eos "${CPU[@]}" > "$WORK/single.cpu" 2> /dev/null || true
  "$BIN" run $M --chat --prompt "Hello there" --max-tokens 16 "${CPU[@]}" > "$WORK/chat.cpu" 2> /dev/null || true
  for i in $(seq 8); do
    $PY -c "import random; r = random.Random($i); print(','.join(str(r.randrange(3, 300)) for _ in range(8 + 4 * $i)))" > "$WORK/batch$i.prompt"
    "$BIN" run $M --tokens "$(cat "$WORK/batch$i.prompt")" --max-tokens 24 --ignore-eos "${CPU[@]}" > "$WORK/batch$i.cpu" 2> /dev/null || true
  done
  "$BIN" serve --listen 127.0.0.1:0 --max-batch 8 "${CUDA[@]}" > "$WORK/serve.out" 2> "$WORK/serve.err" &
  SERVER=$!
  for _ in $(seq 600); do
    grep -q serving "$WORK/serve.out" && break
    kill -0 "$SERVER" 2> /dev/null || break  # it exited: serve.err says why
    sleep 0.05
  done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/serve.out")
  # complete PROMPT-IDS MAX-TOKENS -> the greedy text of /v1/completions
  complete() {
    http "$U/v1/completions" "{\"model\":\"$M\",\"prompt\":[$1],\"max_tokens\":$2,\"ignore_eos\":true,\"temperature\":0}" |
      $PY -c 'import json, sys; print(json.load(sys.stdin)["choices"][0]["text"])'
  }
  # same NAME CUDA-FILE CPU-FILE: a check that the two texts are equal (and the CPU's not empty)
  same() {
    if [[ -s "$3" && "$(cat "$2")" == "$(cat "$3")" ]]; then ok "serve: $1"; else bad "serve: $1: cuda [$(cat "$2")] != cpu [$(cat "$3")]"; fi
  }
  if [[ -z "$U" ]]; then
    bad "serve --backend cuda did not start: $(tail -3 "$WORK/serve.err")"
  else
    complete "$LONG" 32 > "$WORK/single.cuda" 2>&1 || true
    same "/v1/completions = run --backend cpu" "$WORK/single.cuda" "$WORK/single.cpu"
    http "$U/v1/chat/completions" "{\"model\":\"$M\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}],\"max_tokens\":16,\"temperature\":0}" |
      $PY -c 'import json, sys; print(json.load(sys.stdin)["choices"][0]["message"]["content"])' > "$WORK/chat.cuda" 2>&1 || true
    same "/v1/chat/completions = run --chat --backend cpu" "$WORK/chat.cuda" "$WORK/chat.cpu"
    # 8 concurrent requests (decoded together on the device), each with its own prompt.
    clients=()
    for i in $(seq 8); do
      complete "$(cat "$WORK/batch$i.prompt")" 24 > "$WORK/batch$i.cuda" 2>&1 &
      clients+=($!)
    done
    wait "${clients[@]}" || true
    for i in $(seq 8); do same "concurrent request $i of 8 = its run --backend cpu" "$WORK/batch$i.cuda" "$WORK/batch$i.cpu"; done
    reported=$(http "$U/v1/models" | $PY -c "
import json, sys
d = {m['id']: m for m in json.load(sys.stdin)['data']}
print(d['$M'].get('hubnode', {}).get('backend', 'none'))" || true)
    if [[ $reported == cuda/* ]]; then ok "serve: /v1/models reports backend $reported"; else bad "serve: /v1/models reports backend [$reported], not cuda/…"; fi
  fi
  kill "$SERVER" 2> /dev/null || true
  wait "$SERVER" 2> /dev/null || true
  SERVER=
fi

# (d) An expert budget in GPU memory below the experts used: same greedy text, real misses.
if want budget; then
  [[ -d "$WORK/olmoe_medium" ]] || model olmoe_medium olmoe medium bf16 -
  # budget PCT -> "TEXT|WARM-MISSES": the text of two identical runs and the second run's misses
  budget() {
    local out
    out=$("$BIN" run test/olmoe_medium --tokens "$LONG" --max-tokens 48 --ignore-eos --stats --repeat 2 \
      --raw-cache-size 0 --gpu-expert-budget "$1" "${CUDA[@]}" 2> "$WORK/budget$1.err") || return 1
    echo "$out|$(grep '^\[' "$WORK/budget$1.err" | tail -1 | sed -n 's|.* \([0-9]*\) misses.*|\1|p')"
  }
  full=$(budget 100%) || full="failed: $(tail -2 "$WORK/budget100%.err")"
  quarter=$(budget 25%) || quarter="failed: $(tail -2 "$WORK/budget25%.err")"
  echo "  100%: $(grep '^\[' "$WORK/budget100%.err" | tail -1)"
  echo "  25%:  $(grep '^\[' "$WORK/budget25%.err" | tail -1)"
  if [[ "${full%|*}" == "${quarter%|*}" && "$full" == *"|"* ]]; then
    ok "--gpu-expert-budget 25% gives the greedy text of 100%"
  else
    bad "--gpu-expert-budget 25% [${quarter%|*}] != 100% [${full%|*}]"
  fi
  if [[ "${quarter##*|}" =~ ^[0-9]+$ && ${quarter##*|} -gt 0 && "${full##*|}" == 0 ]]; then
    ok "--gpu-expert-budget 25%: the warm run misses (${quarter##*|} misses; 100%: 0)"
  else
    bad "--gpu-expert-budget 25%: warm misses [${quarter##*|}], 100%: [${full##*|}] (want > 0 and 0: was the budget applied?)"
  fi
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
