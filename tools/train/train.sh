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
# Usage: tools/train/train.sh HUBNODE OUT_DIR [STEPS] [SHAPE AND TRAINING OPTIONS]
#   STEPS defaults to 500. Without options it trains models/kjv-moe's shape with its recipe; the
#   options train another shape on the same text (bench/expert_bench.sh's larger model):
#     --hidden 192 --layers 4 --experts 8 --top-k 2 --moe-intermediate 192 --heads 6 --kv-heads 2
#     --batch 24 --seq 128 --lr 3e-3 --threads 2          (the defaults: kjv-moe's)
#   Needs bible-kjv and python3-torch. Debian's torch calls the reference BLAS (~3 GFLOPS here):
#   train.py runs with OpenBLAS (Debian's libopenblas0-pthread, ~10x faster) taken from an
#   installed copy, or else fetched with `apt-get download` and unpacked into the work directory
#   for train.py alone; nothing is installed, so no other program's libblas.so.3 changes
#   (README.md: numpy's float64 went wrong with OpenBLAS installed). NO_OPENBLAS=1: reference BLAS.
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: train.sh HUBNODE OUT_DIR [STEPS] [--hidden N ...]}")
OUT=$(realpath -m "${2:?usage: train.sh HUBNODE OUT_DIR [STEPS] [--hidden N ...]}")
shift 2
STEPS=500
if [[ $# -gt 0 && $1 != --* ]]; then STEPS=$1; shift; fi
HIDDEN=192 LAYERS=4 EXPERTS=8 TOP_K=2 MOE_INTER=192 HEADS=6 KV_HEADS=2 BATCH=24 SEQ=128 LR=3e-3 THREADS=2
while [[ $# -gt 0 ]]; do
  [[ $# -ge 2 ]] || { echo "train.sh: $1 needs a value" >&2; exit 2; }
  case $1 in
    --hidden) HIDDEN=$2 ;; --layers) LAYERS=$2 ;; --experts) EXPERTS=$2 ;; --top-k) TOP_K=$2 ;;
    --moe-intermediate) MOE_INTER=$2 ;; --heads) HEADS=$2 ;; --kv-heads) KV_HEADS=$2 ;;
    --batch) BATCH=$2 ;; --seq) SEQ=$2 ;; --lr) LR=$2 ;; --threads) THREADS=$2 ;;
    *) echo "train.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
KJV_SHAPE=$([[ "$HIDDEN $LAYERS $EXPERTS $TOP_K $MOE_INTER $HEADS $KV_HEADS" == "192 4 8 2 192 6 2" ]] && echo 1 || echo 0)
HERE=$(cd "$(dirname "$0")" && pwd)
command -v bible > /dev/null || { echo "bible-kjv is not installed (apt-get install bible-kjv)"; exit 2; }
/usr/bin/python3 -c 'import torch' 2> /dev/null || { echo "python3-torch is not installed"; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# OpenBLAS for train.py only (see the header): the directory holding its libblas.so.3.
BLAS_DIR=
OPENBLAS=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [[ ${NO_OPENBLAS:-0} != 1 ]]; then
  if [[ -f $OPENBLAS/libblas.so.3 ]]; then
    BLAS_DIR=$OPENBLAS
  elif (mkdir blas && cd blas && apt-get download libopenblas0-pthread > /dev/null 2>&1 &&
        dpkg -x libopenblas0-pthread_*.deb root); then
    BLAS_DIR=$WORK/blas/root$OPENBLAS
  else
    echo "train.sh: could not fetch libopenblas0-pthread; training with the reference BLAS (slow)" >&2
  fi
fi

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
"$HUBNODE" testmodel --family olmoe --hidden "$HIDDEN" --layers "$LAYERS" --experts "$EXPERTS" --top-k "$TOP_K" \
  --moe-intermediate "$MOE_INTER" --heads "$HEADS" --kv-heads "$KV_HEADS" --shards 1 --corpus train.txt --merges 3800 \
  --seed 1 --out init > /dev/null
"$HUBNODE" --data data -q import init --repo train/init > /dev/null
for f in train chat held; do "$HUBNODE" --data data -q run train/init --tokenize $f.txt --out $f.u32; done
LD_LIBRARY_PATH=$BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} OPENBLAS_NUM_THREADS=$THREADS \
  /usr/bin/python3 "$HERE/train.py" --init init --train train.u32 --chat chat.u32 --held held.u32 --out "$OUT" \
  --steps "$STEPS" --batch "$BATCH" --seq "$SEQ" --lr "$LR" --seed 1 --threads "$THREADS" --eval-window 128
cp held.u32 "$OUT.held-out.u32"
if [[ $KJV_SHAPE == 1 ]]; then
  cat "$HERE/card.md" > "$OUT/README.md"
else  # card.md describes kjv-moe: another shape gets its license header and one line of its own
  { awk '{ print } NR > 1 && /^---$/ { exit }' "$HERE/card.md"
    printf '# kjv-moe, another shape\n\nTrained by tools/train/train.sh like kjv-moe (its card: models/kjv-moe): '
    printf 'hidden %s, %s layers, %s experts of width %s per layer, top-%s, %s steps of %s x %s tokens.\n' \
      "$HIDDEN" "$LAYERS" "$EXPERTS" "$MOE_INTER" "$TOP_K" "$STEPS" "$BATCH" "$SEQ"; } > "$OUT/README.md"
fi
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
