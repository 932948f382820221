#!/usr/bin/env bash
# hubnode's forward pass against the float64 NumPy reference (tests/runtime/reference.py) on
# generated models of every supported family, dtype and RoPE variant: the logits of every prompt
# position and of 16 greedy decode steps within a relative tolerance, and identical greedy tokens.
# The model is read from the store (imported first), as `serve` reads it. Each model runs in every
# --matmul-precision this CPU has: fp32 and bf16x2 (AMX) within the tolerance (1e-4) with identical
# greedy tokens; bf16 (activations rounded to bf16, a stated option) is measured, not held to a
# bound: its ~4e-3 error per product can flip a near-tie in a router's top-k (on these random
# routers: a logit row off by up to ~0.9), so only finite logits are required and the error printed.
# Usage: [ONLY=regex] logits_test.sh HUBNODE
set -euo pipefail
BIN=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export HUBNODE_DATA="$WORK/data"
PY=/usr/bin/python3
PROMPT=3,17,42,99,5,63,120,7,88,31,2,150
pass=0 fail=0

# name family size dtype config-edit(JSON merged into config.json, or -) [testmodel options...]
check() {
  local name=$1 family=$2 size=$3 dtype=$4 edit=$5
  shift 5
  [[ -n "${ONLY:-}" && ! $name =~ $ONLY ]] && return 0  # ONLY=regex: a subset, while developing
  local dir="$WORK/$name"
  "$BIN" testmodel --out "$dir" --family "$family" --size "$size" --dtype "$dtype" --seed 7 "$@" > /dev/null
  if [[ "$edit" != "-" ]]; then
    $PY "$HERE/edit_config.py" "$dir/config.json" "$edit"
  fi
  "$BIN" -q import "$dir" --repo "test/$name" > /dev/null
  $PY "$HERE/reference.py" "$dir" --tokens "$PROMPT" --decode 16 > "$WORK/$name.ref.json"
  for prec in "${PRECISIONS[@]}"; do
    "$BIN" run "test/$name" --tokens "$PROMPT" --dump-logits 16 --runtime-threads 2 --matmul-precision "$prec" \
      > "$WORK/$name.$prec.json"
    local args=()
    [[ $prec == bf16 ]] && args=(--tol 1e30 --tokens-may-differ)
    if out=$($PY "$HERE/compare_logits.py" "$WORK/$name.ref.json" "$WORK/$name.$prec.json" "${args[@]}"); then
      echo "PASS $name ($prec): $out"
      pass=$((pass + 1))
    else
      echo "FAIL $name ($prec): $out"
      fail=$((fail + 1))
    fi
  done
}

# The precisions this CPU runs (a bf16 one it lacks falls back to fp32: `run --stats` names it).
PRECISIONS=(fp32)
"$BIN" testmodel --out "$WORK/probe" --family llama --size tiny --seed 1 > /dev/null
"$BIN" -q import "$WORK/probe" --repo test/probe > /dev/null
for prec in bf16x2 bf16; do
  if "$BIN" run test/probe --tokens 1,2 --max-tokens 1 --stats --matmul-precision "$prec" 2>&1 >/dev/null |
    grep -q "amx-$prec"; then
    PRECISIONS+=("$prec")
  else
    echo "note: --matmul-precision $prec needs AMX-BF16, which this CPU lacks: not tested"
  fi
done

check mixtral mixtral tiny bf16 -
check qwen2_moe qwen2_moe tiny bf16 -
check qwen3_moe qwen3_moe tiny bf16 -
check olmoe olmoe tiny bf16 -
check llama llama tiny bf16 -
check qwen2 qwen2 tiny fp16 -
check qwen3 qwen3 tiny fp32 -
check olmoe_small olmoe small bf16 -
check qwen2_moe_small qwen2_moe small fp16 -
check mixtral_window mixtral tiny bf16 '{"sliding_window": 5}'
check llama_linear llama tiny bf16 '{"rope_scaling": {"type": "linear", "factor": 2.0}}'
check llama3_rope llama tiny bf16 '{"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}'
check llama_dynamic llama tiny bf16 '{"max_position_embeddings": 16, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0}}'
check qwen3_yarn qwen3 tiny bf16 '{"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 8}}'
check olmoe_norm_topk olmoe tiny bf16 '{"norm_topk_prob": true}'
# DeepSeek (docs/deepseek.md): V2 without q-LoRA, softmax, group-limited greedy, 2 shared experts,
# YaRN mscale 0.707; V3 with q-LoRA, sigmoid, noaux_tc with e_score_correction_bias, normalised
# weights times 2.5; both MLA over the compressed cache, one dense layer first, 8 experts in 4
# groups. FP8: DeepSeek-V3's release layout (F8_E4M3 + weight_scale_inv per 128 x 128 block).
check deepseek_v2 deepseek_v2 tiny bf16 -
check deepseek_v3 deepseek_v3 tiny bf16 -
check deepseek_v3_fp8 deepseek_v3 tiny fp8 -
check deepseek_v2_fp8 deepseek_v2 tiny fp8 -
# nope = v = kv_lora_rank = 128, as V3's multiples of 128: kv_b's absorbed halves stay FP8 blocks.
check deepseek_v3_fp8_blocks deepseek_v3 tiny fp8 - --hidden 256 --heads 2
check deepseek_v3_halves deepseek_v3 tiny bf16 '{"rope_interleave": false}'
check deepseek_v3_greedy deepseek_v3 tiny bf16 '{"topk_method": "greedy"}'
check deepseek_v2_greedy deepseek_v2 tiny bf16 '{"topk_method": "greedy"}'
check deepseek_v2_norm deepseek_v2 tiny bf16 '{"norm_topk_prob": true}'

# The routing is really read: the same weights with another topk_method give other logits.
differs() {
  [[ -n "${ONLY:-}" && ! $1 =~ $ONLY ]] && return 0
  if $PY - "$WORK/$1.fp32.json" "$WORK/$2.fp32.json" <<'PYEOF'
import json, sys
import numpy as np
a, b = (json.load(open(p)) for p in sys.argv[1:3])
x = np.array(a["prefill_logits"]); y = np.array(b["prefill_logits"])
d = float(np.max(np.abs(x - y)) / np.max(np.abs(y)))
print("relative difference %.3g" % d)
sys.exit(0 if d > 1e-3 else 1)
PYEOF
  then
    echo "PASS $1 vs $2 differ"
    pass=$((pass + 1))
  else
    echo "FAIL $1 vs $2: the topk_method change did not change the logits"
    fail=$((fail + 1))
  fi
}
differs deepseek_v3 deepseek_v3_greedy
differs deepseek_v2 deepseek_v2_greedy
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
