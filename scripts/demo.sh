#!/usr/bin/env bash
# `make demo`: generate a small MoE checkpoint, import it into a store, and show what it holds.
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
hub -q import "$MODEL" --repo demo/olmoe-small -m "Demo import"
echo
echo "== repos"; hub ls
echo; echo "== files of demo/olmoe-small@main"; hub ls demo/olmoe-small@main
echo; echo "== history"; hub log demo/olmoe-small -n 3
echo "== experts (first layer)"; hub experts demo/olmoe-small | grep '^layer 0 ' | head -4
echo; echo "== store"; hub stats
cat <<EOF2

Try:
  $HUBNODE --data $DATA cat demo/olmoe-small@main:config.json
  $HUBNODE --data $DATA tensors demo/olmoe-small | head
  $HUBNODE --data $DATA experts demo/olmoe-small
  $HUBNODE --data $DATA export demo/olmoe-small /tmp/olmoe-export
EOF2
