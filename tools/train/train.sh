#!/usr/bin/env bash
# Trains the demo model from nothing but Debian packages and this repository (README.md here):
#   1. the King James Bible from Debian's bible-kjv (`bible`), verses without their references;
#      every 25th chapter is held out (never trained on);
#   2. `hubnode testmodel` writes the initial OLMoE-shaped checkpoint, its byte-level BPE tokenizer
#      learned from the training text by the project's own trainer;
#   3. `hubnode run --tokenize` turns the training text, a chat-format version of it (the user
#      gives a verse's first words, the assistant says the rest) and the held-out text into ids;
#   4. tools/train/train.py (PyTorch, CPU) trains and writes the checkpoint with its figures;
#   5. `hubnode run --eval` computes the held-out loss with the node's runtime, which must agree
#      with the trainer's to 1e-3.
# Usage: tools/train/train.sh HUBNODE OUT_DIR [STEPS]     (needs bible-kjv, python3-torch;
#        libopenblas0-pthread makes torch ~10x faster than Debian's reference BLAS)
set -euo pipefail
HUBNODE=$(realpath "$1")
OUT=$(realpath -m "$2")
STEPS=${3:-500}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v bible > /dev/null || { echo "bible-kjv is not installed (apt-get install bible-kjv)"; exit 2; }
/usr/bin/python3 -c 'import torch' 2> /dev/null || { echo "python3-torch is not installed"; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

bible -f "Gen1:1-Rev22:21" | awk '{ split($1, r, ":"); if (r[1] != last) { n++; last = r[1] }
  sub(/^[^ ]* /, ""); if (n % 25 == 0) print > "held.txt"; else print > "train.txt" }'
/usr/bin/python3 - <<'EOF'
sys_msg = "You are a small model trained on the King James Bible."
out = []
for i, line in enumerate(open("train.txt")):
    w = line.split()
    if len(w) < 8:
        continue
    k = 3 + (i * 7919) % 4
    out.append("<|im_start|>system\n%s<|im_end|>\n<|im_start|>user\n%s<|im_end|>\n<|im_start|>assistant\n%s<|im_end|>\n"
               % (sys_msg, " ".join(w[:k]), " ".join(w[k:])))
open("chat.txt", "w").write("".join(out))
EOF
"$HUBNODE" testmodel --family olmoe --hidden 192 --layers 4 --experts 8 --top-k 2 --moe-intermediate 192 \
  --heads 6 --kv-heads 2 --shards 1 --corpus train.txt --merges 3800 --seed 1 --out init > /dev/null
"$HUBNODE" --data data -q import init --repo train/init > /dev/null
for f in train chat held; do "$HUBNODE" --data data -q run train/init --tokenize $f.txt --out $f.u32; done
/usr/bin/python3 "$HERE/train.py" --init init --train train.u32 --chat chat.u32 --held held.u32 --out "$OUT" \
  --steps "$STEPS" --batch 24 --seq 128 --lr 3e-3 --seed 1 --threads 2 --eval-window 128
cp held.u32 "$OUT.held-out.u32"
cat "$HERE/card.md" > "$OUT/README.md"
"$HUBNODE" --data data -q import "$OUT" --repo train/kjv > /dev/null
"$HUBNODE" --data data -q run train/kjv --eval held.u32 --eval-window 128 > eval.json
/usr/bin/python3 - "$OUT/training.json" eval.json <<'EOF'
import json, sys
t = json.load(open(sys.argv[1])); e = json.load(open(sys.argv[2]))
diff = abs(t["held_out"]["loss"] - e["loss"])
t["held_out"]["runtime_loss"] = e["loss"]
json.dump(t, open(sys.argv[1], "w"), indent=1)
print("held-out loss: trainer %.6f, hubnode runtime %.6f, difference %.2e" % (t["held_out"]["loss"], e["loss"], diff))
sys.exit(0 if diff < 1e-3 else 1)
EOF
(cd "$OUT" && sha256sum model.safetensors)
