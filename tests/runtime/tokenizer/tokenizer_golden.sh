#!/usr/bin/env bash
# Golden test of runtime::Tokenizer against the Hugging Face tokenizers crate (napi bindings from
# npm, pinned in package-lock.json and installed once into a cache folder keyed by the lock file).
# Generates tiny test models of every family with `hubnode testmodel`, derives more tokenizer.json
# variants and SentencePiece-style fixtures, and compares ids, decodes and DecodeStream output.
# Usage: tests/runtime/tokenizer/tokenizer_golden.sh TOKENIZE_MAIN HUBNODE
set -euo pipefail
DRIVER=$(realpath "$1")
HUBNODE=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
LOCK_HASH=$(sha256sum "$HERE/package-lock.json" | cut -c1-16)
NPM_DIR=${HUBNODE_TOKENIZER_NPM_DIR:-$HOME/.cache/hubnode/npm-$LOCK_HASH}
if [[ ! -d "$NPM_DIR/node_modules/@anush008/tokenizers" ]]; then
  mkdir -p "$NPM_DIR"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
for family in mixtral qwen2_moe qwen3_moe olmoe llama qwen2 qwen3; do
  "$HUBNODE" -q testmodel --family "$family" --out "$WORK/models/$family" > /dev/null
done

# ESM resolves packages next to the importing file: run a copy beside a link to the cache.
ln -s "$NPM_DIR/node_modules" "$WORK/node_modules"
cp "$HERE/tokenizer_golden.mjs" "$WORK/"
node "$WORK/tokenizer_golden.mjs" "$DRIVER" "$WORK"
