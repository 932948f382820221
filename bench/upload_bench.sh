#!/usr/bin/env bash
# Upload benchmark (issue: collaborative publishing). One run:
#   upload throughput of a ~1 GB LFS file (one basic PUT, and a multipart upload of 4 parts in
#   parallel) against the download throughput of the same file from the same node — the named
#   baseline; the ratio is the figure. Client (curl) and server on this machine.
#   bytes stored for a series of 5 fine-tunes of one base (each changes 10% of the tensors),
#   pushed with `hubnode push`: what each commit added against its logical size.
# Usage: bench/upload_bench.sh HUBNODE [WORKDIR]     (SIZE=small for a quick run)
set -euo pipefail
HUBNODE=$(realpath "${1:?usage: upload_bench.sh HUBNODE [WORKDIR]}")
WORK=${2:-$(dirname "$0")/out-upload}
SIZE=${SIZE:-bench}
rm -rf "$WORK" && mkdir -p "$WORK" && WORK=$(realpath "$WORK") && cd "$WORK"
PID=
cleanup() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; true; }
trap cleanup EXIT
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
mbps() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --shards 1 --seed 1 --out model
"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --shards 1 --seed 2 --out model2
"$HUBNODE" -q testmodel --family olmoe --size "$SIZE" --shards 1 --seed 3 --out model3
F=model-00001-of-00001.safetensors
BYTES=$(stat -c %s "model/$F")
TOKEN=$("$HUBNODE" --data data -q token create --name bench --scope write)
CHUNK=$(( (BYTES + 3) / 4 ))
"$HUBNODE" --data data serve --listen 127.0.0.1:0 --no-inference --multipart-threshold "$((BYTES + 1))" \
  > serve.out 2> serve.err &
PID=$!
for _ in $(seq 200); do grep -q serving serve.out && break; sleep 0.05; done
URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' serve.out)
AUTH="Authorization: Bearer $TOKEN"
py() { /usr/bin/python3 -c "$1"; }

# Basic transfer: one PUT of the whole file.
curl -sf -X POST "$URL/api/repos/create" -H "$AUTH" -d '{"name":"up","organization":"bench"}' > /dev/null
OID=$(sha256sum "model/$F" | cut -c1-64)
HREF=$(curl -sf -X POST "$URL/bench/up.git/info/lfs/objects/batch" -H "$AUTH" \
  -d "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$OID\",\"size\":$BYTES}]}" |
  py 'import json,sys; print(json.load(sys.stdin)["objects"][0]["actions"]["upload"]["href"])')
T0=$(now); curl -sf -X PUT -T "model/$F" "$HREF" > /dev/null; T1=$(now)
UP=$(secs "$T0" "$T1")
README=$(base64 -w0 < model/README.md)
printf '{"key":"header","value":{"summary":"bench"}}\n{"key":"file","value":{"path":"README.md","content":"%s","encoding":"base64"}}\n{"key":"lfsFile","value":{"path":"%s","algo":"sha256","oid":"%s","size":%s}}\n' \
  "$README" "$F" "$OID" "$BYTES" > commit.ndjson
T0=$(now)
curl -sf -X POST "$URL/api/models/bench/up/commit/main" -H "$AUTH" -H 'Content-Type: application/x-ndjson' --data-binary @commit.ndjson > /dev/null
T1=$(now)
COMMIT=$(secs "$T0" "$T1")
T0=$(now); curl -sf -o /dev/null "$URL/bench/up/resolve/main/$F"; T1=$(now)
DOWN=$(secs "$T0" "$T1")

# Multipart: a node that offers it for this size, 4 parts PUT in parallel, then the completion.
kill "$PID"; wait "$PID" 2>/dev/null || true
"$HUBNODE" --data data serve --listen 127.0.0.1:0 --no-inference --multipart-threshold 1 --multipart-chunk "$CHUNK" \
  > serve.out 2> serve.err &
PID=$!
for _ in $(seq 200); do grep -q serving serve.out && break; sleep 0.05; done
URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' serve.out)
OID2=$(sha256sum "model2/$F" | cut -c1-64)
curl -sf -X POST "$URL/bench/up.git/info/lfs/objects/batch" -H "$AUTH" \
  -d "{\"operation\":\"upload\",\"transfers\":[\"basic\",\"multipart\"],\"objects\":[{\"oid\":\"$OID2\",\"size\":$BYTES}]}" > batch.json
py 'import json; o=json.load(open("batch.json"))["objects"][0]["actions"]["upload"]
h=o["header"]; c=int(h["chunk_size"])
open("complete.url","w").write(o["href"])
for k,v in sorted(h.items()):
    if k != "chunk_size": print(int(k), v)' > parts.txt
split -b "$CHUNK" -d -a 5 --numeric-suffixes=1 "model2/$F" part
JOBS=()
T0=$(now)
while read -r n url; do
  curl -sf -X PUT -T "$(printf 'part%05d' "$n")" "$url" > /dev/null &
  JOBS+=($!)
done < parts.txt
wait "${JOBS[@]}"
T1=$(now)
curl -sf -X POST "$(cat complete.url)" -d "{\"oid\":\"$OID2\",\"parts\":[]}" > /dev/null
T2=$(now)
MP_PUT=$(secs "$T0" "$T1"); MP_ALL=$(secs "$T0" "$T2")

# Multipart with the parts sent one after another (huggingface_hub's default): each part streams
# into the store as it arrives, so the completion has nothing left to do.
OID3=$(sha256sum "model3/$F" | cut -c1-64)
curl -sf -X POST "$URL/bench/up.git/info/lfs/objects/batch" -H "$AUTH" \
  -d "{\"operation\":\"upload\",\"transfers\":[\"basic\",\"multipart\"],\"objects\":[{\"oid\":\"$OID3\",\"size\":$BYTES}]}" > batch3.json
py 'import json; o=json.load(open("batch3.json"))["objects"][0]["actions"]["upload"]
h=o["header"]
open("complete3.url","w").write(o["href"])
for k,v in sorted(h.items()):
    if k != "chunk_size": print(int(k), v)' > parts3.txt
rm -f part0*
split -b "$CHUNK" -d -a 5 --numeric-suffixes=1 "model3/$F" part
T0=$(now)
while read -r n url; do curl -sf -X PUT -T "$(printf 'part%05d' "$n")" "$url" > /dev/null; done < parts3.txt
curl -sf -X POST "$(cat complete3.url)" -d "{\"oid\":\"$OID3\",\"parts\":[]}" > /dev/null
T1=$(now)
MP_SEQ=$(secs "$T0" "$T1")

# Where the upload stands against the store itself: a local import of the same file.
T0=$(now); "$HUBNODE" --data data-import -q import model --repo bench/up > /dev/null; T1=$(now)
IMPORT=$(secs "$T0" "$T1")

echo "## Uploads — one ${BYTES}-byte safetensors, curl client on the same machine"
echo
echo "| measure | hubnode | baseline (download of the same file from the node) | ratio |"
echo "|---|---|---|---|"
echo "| single PUT (basic transfer) | $(mbps "$BYTES" "$UP") MB/s | $(mbps "$BYTES" "$DOWN") MB/s | $(ratio "$DOWN" "$UP") |"
echo "| multipart, 4 parts in parallel, incl. completion | $(mbps "$BYTES" "$MP_ALL") MB/s | $(mbps "$BYTES" "$DOWN") MB/s | $(ratio "$DOWN" "$MP_ALL") |"
echo "| multipart, the part PUTs alone | $(mbps "$BYTES" "$MP_PUT") MB/s | | |"
echo "| multipart, 4 parts one after another, incl. completion | $(mbps "$BYTES" "$MP_SEQ") MB/s | $(mbps "$BYTES" "$DOWN") MB/s | $(ratio "$DOWN" "$MP_SEQ") |"
echo "| commit naming the uploaded object | ${COMMIT} s | | |"
echo "| single PUT vs a local \`hubnode import\` of the file (no HTTP) | $(mbps "$BYTES" "$UP") MB/s | $(mbps "$BYTES" "$IMPORT") MB/s | $(ratio "$IMPORT" "$UP") |"
echo

# A base and 5 fine-tunes, each changing 10% of the tensors, pushed one after the other.
kill "$PID"; wait "$PID" 2>/dev/null || true
"$HUBNODE" --data data2 serve --listen 127.0.0.1:0 --no-inference > serve.out 2> serve.err &
PID=$!
for _ in $(seq 200); do grep -q serving serve.out && break; sleep 0.05; done
URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' serve.out)
TOKEN2=$("$HUBNODE" --data data2 -q token create --name bench --scope write)
"$HUBNODE" -q testmodel --family olmoe --size medium --seed 3 --out base
echo "## Bytes stored for a base and 5 fine-tunes (each changes 10% of the tensors; \`hubnode push\`)"
echo
echo "| model | logical bytes | new in the store (raw) | new (compressed) | new raw / logical |"
echo "|---|---|---|---|---|"
SUM_LOGICAL=0; SUM_NEW=0
row() {  # row NAME DIR
  local out logical
  out=$("$HUBNODE" -q push "$2" "bench/$1" --to "$URL" --token "$TOKEN2" -m "$1" --json)
  logical=$(du -sb --apparent-size --exclude=.cache "$2" | cut -f1)
  /usr/bin/python3 -c 'import json,sys; j=json.loads(sys.argv[1]); b=j["bytes"]; l=int(sys.argv[3])
print("| %s | %d | %d | %d | %.3f |" % (sys.argv[2], l, b["new"], b["newStored"], b["new"] / l))' "$out" "$1" "$logical"
}
row base base
for i in 1 2 3 4 5; do
  "$HUBNODE" -q testmodel --finetune-of base --change fraction:0.1 --seed $((10 + i)) --base-model bench/base --out "ft$i"
  row "ft$i" "ft$i"
done
kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
echo
"$HUBNODE" --data data2 stats | grep -iE "logical|chunk|disk" | sed 's/^/    /'
