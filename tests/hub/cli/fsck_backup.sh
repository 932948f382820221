#!/usr/bin/env bash
# Damage on disk and getting the store back (issue 13, item 18): a byte flipped in a blob file is
# caught on read (DataLoss, never wrong bytes) and by `hubnode fsck`; `fsck --repair --peer`
# replaces the damaged chunk from a peer that trusts this node; a node serving with --peer repairs
# it as it is read; `backup` / `restore` carry the store and its keys to a new data directory.
# Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
node() { local d=$1; shift; "$HUBNODE" --data "$WORK/$d" -q "$@"; }
serve() {  # serve NAME [FLAGS...] -> URL
  local name=$1; shift
  "$HUBNODE" --data "$WORK/$name" serve --listen 127.0.0.1:0 --no-inference --raw-cache-size 0 "$@" \
    > "$WORK/$name.out" 2> "$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 600); do grep -qs serving "$WORK/$name.out" && break; sleep 0.05; done
  URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")
}
PY=/usr/bin/python3
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
flip() {  # flips one byte in the middle of the largest blob file of store $1
  local f; f=$(ls -S "$WORK/$1/db"/*.blob | head -1)
  $PY -c "import sys; f=open(sys.argv[1],'r+b'); f.seek(0,2); n=f.tell()//2; f.seek(n); b=f.read(1); f.seek(n); f.write(bytes([b[0]^0xff]))" "$f"
}
all_files_ok() {  # all_files_ok STORE: every shard read back byte-exact ("True"), or the first failure
  for f in "$WORK"/m/*.safetensors; do
    got=$(node "$1" cat "org/m:$(basename "$f")" 2> "$WORK/cat.err" | sha256sum | cut -c1-64)
    [[ "$got" == "$(sha256sum < "$f" | cut -c1-64)" ]] || { echo "$(basename "$f"): $(head -c 120 "$WORK/cat.err")"; return; }
  done
  echo True
}

node a testmodel --family olmoe --size small --seed 4 --out "$WORK/m" > /dev/null
node a import "$WORK/m" --repo org/m > /dev/null
node b import "$WORK/m" --repo org/m > /dev/null
check "fsck of a sound store" 0 "$(node a fsck > /dev/null; echo $?)"
check "fsck --json: clean, every chunk" True "$(node a fsck --json | jq_ 'd["clean"] and d["chunks"] > 100 and d["objects"] > 0')"

flip a
check "a damaged chunk is caught on read, never served" DataLoss "$(all_files_ok a | grep -o DataLoss | head -1)"
node a fsck --json > "$WORK/fsck.json"; CODE=$?
check "fsck finds it (exit 1)" "1 1" "$CODE $(jq_ 'len(d["damagedChunks"])' < "$WORK/fsck.json")"
check "--repair needs a peer" 1 "$(node a fsck --repair > /dev/null 2>&1; echo $?)"

serve b; B=$URL
check "repair from a peer that does not trust this node: still damaged" 1 "$(node a fsck --repair --peer "$B" > /dev/null 2>&1; echo $?)"
node a node-key > "$WORK/a.pub"
node b trust add-node-key --key "$WORK/a.pub" --name a > /dev/null
node a fsck --repair --peer "$B" --json > "$WORK/repair.json"; CODE=$?
check "repair from a peer that trusts it" "0 1" "$CODE $(jq_ 'len(d["repaired"])' < "$WORK/repair.json")"
check "fsck after the repair: clean" 0 "$(node a fsck > /dev/null; echo $?)"
check "every file byte-exact again" True "$(all_files_ok a)"

# Serving with a peer: the damaged chunk is replaced as it is read.
flip a
serve a --peer "$B"; A=$URL
SHARDS=$(cd "$WORK/m" && ls *.safetensors)
ok=True
for s in $SHARDS; do
  [[ "$(curl -sf "$A/org/m/resolve/main/$s" | sha256sum | cut -c1-64)" == "$(sha256sum < "$WORK/m/$s" | cut -c1-64)" ]] || ok=False
done
check "served with --peer: damaged chunks replaced as they are read, downloads byte-exact" True "$ok"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null
check "... and the store is sound again" 0 "$(node a fsck > /dev/null; echo $?)"

# Backup and restore.
TOKEN=$(node a token create --name keep --scope read)
node a backup "$WORK/bk" > /dev/null
check "backup" 0 "$?"
node a import "$WORK/m" --repo org/m2 > /dev/null
check "a second backup into the same folder (incremental)" 0 "$(node a backup "$WORK/bk" > /dev/null; echo $?)"
check "restore into a new data directory" 0 "$(node c restore "$WORK/bk" > /dev/null; echo $?)"
check "the restored store is sound" 0 "$(node c fsck > /dev/null; echo $?)"
check "it holds both repos" "org/m org/m2" "$(node c ls | awk '{print $1}' | sort | tr '\n' ' ' | sed 's/ $//')"
check "its files are byte-exact" True "$(all_files_ok c)"
check "its keys came along (same node key)" "$(cat "$WORK/a.pub")" "$(node c node-key)"
check "its tokens came along" "$(node a token list | md5sum)" "$(node c token list | md5sum)"
check "restore onto an existing store: refused" 1 "$(node a restore "$WORK/bk" > /dev/null 2>&1; echo $?)"
check "restore from nothing: refused" 1 "$(node d restore "$WORK/m" > /dev/null 2>&1; echo $?)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
