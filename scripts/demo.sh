#!/usr/bin/env bash
# `make demo`: generate a small MoE checkpoint, import it into a store, show what it holds, and
# serve it (the Hugging Face API and the OpenAI-compatible inference API).
# Usage: scripts/demo.sh HUBNODE DEMO_DIR
set -euo pipefail
HUBNODE=$(realpath "$1")
DEMO=${2:-demo}
mkdir -p "$DEMO"
DEMO=$(realpath "$DEMO")
DATA="$DEMO/hubdata"
MODEL="$DEMO/models/olmoe-small"
hub() { "$HUBNODE" --data "$DATA" "$@"; }

if [[ ! -f "$MODEL/config.json" ]]; then
  rm -rf "$MODEL"
  "$HUBNODE" testmodel --family olmoe --size small --seed 1 --out "$MODEL"
fi
# As every Hub repo has one: git clients then check the weights out through git-lfs (an import
# keeps a directory exactly as it is, so the demo adds it to the directory).
[[ -f "$MODEL/.gitattributes" ]] || printf '*.safetensors filter=lfs diff=lfs merge=lfs -text\n' > "$MODEL/.gitattributes"
hub -q import "$MODEL" --repo demo/olmoe-small -m "Demo import"
# The trained demo model (models/kjv-moe, tools/train): signed with a demo publisher key that
# this node trusts for the demo namespace, so its page shows a verified signature.
TRAINED="$(dirname "$0")/../models/kjv-moe"
if [[ -f "$TRAINED/model.safetensors" ]]; then
  rm -rf "$DEMO/models/kjv-moe"
  cp -r "$TRAINED" "$DEMO/models/kjv-moe"
  [[ -f "$DEMO/demo-publisher.key" ]] || "$HUBNODE" -q keygen --out "$DEMO/demo-publisher.key" > /dev/null
  "$HUBNODE" -q sign "$DEMO/models/kjv-moe" --key "$DEMO/demo-publisher.key" > /dev/null
  hub -q trust add-key demo --key "$DEMO/demo-publisher.key.pub" --name demo-publisher > /dev/null 2>&1 || true
  hub -q import "$DEMO/models/kjv-moe" --repo demo/kjv-moe -m "The trained demo model" > /dev/null
fi
echo
echo "== repos"; hub ls
echo; echo "== files of demo/olmoe-small@main"; hub ls demo/olmoe-small@main
echo; echo "== history"; hub log demo/olmoe-small -n 3
echo "== experts (first layer)"; hub experts demo/olmoe-small | grep '^layer 0 ' | head -4
echo; echo "== store"; hub stats
# A write token for the namespace `me` (a fresh one each run: tokens are shown only once).
hub -q token revoke demo-writer > /dev/null 2>&1 || true
TOKEN=$(hub -q token create --name demo-writer --scope write --namespace me)
PORT=${DEMO_PORT:-8080}
URL="http://127.0.0.1:$PORT"
cat <<EOF2

Starting the node on $URL (Ctrl-C stops it). Open $URL in a browser, or try:
  curl -s $URL/api/models/demo/olmoe-small | head -c 400; echo
  curl -sI $URL/demo/olmoe-small/resolve/main/model-00001-of-00002.safetensors
  curl -s "$URL/api/models/demo/olmoe-small/tree/main?recursive=true"
  HF_ENDPOINT=$URL hf download demo/olmoe-small          # Python client (huggingface_hub)
  git clone $URL/demo/olmoe-small                        # git + git-lfs
  node --input-type=module -e 'import {modelInfo} from "@huggingface/hub";
    console.log(await modelInfo({name: "demo/olmoe-small", hubUrl: "$URL"}))'
  curl -s $URL/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model": "demo/kjv-moe", "messages": [{"role": "user", "content": "And the LORD said unto Moses"}], "max_tokens": 40, "temperature": 0}'
  (or the playground: $URL/-/playground?model=demo/kjv-moe — a small MoE trained on the King James Bible)
  curl -sN $URL/v1/completions -H 'Content-Type: application/json' \
    -d '{"model": "demo/olmoe-small", "prompt": "Once upon", "max_tokens": 32, "stream": true}'
  curl -s $URL/metrics | head
(demo/olmoe-small has random weights: its text is gibberish, but every token is computed.)
Publish a fine-tune (10% of its tensors changed) with the write token of namespace me; only the
changed tensors are stored again, and the lineage links it to its base:
  rm -rf $DEMO/models/ft; $HUBNODE testmodel --finetune-of $MODEL --base-model demo/olmoe-small --change fraction:0.1 --out $DEMO/models/ft
  $HUBNODE push $DEMO/models/ft me/olmoe-ft --to $URL --token $TOKEN
  curl -s $URL/api/models/me/olmoe-ft/lineage; echo
Offline, with the node stopped:
  $HUBNODE --data $DATA run demo/olmoe-small --prompt "Hello" --stats
  $HUBNODE --data $DATA chat demo/olmoe-small
  $HUBNODE --data $DATA experts demo/olmoe-small | head
  $HUBNODE --data $DATA export demo/olmoe-small /tmp/olmoe-export
EOF2
exec "$HUBNODE" --data "$DATA" serve --listen "127.0.0.1:$PORT"
