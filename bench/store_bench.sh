#!/usr/bin/env bash
# Store benchmark (issue: the spine). One run, one generated ~1 GB bf16 OLMoE-shaped checkpoint,
# each hubnode figure next to a named baseline measured in the same run:
#   import time        vs  sha256sum over the same files (page cache warm for both)
#   export time        vs  cat of the same files into a new directory
#   stored / raw bytes with byte grouping (auto) and with plain zstd
#   a fine-tune with 10% of tensors changed: new stored bytes / its raw size
# Usage: bench/store_bench.sh path/to/hubnode [workdir]   (SIZE=small for a quick run)
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: store_bench.sh HUBNODE [WORKDIR]}")
WORK=${2:-$(dirname "$0")/out}
SIZE=${SIZE:-bench}
rm -rf "$WORK" && mkdir -p "$WORK"
WORK=$(realpath "$WORK")
cd "$WORK"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
json() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

t0=$(now); "$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --seed 1 --out base; t1=$(now)
gen_s=$(elapsed "$t0" "$t1")
raw_bytes=$(du -sb base | cut -f1)
files=$(cd base && find . -type f | sort)

# Warm the page cache so both sides read from memory.
(cd base && cat $files > /dev/null)

t0=$(now); (cd base && sha256sum $files > /dev/null); t1=$(now); sha_s=$(elapsed "$t0" "$t1")
# A second baseline: coreutils sha256sum does not use the CPU's SHA extensions; OpenSSL does.
t0=$(now); (cd base && openssl dgst -sha256 $files > /dev/null); t1=$(now); ossl_s=$(elapsed "$t0" "$t1")
t0=$(now); "$HUBNODE" -q --data data import base --repo bench/base > /dev/null; t1=$(now); import_s=$(elapsed "$t0" "$t1")

t0=$(now); mkdir catcopy && (cd base && for f in $files; do mkdir -p "../catcopy/$(dirname "$f")"; cat "$f" > "../catcopy/$f"; done); t1=$(now)
cat_s=$(elapsed "$t0" "$t1")
t0=$(now); "$HUBNODE" -q --data data export bench/base exported > /dev/null; t1=$(now); export_s=$(elapsed "$t0" "$t1")
diff -r base exported > /dev/null || { echo "export differs from the source" >&2; exit 1; }
rm -rf catcopy exported

stats=$("$HUBNODE" --data data stats --json)
auto_raw=$(echo "$stats" | json '["chunk_raw_bytes"]')
auto_stored=$(echo "$stats" | json '["chunk_stored_bytes"]')

t0=$(now); "$HUBNODE" -q --data data-zstd --codec zstd import base --repo bench/base > /dev/null; t1=$(now)
zstd_import_s=$(elapsed "$t0" "$t1")
zstats=$("$HUBNODE" --data data-zstd stats --json)
zstd_stored=$(echo "$zstats" | json '["chunk_stored_bytes"]')
rm -rf data-zstd

"$HUBNODE" -q testmodel --finetune-of base --base-model bench/base --change fraction:0.1 --seed 7 --out ft
ft_bytes=$(du -sb ft | cut -f1)
"$HUBNODE" -q --data data import ft --repo bench/ft > /dev/null
stats2=$("$HUBNODE" --data data stats --json)
ft_new=$(( $(echo "$stats2" | json '["chunk_stored_bytes"]') - auto_stored ))
changed=$(/usr/bin/python3 - "$WORK" <<'PY'
import json, struct, sys, os, hashlib
base, ft = sys.argv[1] + "/base", sys.argv[1] + "/ft"
n = 0; total = 0
for name in sorted(os.listdir(base)):
    if not name.endswith(".safetensors"): continue
    with open(os.path.join(base, name), "rb") as a, open(os.path.join(ft, name), "rb") as b:
        hl = struct.unpack("<Q", a.read(8))[0]; h = json.loads(a.read(hl)); b.seek(8 + hl)
        for k, v in h.items():
            if k == "__metadata__": continue
            s, e = v["data_offsets"]; total += 1
            a.seek(8 + hl + s); b.seek(8 + hl + s)
            if a.read(e - s) != b.read(e - s): n += 1
print(f"{n}/{total}")
PY
)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mb() { awk -v a="$1" 'BEGIN { printf "%.1f MB", a / 1e6 }'; }
cat <<TABLE

hubnode store benchmark — $(date -u +%Y-%m-%d), $(nproc) cores, model: olmoe/$SIZE, $(mb "$raw_bytes") bf16 (generated in ${gen_s} s)

| measure | hubnode | baseline | ratio | goal |
|---|---|---|---|---|
| import time | ${import_s} s | sha256sum ${sha_s} s | $(ratio "$import_s" "$sha_s") | <= 2.5 |
| import time | ${import_s} s | openssl dgst -sha256 ${ossl_s} s | $(ratio "$import_s" "$ossl_s") | - |
| export time | ${export_s} s | cat ${cat_s} s | $(ratio "$export_s" "$cat_s") | - |
| stored / raw, byte grouping | $(mb "$auto_stored") | raw $(mb "$auto_raw") | $(ratio "$auto_stored" "$auto_raw") | <= 0.70 |
| stored / raw, plain zstd | $(mb "$zstd_stored") | raw $(mb "$auto_raw") | $(ratio "$zstd_stored" "$auto_raw") | (reported) |
| import time, plain zstd | ${zstd_import_s} s | sha256sum ${sha_s} s | $(ratio "$zstd_import_s" "$sha_s") | - |
| fine-tune ($changed tensors changed): new stored / its size | $(mb "$ft_new") | $(mb "$ft_bytes") | $(ratio "$ft_new" "$ft_bytes") | <= 0.12 |
TABLE
