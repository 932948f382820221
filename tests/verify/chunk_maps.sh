#!/usr/bin/env bash
# Chunk maps end to end: `hubnode chunkmap sign` with the node key and with a publisher key,
# `chunkmap verify` with a key, with the trust store (refused until the node key is trusted),
# against the store (--compare), a tampered map refused; `serve` hands out node-signed maps at
# /api/models/{repo}/chunk-map/{rev}, and a partial download is checked chunk by chunk against
# the map (a corrupted chunk is caught). Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3

hub testmodel --family mixtral --size small --seed 9 --out "$WORK/m" > /dev/null
hub import "$WORK/m" --repo org/model > /dev/null
COMMIT=$(hub refs org/model | awk '/refs\/heads\/main/ {print $1}')

# Signed by this node's key (created on first use, mode 0600).
hub chunkmap sign org/model --out "$WORK/map.json" 2> "$WORK/sign.err"
check "sign with the node key" 0 "$?"
check "node key is private" 600 "$(stat -c %a "$WORK/data/node.key")"
hub node-key > "$WORK/node.pub"
check "node-key prints the public key" "$(cat "$WORK/data/node.key.pub")" "$(cat "$WORK/node.pub")"
hub chunkmap verify "$WORK/map.json" --key "$WORK/node.pub" --compare > "$WORK/v.out"
check "verify with the key and compare" "0 True" "$? $(grep -q 'matches the store' "$WORK/v.out" && echo True)"
check "map names the commit" True "$(grep -q "@$COMMIT" "$WORK/v.out" && echo True)"

# The trust store: refused until the node key is trusted; then accepted as a node key.
hub chunkmap verify "$WORK/map.json" > /dev/null 2> "$WORK/err"
check "untrusted node key refused" "1 True" "$? $(grep -q PermissionDenied "$WORK/err" && echo True)"
hub trust add-node-key --key "$WORK/node.pub" --name self > /dev/null
hub chunkmap verify "$WORK/map.json" > "$WORK/v.out"
check "trusted node key accepted" "0 True" "$? $(grep -q 'trusted node key self' "$WORK/v.out" && echo True)"

# A publisher key of the namespace signs too.
hub keygen --out "$WORK/pub.key" > /dev/null
hub trust add-key org --key "$WORK/pub.key.pub" --name alice > /dev/null
hub chunkmap sign org/model --key "$WORK/pub.key" --out "$WORK/map2.json" 2> /dev/null
hub chunkmap verify "$WORK/map2.json" > "$WORK/v.out"
check "publisher key accepted" "0 True" "$? $(grep -q 'publisher key alice' "$WORK/v.out" && echo True)"

# Tampering: one chunk id changed in the signed payload.
$PY - "$WORK/map.json" "$WORK/bad.json" <<'PY'
import base64, json, sys
b = json.load(open(sys.argv[1]))
st = json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))
st["predicate"]["files"][-1]["chunks"][0]["sha256"] = "0" * 64
b["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(st).encode()).decode()
json.dump(b, open(sys.argv[2], "w"))
PY
hub chunkmap verify "$WORK/bad.json" --key "$WORK/node.pub" > /dev/null 2> "$WORK/err"
check "tampered map refused" "1 True" "$? $(grep -q PermissionDenied "$WORK/err" && echo True)"

# Served: the node-signed map over HTTP, then a partial download checked chunk by chunk.
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/serve.err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
check "chunk-map status" 200 "$(curl -s -o "$WORK/served.json" -w '%{http_code}' "$U/api/models/org/model/chunk-map/main")"
"$HUBNODE" --data "$WORK/data" chunkmap verify "$WORK/served.json" --key "$WORK/node.pub" > /dev/null 2>&1
check "served map verifies with the node key" 0 "$?"
check "unknown repo: RepoNotFound" 401 "$(curl -s -o /dev/null -w "%{http_code}" "$U/api/models/org/nope/chunk-map")"
RESULT=$($PY - "$WORK/served.json" "$U" <<'PY'
import base64, hashlib, json, sys, urllib.request
bundle, url = json.load(open(sys.argv[1])), sys.argv[2]
st = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
pred = st["predicate"]
f = max(pred["files"], key=lambda f: len(f["chunks"]))
offsets, o = [], 0
for c in f["chunks"]:
    offsets.append(o)
    o += c["size"]
ok = 0
for k in (1, len(f["chunks"]) // 2, len(f["chunks"]) - 1):  # a partial file: three chunks only
    c = f["chunks"][k]
    req = urllib.request.Request(f"{url}/{pred['repo']}/resolve/{pred['commit']}/{f['path']}",
                                 headers={"Range": f"bytes={offsets[k]}-{offsets[k] + c['size'] - 1}"})
    data = urllib.request.urlopen(req).read()
    ok += hashlib.sha256(data).hexdigest() == c["sha256"] and len(data) == c["size"]
    bad = bytearray(data)
    bad[0] ^= 1
    ok += hashlib.sha256(bytes(bad)).hexdigest() != c["sha256"]
print(f"{len(f['chunks']) > 2} {ok}")
PY
)
check "partial file verified chunk by chunk" "True 6" "$RESULT"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
