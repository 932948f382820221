#!/usr/bin/env bash
# The web UI in a real browser (issue 16): Debian's chromium, headless, driven by puppeteer-core
# (pinned in package-lock.json, installed once into a cache folder keyed by the lock file),
# against a real `hubnode serve` on 127.0.0.1 holding a generated MoE model, a fine-tune of it, a
# private repo, a commit held for review and a hostile card. Screenshots of each page go to
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
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
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
TW=$(hub token create --name alice --scope write --namespace alice)
TD=$(hub token create --name demo --scope write --namespace demo)
TA=$(hub token create --name admin --scope write)

"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 200); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
[[ -n "$U" ]] || { cat "$WORK/err"; exit 1; }
# A commit held for review on demo/held (a card without a license).
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TD" -H "Content-Type: application/json" \
  -d '{"name":"held","organization":"demo"}' "$U/api/repos/create"
printf '{"key":"header","value":{"summary":"no license"}}\n{"key":"file","value":{"path":"README.md","content":"%s","encoding":"base64"}}\n' \
  "$(printf '# held\n' | base64 -w0)" > "$WORK/held.ndjson"
curl -s -m 10 -o /dev/null -H "Authorization: Bearer $TD" -H "Content-Type: application/x-ndjson" \
  --data-binary @"$WORK/held.ndjson" "$U/api/models/demo/held/commit/main"

mkdir -p "$SHOTS"
rc=0
NPM_DIR="$NPM_DIR" HUBNODE_URL="$U" CHROMIUM="$CHROMIUM" TOKEN_ALICE="$TW" TOKEN_DEMO="$TD" TOKEN_ADMIN="$TA" \
  FIXTURES="$WORK" SHOTS="$(realpath "$SHOTS")" AXE="$NPM_DIR/node_modules/axe-core/axe.min.js" \
  node "$HERE/ui.test.mjs" || rc=$?
if [[ $rc != 0 ]]; then echo "--- server log"; tail -30 "$WORK/err"; fi
exit $rc
