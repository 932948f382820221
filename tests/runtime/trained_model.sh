#!/usr/bin/env bash
# The trained demo model (models/kjv-moe, trained by tools/train on the King James Bible): the
# node's runtime computes the same held-out loss as the trainer did (to 1e-3, on the held-out
# chapters it never trained on, models/kjv-moe.held-out.u32), the model has learned (held-out
# perplexity far under the vocabulary's 4096), and it completes a verse in words. Prints
# "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODEL=$ROOT/models/kjv-moe
HELD=$ROOT/models/kjv-moe.held-out.u32
[[ -f "$MODEL/model.safetensors" && -f "$HELD" ]] || { echo "SKIP: models/kjv-moe is not in this checkout"; exit 77; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source "$ROOT/tests/lib.sh"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }

check "the checkpoint is what tools/train wrote (SHA-256 in its card)" True \
  "$(grep -q "$(sha256sum "$MODEL/model.safetensors" | cut -c1-64)" "$MODEL/README.md" && echo True)"
hub import "$MODEL" --repo demo/kjv-moe > /dev/null
check "imports" 0 $?
EVAL=$(hub run demo/kjv-moe --eval "$HELD" --eval-window 128 --runtime-threads 2)
read -r RT TR PPL < <(/usr/bin/python3 -c '
import json, sys
e = json.loads(sys.argv[1]); t = json.load(open(sys.argv[2]))
print(e["loss"], t["held_out"]["loss"], e["perplexity"])' "$EVAL" "$MODEL/training.json")
echo "held-out loss: runtime $RT, trainer $TR (perplexity $PPL)"
check "held-out loss: the runtime agrees with the trainer to 1e-3" True \
  "$(/usr/bin/python3 -c "print(abs($RT - $TR) < 1e-3)")"
check "the model has learned: held-out perplexity under 100 (a uniform guess: 4096)" True \
  "$(/usr/bin/python3 -c "print($PPL < 100)")"
# The accuracy cost of holding the experts quantized (--expert-dtype; docs/runtime-quant.md),
# measured on the same held-out text: the loss moves (the conversion happened) and stays within
# bounds several times the measured cost (int8 +1.3e-5, fp8 +1.2e-4, int4 +2.9e-4).
for spec in int8:1e-3 fp8:3e-3 int4:1e-2; do
  ed=${spec%%:*} bound=${spec#*:}
  Q=$(hub run demo/kjv-moe --eval "$HELD" --eval-window 128 --runtime-threads 2 --expert-dtype "$ed" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["loss"])')
  echo "held-out loss with $ed experts: $Q (stored: $RT)"
  check "$ed experts: the loss moves, by less than $bound" True \
    "$(/usr/bin/python3 -c "print(0 < abs($Q - $RT) < $bound)")"
done
OUT=$(hub run demo/kjv-moe --chat --prompt "In the beginning" --max-tokens 24 --temperature 0 --runtime-threads 2)
echo "In the beginning -> $OUT"
check "it answers in words of its corpus" True \
  "$(/usr/bin/python3 -c "
import sys; w = sys.argv[1].split()
print(len(w) >= 4 and sum(x.strip('.,;:').isalpha() for x in w) >= 0.8 * len(w))" "$OUT")"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
