#!/usr/bin/env bash
# Signature verification benchmark (issue: trust). One generated ~1 GB bf16 model, signed:
#   verify of the stored revision (uses the SHA-256s the store keeps: no re-hash)
#   verify of the directory (hashes every file, in parallel)
#   against the baseline `sha256sum` over the same files.
# Usage: bench/verify_bench.sh HUBNODE [WORKDIR]   (SIZE=small for a quick run)
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: verify_bench.sh HUBNODE [WORKDIR]}")
WORK=${2:-$(dirname "$0")/out-verify}
SIZE=${SIZE:-bench}
rm -rf "$WORK" && mkdir -p "$WORK" && WORK=$(realpath "$WORK") && cd "$WORK"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --out model
"$HUBNODE" keygen --out key > /dev/null
"$HUBNODE" sign model --key key > /dev/null
"$HUBNODE" --data data -q import model --repo bench/m > /dev/null
files=$(cd model && find . -type f | sort)
(cd model && cat $files > /dev/null)
t0=$(now); (cd model && sha256sum $files > /dev/null); t1=$(now); sha=$(elapsed "$t0" "$t1")
t0=$(now); (cd model && openssl dgst -sha256 $files > /dev/null); t1=$(now); ossl=$(elapsed "$t0" "$t1")
t0=$(now); "$HUBNODE" --data data verify bench/m --key key.pub > /dev/null; t1=$(now); stored=$(elapsed "$t0" "$t1")
t0=$(now); "$HUBNODE" verify model --key key.pub > /dev/null; t1=$(now); dir=$(elapsed "$t0" "$t1")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
cat <<TABLE

hubnode verify benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, $(du -sb model | awk '{printf "%.0f", $1/1e6}') MB model, files method

| measure | hubnode | baseline | ratio | goal |
|---|---|---|---|---|
| verify a stored revision (stored digests) | ${stored} s | sha256sum ${sha} s | $(ratio "$stored" "$sha") | - |
| verify a directory (parallel hashing) | ${dir} s | sha256sum ${sha} s | $(ratio "$dir" "$sha") | - |
| verify a stored revision (stored digests) | ${stored} s | openssl dgst -sha256 ${ossl} s | $(ratio "$stored" "$ossl") | - |
| verify a directory (parallel hashing) | ${dir} s | openssl dgst -sha256 ${ossl} s | $(ratio "$dir" "$ossl") | - |
TABLE
