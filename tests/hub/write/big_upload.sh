#!/usr/bin/env bash
# A ~2 GB LFS upload through the write API with bounded server memory: the PUT streams into the
# chunk store as it arrives (nothing is buffered whole), the commit makes it visible, and the file
# downloads back byte-exact. Prints the server's peak RSS and fails above LIMIT_MB.
# Usage: tests/hub/write/big_upload.sh HUBNODE [SIZE_MB=2048] [LIMIT_MB=300]
set -euo pipefail
HUBNODE=$(realpath "$1")
SIZE_MB=${2:-2048}
LIMIT_MB=${3:-300}
WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

# A safetensors file of SIZE_MB: 32 MiB bf16 tensors of pseudo-random data (incompressible, the
# worst case for the store), written in 4 MiB pieces.
/usr/bin/python3 - "$SIZE_MB" <<'PY'
import json, os, struct, sys, hashlib
size_mb = int(sys.argv[1])
n = max(1, size_mb // 32)
per = 32 << 20
header = {f"model.layers.{i}.mlp.weight": {"dtype": "BF16", "shape": [per // 2 // 4096, 4096],
                                           "data_offsets": [i * per, (i + 1) * per]} for i in range(n)}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
seed = hashlib.sha256(b"big_upload").digest()
with open("big.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    block = 0
    for _ in range(n * 8):
        # 4 MiB of deterministic noise: SHAKE-256 over a counter.
        f.write(hashlib.shake_256(seed + block.to_bytes(8, "little")).digest(4 << 20))
        block += 1
PY
BYTES=$(stat -c %s big.safetensors)
OID=$(sha256sum big.safetensors | cut -c1-64)
TOKEN=$("$HUBNODE" --data data -q token create --name up --scope write --namespace big)
"$HUBNODE" --data data serve --listen 127.0.0.1:0 --no-inference > serve.out 2> serve.err &
PID=$!
for _ in $(seq 600); do grep -q "serving http" serve.out 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' serve.out)
[[ -n "$URL" ]] || { cat serve.err >&2; exit 1; }
AUTH="Authorization: Bearer $TOKEN"
rss_mb() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$PID/status"; }
IDLE=$(rss_mb)

curl -sf -X POST "$URL/api/repos/create" -H "$AUTH" -d '{"name":"m","organization":"big"}' > /dev/null
BATCH=$(curl -sf -X POST "$URL/big/m.git/info/lfs/objects/batch" -H "$AUTH" \
  -d "{\"operation\":\"upload\",\"transfers\":[\"basic\"],\"objects\":[{\"oid\":\"$OID\",\"size\":$BYTES}]}")
HREF=$(echo "$BATCH" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"][0]["actions"]["upload"]["href"])')
T0=$(date +%s.%N)
curl -sf -X PUT -T big.safetensors "$HREF" > /dev/null
T1=$(date +%s.%N)
# No card: the commit is staged for review, and its writer reads it back.
printf '{"key":"header","value":{"summary":"big"}}\n{"key":"lfsFile","value":{"path":"big.safetensors","algo":"sha256","oid":"%s","size":%s}}\n' \
  "$OID" "$BYTES" > commit.ndjson
curl -sf -X POST "$URL/api/models/big/m/commit/main" -H "$AUTH" -H 'Content-Type: application/x-ndjson' \
  --data-binary @commit.ndjson > commit.json
PEAK=$(rss_mb)
GOT=$(curl -sf -H "$AUTH" "$URL/big/m/resolve/main/big.safetensors" | sha256sum | cut -c1-64)
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
echo "uploaded $BYTES bytes in ${SECS}s ($(awk -v n="$BYTES" -v s="$SECS" 'BEGIN { printf "%.0f", n / s / 1e6 }') MB/s); server peak RSS ${PEAK} MB (idle ${IDLE} MB, limit ${LIMIT_MB} MB)"
[[ "$GOT" == "$OID" ]] || { echo "FAIL: downloaded sha256 $GOT != $OID"; exit 1; }
grep -q '"commitOid"' commit.json || { echo "FAIL: commit: $(cat commit.json)"; exit 1; }
(( PEAK < LIMIT_MB )) || { echo "FAIL: peak RSS ${PEAK} MB >= ${LIMIT_MB} MB"; exit 1; }
echo "PASS"
