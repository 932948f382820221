#!/usr/bin/env bash
# The peer protocol's server side against a real `hubnode serve` on 127.0.0.1: the catalog, what
# a node holds of a revision, a revision's expert index with chunk ranges, chunks by id (decoded
# and checked against their ids by `hubnode chunk get`, equal to the bytes a Range download
# gives), batches with missing ids, clear errors, and who may have which chunk: callers name a
# revision they may read (private, gated, other namespaces, revoked tokens), trusted nodes sign
# (untrusted, forged, stale and revoked signatures). Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

hub testmodel --family qwen3_moe --size small --seed 4 --out "$WORK/m" > /dev/null
hub import "$WORK/m" --repo org/moe > /dev/null
hub import "$WORK/m" --repo org/hidden --private > /dev/null
# Models whose chunks no public repo holds: one private, one gated.
hub testmodel --family qwen3_moe --size tiny --seed 5 --out "$WORK/p" > /dev/null
hub import "$WORK/p" --repo acme/secret --private > /dev/null
hub testmodel --family qwen3_moe --size tiny --seed 6 --out "$WORK/g" > /dev/null
hub import "$WORK/g" --repo acme/gated > /dev/null
hub repo visibility acme/gated gated > /dev/null
ACME=$(hub token create --name acme-reader --scope read --namespace acme)
OTHER=$(hub token create --name other-reader --scope read --namespace other)
ANY=$(hub token create --name any-reader --scope read)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
P=$U/api/peer/v1

curl -s "$P/catalog" > "$WORK/catalog"
check "catalog lists the repo" True "$(jq_ '[r for r in d["repos"] if r["id"] == "org/moe"][0]["refs"][0]["name"] == "refs/heads/main"' < "$WORK/catalog")"
check "catalog hides private repos" False "$(jq_ 'any(r["id"] == "org/hidden" for r in d["repos"])' < "$WORK/catalog")"
check "catalog names the node key" 64 "$(jq_ 'len(d["node_key"])' < "$WORK/catalog")"
COMMIT=$(jq_ '[r for r in d["repos"] if r["id"] == "org/moe"][0]["refs"][0]["commit"]' < "$WORK/catalog")

curl -s "$P/have/org/moe?rev=main" > "$WORK/have"
check "have: every chunk held" True "$(jq_ 'd["held"] == d["chunks"] > 0 and d["commit"] == "'$COMMIT'"' < "$WORK/have")"
check "have: full bitmaps" True "$(jq_ '__import__("base64").b64decode(d["files"][0]["have"])[0] & 1 == 1' < "$WORK/have")"
check "have: private repo" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$P/have/org/hidden")"
check "have: bad revision" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$P/have/org/moe?rev=nope")"

# The expert index with chunk ranges; one expert's chunks fetched by id and compared with the
# same byte ranges downloaded from the file.
curl -s "$P/experts/org/moe" > "$WORK/experts"
curl -s "$U/api/models/org/moe/chunk-map/main" > "$WORK/map.json"
RESULT=$($PY - "$WORK/experts" "$WORK/map.json" "$HUBNODE" "$U" "$WORK" <<'PYEOF'
import base64, json, subprocess, sys, urllib.request
experts, bundle, hubnode, url, work = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4], sys.argv[5]
pred = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))["predicate"]
files = {f["path"]: f for f in pred["files"]}
e = [x for x in experts["experts"] if x["layer"] == 1 and x["expert"] == 2][0]
expert_bytes = sum(p["length"] for p in e["parts"])
moved = ok = 0
for p in e["parts"]:
    f = files[p["path"]]
    first, last = p["chunks"]
    offset = sum(c["size"] for c in f["chunks"][:first])
    for c in f["chunks"][first:last + 1]:
        raw = subprocess.run([hubnode, "chunk", "get", c["sha256"], "--from", url, "--repo", pred["repo"], "--rev", pred["commit"]],
                             capture_output=True, check=True).stdout
        req = urllib.request.Request(f"{url}/{pred['repo']}/resolve/{pred['commit']}/{p['path']}",
                                     headers={"Range": f"bytes={offset}-{offset + c['size'] - 1}"})
        ok += raw == urllib.request.urlopen(req).read()
        moved += len(raw)
        offset += c["size"]
print(len(e["parts"]), ok > 0, moved <= 1.1 * expert_bytes)
PYEOF
)
check "one expert's chunks by id = its bytes, <= 1.1x the expert" "3 True True" "$RESULT"

# Chunk errors and batches. A chunk is served within a revision the caller may read.
ID=$($PY -c "import base64,json,sys; b=json.load(open(sys.argv[1])); p=json.loads(base64.b64decode(b['dsseEnvelope']['payload'])); print(p['predicate']['files'][0]['chunks'][0]['sha256'])" "$WORK/map.json")
ZERO=$(printf '0%.0s' $(seq 64))
check "chunk by id in a public revision" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$ID?repo=org/moe&rev=$COMMIT")"
check "chunk by id, revision by branch" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$ID?repo=org/moe&rev=main")"
check "chunk without a revision: refused" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$ID")"
check "unknown chunk" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$ZERO?repo=org/moe")"
check "malformed chunk id" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/xyz?repo=org/moe")"
"$HUBNODE" chunk get "$(printf 'a%.0s' $(seq 64))" --from "$U" --repo org/moe > /dev/null 2> "$WORK/err2"
check "chunk get: missing is NotFound" "1 True" "$? $(grep -q NotFound "$WORK/err2" && echo True)"

# Private and gated chunks (issue 13, items 1-2): ids taken from the maps their readers get.
first_chunk() { $PY -c "import base64,json,sys; b=json.load(sys.stdin); p=json.loads(base64.b64decode(b['dsseEnvelope']['payload'])); print(p['predicate']['files'][-1]['chunks'][0]['sha256'])"; }
SECRET=$(curl -s -H "Authorization: Bearer $ACME" "$U/api/models/acme/secret/chunk-map/main" | first_chunk)
GATED=$(curl -s -H "Authorization: Bearer $ACME" "$U/api/models/acme/gated/chunk-map/main" | first_chunk)
check "gated chunk map: anonymous refused" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/models/acme/gated/chunk-map/main")"
check "private chunk map: anonymous sees no repo" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/models/acme/secret/chunk-map/main")"
check "private chunk map: another namespace's token" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OTHER" "$U/api/models/acme/secret/chunk-map/main")"
check "private chunk, named in a public revision: absent" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$SECRET?repo=org/moe")"
check "private chunk, anonymous, its own revision" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$SECRET?repo=acme/secret")"
check "private chunk, another namespace's token" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $OTHER" "$P/chunks/$SECRET?repo=acme/secret")"
check "private chunk, the namespace's reader" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACME" "$P/chunks/$SECRET?repo=acme/secret")"
check "gated chunk, anonymous" 403 "$(curl -s -o /dev/null -w '%{http_code}' "$P/chunks/$GATED?repo=acme/gated")"
check "gated chunk, a token for every namespace" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ANY" "$P/chunks/$GATED?repo=acme/gated")"
check "absent and unreferenced answer alike" "$(curl -s "$P/chunks/$ZERO?repo=org/moe" | sed "s/$ZERO/X/")" "$(curl -s "$P/chunks/$SECRET?repo=org/moe" | sed "s/$SECRET/X/")"
hub token revoke acme-reader > /dev/null
check "a revoked reader loses the chunk" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ACME" "$P/chunks/$SECRET?repo=acme/secret")"
batch() { curl -s -H 'Content-Type: application/json' -d "$1" "$P/chunks" -o "$WORK/batch"; }
status_of() { $PY -c "
import struct, sys
b = open(sys.argv[1], 'rb').read()
i, out = 0, []
while i < len(b):
    cid, st, n = b[i:i+32].hex(), b[i+32], struct.unpack('<I', b[i+33:i+37])[0]
    out.append(str(st)); i += 37 + n
print(' '.join(out))
" "$WORK/batch"; }
batch "{\"ids\": [\"$ID\", \"$SECRET\"], \"repo\": \"org/moe\"}"
check "batch in a public revision: the private chunk is absent" "0 1" "$(status_of)"
check "batch without a revision: refused" 400 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"ids\": [\"$SECRET\"]}" "$P/chunks")"

# A node the trust store trusts signs its requests and may fetch any chunk; an untrusted or
# forged signature gains nothing.
NODE="$HUBNODE --data $WORK/peer -q"
$NODE chunk get "$SECRET" --from "$U" --sign > /dev/null 2> "$WORK/err3"
check "untrusted node key: refused" "1 True" "$? $(grep -q 'refused chunk' "$WORK/err3" && echo True)"
$NODE node-key > "$WORK/peer.pub"
hub trust add-node-key --key "$WORK/peer.pub" --name peer-b > /dev/null
$NODE chunk get "$SECRET" --from "$U" --sign > "$WORK/secret.raw"
check "trusted node key: any chunk" "0 $SECRET" "$? $(sha256sum < "$WORK/secret.raw" | cut -c1-64)"
check "trusted node key, public chunk with a revision" 0 "$($NODE chunk get "$ID" --from "$U" --sign --repo org/moe > /dev/null; echo $?)"
HINT=$($PY -c "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())" "$WORK/peer.pub")
NOW=$(date +%s)
check "forged signature" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Hubnode-Node-Key: $HINT" -H "X-Hubnode-Time: $NOW" -H "X-Hubnode-Signature: MEUCIQDm" "$P/chunks/$SECRET")"
check "stale request" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H "X-Hubnode-Node-Key: $HINT" -H "X-Hubnode-Time: $((NOW - 3600))" -H "X-Hubnode-Signature: MEUCIQDm" "$P/chunks/$SECRET")"
hub trust revoke peer-b > /dev/null
check "revoked node key: refused" 1 "$($NODE chunk get "$SECRET" --from "$U" --sign > /dev/null 2>&1; echo $?)"
check "revoked node key, public revision: as anonymous" 0 "$($NODE chunk get "$ID" --from "$U" --sign --repo org/moe > /dev/null; echo $?)"

batch "{\"ids\": [\"$ID\", \"$ZERO\"], \"repo\": \"org/moe\", \"rev\": \"$COMMIT\"}"
check "batch framing" True "$($PY -c "
import struct, sys
b = open(sys.argv[1], 'rb').read()
i, out = 0, []
while i < len(b):
    cid, st, n = b[i:i+32].hex(), b[i+32], struct.unpack('<I', b[i+33:i+37])[0]
    out.append((cid, st, n)); i += 37 + n
print(len(out) == 2 and out[0][0] == sys.argv[2] and out[0][1] == 0 and out[0][2] > 0 and out[1][1] == 1 and out[1][2] == 0)
" "$WORK/batch" "$ID")"
check "batch too large" 400 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "{\"repo\": \"org/moe\", \"ids\": [$($PY -c "print(','.join(['\"' + '0'*64 + '\"'] * 300))")]}" "$P/chunks")"
check "batch bad body" 400 "$(curl -s -o /dev/null -w '%{http_code}' -d 'nope' "$P/chunks")"
check "unknown peer route" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$P/nothing")"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
