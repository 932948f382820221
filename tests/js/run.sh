#!/usr/bin/env bash
# Runs the official @huggingface/hub client (pinned in package-lock.json) against a real hubnode
# on 127.0.0.1. The npm packages are installed once into a cache folder keyed by the lock file.
# Usage: tests/js/run.sh HUBNODE TEST_FILE.mjs
set -euo pipefail
HUBNODE=$(realpath "$1")
TEST=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
LOCK_HASH=$(sha256sum "$HERE/package-lock.json" | cut -c1-16)
NPM_DIR=${HUBNODE_NPM_DIR:-$HOME/.cache/hubnode/npm-$LOCK_HASH}
if [[ ! -d "$NPM_DIR/node_modules/@huggingface/hub" ]]; then
  mkdir -p "$NPM_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  [[ -n "$SERVER_PID" ]] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }

hub testmodel --family mixtral --seed 5 --out "$WORK/public" > /dev/null
hub testmodel --family olmoe --seed 6 --out "$WORK/secret" > /dev/null
hub import "$WORK/public" --repo test/public -m "first" > /dev/null
echo "second revision" > "$WORK/public/NOTES.md"
mkdir -p "$WORK/public/sub/dir" && echo nested > "$WORK/public/sub/dir/deep.txt"
hub import "$WORK/public" --repo test/public -m "second" > /dev/null
hub ref set test/public refs/pr/1 main > /dev/null
hub ref set test/public refs/tags/v1.0 main > /dev/null
hub import "$WORK/secret" --repo test/secret --private > /dev/null
export HUBNODE_READ_TOKEN=$(hub token create --name reader --scope read --namespace test)
export HUBNODE_OTHER_TOKEN=$(hub token create --name other --scope read --namespace other)
export HUBNODE_WRITE_TOKEN=$(hub token create --name writer --scope write --namespace writer)
export HUBNODE_WRITE_OTHER=$(hub token create --name intruder --scope write --namespace intruder)
hub testmodel --family mixtral --seed 7 --out "$WORK/ft" > /dev/null
export HUBNODE_FT_DIR="$WORK/ft"
export HUBNODE_MODEL_DIR="$WORK/public"
export HUBNODE_WORK="$WORK"

# A small multipart threshold (when this build has the flags) so write.test.mjs's 11 MB file takes
# the client's multipart LFS transfer (the default threshold is 256 MiB).
SERVE_ARGS=()
if "$HUBNODE" serve --help 2>&1 | grep -q -- --multipart-threshold; then
  SERVE_ARGS=(--multipart-threshold 4194304 --multipart-chunk 1048576)
  export HUBNODE_MULTIPART_CHUNK=1048576
fi
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 ${SERVE_ARGS[@]+"${SERVE_ARGS[@]}"} \
  > "$WORK/serve.out" 2> "$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do
  grep -q "serving http" "$WORK/serve.out" 2>/dev/null && break
  sleep 0.05
done
export HUBNODE_URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/serve.out")
[[ -n "$HUBNODE_URL" ]] || { cat "$WORK/serve.err" >&2; exit 1; }

# ESM resolves packages next to the importing file: run a copy beside a link to the cache.
ln -s "$NPM_DIR/node_modules" "$WORK/node_modules"
cp "$TEST" "$WORK/"
cd "$WORK"
node --test --test-reporter=spec "$WORK/$(basename "$TEST")"
