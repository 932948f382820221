#!/usr/bin/env bash
# The web UI in a real browser (issue 16): Debian's chromium, headless, driven by puppeteer-core
# (pinned in package-lock.json, installed once into a cache folder keyed by the lock file),
# against a real `hubnode serve` on 127.0.0.1 holding a generated MoE model, a fine-tune of it, a
# private repo, a commit held for review, a hostile card, a pull request, and a partly held model
# (org/moe, pulled from an origin node with one expert; the rest come from that peer when read). Screenshots of each page go to
# $HUBNODE_SCREENSHOTS (default: build/web-screenshots; never committed). Exits 77 (skipped,
# saying why) without chromium or node.
# Usage: tests/web/run.sh HUBNODE [SCREENSHOT_DIR]
set -euo pipefail
HUBNODE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
SHOTS=${2:-${HUBNODE_SCREENSHOTS:-$(dirname "$HUBNODE")/../web-screenshots}}
CHROMIUM=${CHROMIUM:-$(command -v chromium || true)}
[[ -x "$CHROMIUM" ]] || { echo "SKIP: Debian's chromium is not installed (make deps installs it)"; exit 77; }
command -v node > /dev/null || { echo "SKIP: node is not installed"; exit 77; }
LOCK_HASH=$(sha256sum "$HERE/package-lock.json" | cut -c1-16)
NPM_DIR=${HUBNODE_NPM_DIR:-$HOME/.cache/hubnode/npm-web-$LOCK_HASH}
if [[ ! -d "$NPM_DIR/node_modules/puppeteer-core" ]]; then
  mkdir -p "$NPM_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
fi

WORK=$(mktemp -d)
PID=
OPID=
# (the test itself kills the origin: the cleanup keeps the script's status whatever kill says)
cleanup() {
  local status=$?
  [[ -z "$PID" ]] || kill -9 "$PID" 2> /dev/null || true
  [[ -z "$OPID" ]] || kill -9 "$OPID" 2> /dev/null || true
  rm -rf "$WORK"
  exit $status
}
trap cleanup EXIT
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }

# The models: an OLMoE-shaped base, a fine-tune naming it as its base, a private one.
"$HUBNODE" testmodel --family olmoe --size tiny --seed 3 --out "$WORK/base" > /dev/null
"$HUBNODE" testmodel --finetune-of "$WORK/base" --base-model demo/base --change attention --out "$WORK/ft" > /dev/null
"$HUBNODE" testmodel --family qwen3_moe --size tiny --seed 4 --out "$WORK/secret" > /dev/null
hub import "$WORK/base" --repo demo/base -m "The base" > /dev/null
hub import "$WORK/ft" --repo demo/ft -m "A fine-tune" > /dev/null
hub import "$WORK/secret" --repo alice/secret -m "Secret" --private > /dev/null
# A card that tries everything a card should not be able to do.
mkdir -p "$WORK/evil"
cp "$WORK/base/config.json" "$WORK/evil/"
cat > "$WORK/evil/README.md" <<'CARD'
---
license: apache-2.0
---
# Hostile card

<script>alert("script")</script>
<img src="x" onerror="alert('onerror')">
<svg onload="alert('svg')"><script>alert("svg script")</script></svg>
<iframe src="http://127.0.0.2:9/frame"></iframe>

[a javascript: link](javascript:alert('link'))

![an image from elsewhere](http://127.0.0.2:9/tracker.png)

![an SVG with script](data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIG9ubG9hZD0iYWxlcnQoMSkiLz4=)

| a | table |
|---|-------|
| still | renders |
CARD
hub import "$WORK/evil" --repo evil/card -m "Hostile card" > /dev/null
# The origin node of org/moe; this node trusts its key and pulls one expert of the model.
"$HUBNODE" testmodel --family olmoe --size tiny --seed 5 --out "$WORK/moe" > /dev/null
"$HUBNODE" --data "$WORK/origin" -q import "$WORK/moe" --repo org/moe -m "An MoE on the origin" > /dev/null
"$HUBNODE" testmodel --family olmoe --size tiny --seed 6 --out "$WORK/moe2" > /dev/null
"$HUBNODE" --data "$WORK/origin" -q import "$WORK/moe2" --repo org/moe2 -m "Another, which nobody reads" > /dev/null
"$HUBNODE" --data "$WORK/origin" -q node-key > "$WORK/origin.pub"
# Peers serve chunks without a revision only to nodes they trust: the origin trusts this one.
hub node-key > "$WORK/node.pub"
"$HUBNODE" --data "$WORK/origin" -q trust add-node-key --key "$WORK/node.pub" --name ui-node > /dev/null
"$HUBNODE" --data "$WORK/origin" serve --listen 127.0.0.1:0 --no-inference > "$WORK/oout" 2> "$WORK/oerr" &
OPID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/oout" && break; sleep 0.05; done
O=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/oout")
[[ -n "$O" ]] || { cat "$WORK/oerr"; exit 1; }
hub trust add-node-key --key "$WORK/origin.pub" --name origin > /dev/null
hub pull org/moe --from "$O" --experts 0:1 > /dev/null
hub pull org/moe2 --from "$O" --experts 0:1 > /dev/null
# What a user publishes by following the model page's snippet: a fine-tune of demo/base.
"$HUBNODE" testmodel --finetune-of "$WORK/base" --base-model demo/base --change experts:0:1 --out "$WORK/my-finetune" > /dev/null
TM=$(hub token create --name me --scope write --namespace me)
TW=$(hub token create --name alice --scope write --namespace alice)
TD=$(hub token create --name demo --scope write --namespace demo)
TA=$(hub token create --name admin --scope write)

"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --peer "$O" > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
[[ -n "$U" ]] || { cat "$WORK/err"; exit 1; }
# A commit held for review on demo/held (a card without a license).
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TD" -H "Content-Type: application/json" \
  -d '{"name":"held","organization":"demo"}' "$U/api/repos/create"
printf '{"key":"header","value":{"summary":"no license"}}\n{"key":"file","value":{"path":"README.md","content":"%s","encoding":"base64"}}\n' \
  "$(printf '# held\n' | base64 -w0)" > "$WORK/held.ndjson"
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TD" -H "Content-Type: application/x-ndjson" \
  --data-binary @"$WORK/held.ndjson" "$U/api/models/demo/held/commit/main"
# And another, which the admin refuses.
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TD" -H "Content-Type: application/json" \
  -d '{"name":"held2","organization":"demo"}' "$U/api/repos/create"
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TD" -H "Content-Type: application/x-ndjson" \
  --data-binary @"$WORK/held.ndjson" "$U/api/models/demo/held2/commit/main"

# Alice (not a writer of demo/) opens a pull request on demo/ft that changes its card.
printf '{"key":"header","value":{"summary":"Say where the fine-tune comes from","description":"A line about the base."}}\n{"key":"file","value":{"path":"README.md","content":"%s","encoding":"base64"}}\n' \
  "$(printf -- '---\nlicense: apache-2.0\nbase_model: demo/base\n---\n# A fine-tune\n\nTuned from demo/base.\n' | base64 -w0)" > "$WORK/pr.ndjson"
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TW" -H "Content-Type: application/x-ndjson" \
  --data-binary @"$WORK/pr.ndjson" "$U/api/models/demo/ft/commit/main?create_pr=1"

mkdir -p "$SHOTS"
rc=0
NPM_DIR="$NPM_DIR" HUBNODE_URL="$U" CHROMIUM="$CHROMIUM" TOKEN_ALICE="$TW" TOKEN_DEMO="$TD" TOKEN_ADMIN="$TA" \
  ORIGIN_PID="$OPID" TOKEN_ME="$TM" CLIENTS="$(realpath -m "$HERE/../../../shared/clients")" FIXTURES="$WORK" SHOTS="$(realpath "$SHOTS")" AXE="$NPM_DIR/node_modules/axe-core/axe.min.js" \
  node "$HERE/ui.test.mjs" || rc=$?
if [[ $rc != 0 ]]; then echo "--- server log"; tail -30 "$WORK/err"; fi
exit $rc
