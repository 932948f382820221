#!/usr/bin/env bash
# The write API end to end against a real `hubnode serve` on 127.0.0.1: the Python client's LFS
# upload flow reproduced with curl exactly as huggingface_hub sends it (create, preupload, LFS batch,
# an unauthenticated PUT to the signed href, NDJSON commit, validate-yaml), multipart uploads,
# signed-URL security, interrupted uploads, parentCommit and create_pr, fine-tune dedup measured
# against the bytes that changed, lineage, the derivative license rule, private repos, bad input,
# branches, tags, moves and deletes, and GET /api/tokens for each kind of caller. Prints "N passed, M failed".
# Usage: write_api.sh HUBNODE
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
R=$WORK/r  # the last response: $R.body, $R.h
# call CURL-ARGS...: one request; prints the status, keeps the body and the headers.
# Every error answer met on the way must carry X-Error-Code, X-Error-Message and a JSON error:
# the ones that do not are listed in $WORK/bare_errors, checked at the end.
call() {
  local c
  c=$(curl -s -o "$R.body" -D "$R.h" -w '%{http_code}' "$@")
  if [[ $c -ge 400 && " $* " != *" -I "* ]]; then
    if ! grep -qi '^X-Error-Code: .' "$R.h" || ! grep -qi '^X-Error-Message: .' "$R.h" ||
       [[ $($PY -c "import json,sys; d=json.load(open(sys.argv[1])); print(isinstance(d.get('error'), str) and bool(d['error']))" "$R.body" 2>/dev/null) != True ]]; then
      echo "$c ${*: -1}" >> "$WORK/bare_errors"
    fi
    echo "$c" >> "$WORK/error_count"
  fi
  echo "$c"
}
# jb EXPR: a Python expression over the last body parsed as JSON (d); "ERR" when it is not JSON.
jb() { $PY -c "import json,sys
try: d=json.load(open(sys.argv[1]))
except Exception: print('ERR'); sys.exit()
print($1)" "$R.body"; }
hdr() { grep -i "^$1:" "$R.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
b64() { base64 -w0 "$1"; }

# Tokens: a write token for the namespace ns, one for another namespace, one for nc (the
# non-commercial namespace), and a read-only one. Non-commercial bases are allowed in nc only.
TW=$(hub token create --name writer --scope write --namespace ns)
TO=$(hub token create --name other --scope write --namespace other)
TN=$(hub token create --name nc --scope write --namespace nc)
TR=$(hub token create --name reader --scope read)
hub trust policy --namespace nc --class non-commercial --verdict allow > /dev/null
AW="Authorization: Bearer $TW"
JSON="Content-Type: application/json"
LFSJ=(-H "Accept: application/vnd.git-lfs+json" -H "Content-Type: application/vnd.git-lfs+json")
NDJ="Content-Type: application/x-ndjson"

# A small multipart threshold when this build has the flags (the default is 256 MiB).
MP=()
MULTIPART=0
if "$HUBNODE" serve --help 2>&1 | grep -q -- --multipart-threshold; then
  MP=(--multipart-threshold 4194304 --multipart-chunk 1048576)
  MULTIPART=1
fi
start() {
  "$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference "${MP[@]}" > "$WORK/out" 2>> "$WORK/err" &
  PID=$!
  # (up to 30 s: a store opening under a loaded CI's other tests can take more than the usual
  # fraction of a second)
  for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; PID=; }
start

# main_sha REPO [TOKEN]: where main is now ("none" without a commit, the status when unreadable).
main_sha() {
  local c
  c=$(call -H "Authorization: Bearer ${2:-$TW}" "$U/api/models/$1/revision/main")
  if [[ $c == 200 ]]; then jb 'd["sha"]'; elif [[ $c == 404 ]]; then echo none; else echo "$c"; fi
}
# batch REPO OID SIZE [TRANSFERS]: the LFS batch request exactly as huggingface_hub sends it.
batch() {
  call "${LFSJ[@]}" -H "$AW" -d "{\"operation\":\"upload\",\"transfers\":${4:-[\"basic\",\"multipart\"]},\"objects\":[{\"oid\":\"$2\",\"size\":$3}],\"hash_algo\":\"sha256\",\"ref\":{\"name\":\"main\"}}" "$U/$1.git/info/lfs/objects/batch"
}
# put HREF FILE: the upload PUT as the client sends it: raw bytes, no Authorization, no headers.
put() { call -X PUT -H "Expect:" --data-binary @"$2" "$1"; }
# ndjson OUT HEADER-VALUE LINE...: an NDJSON commit body.
ndjson() {
  local out=$1
  shift
  printf '{"key":"header","value":%s}\n' "$1" > "$out"
  shift
  for l in "$@"; do printf '%s\n' "$l" >> "$out"; done
}
file_op() { printf '{"key":"file","value":{"path":"%s","content":"%s","encoding":"base64"}}' "$1" "$(b64 "$2")"; }
lfs_op() { printf '{"key":"lfsFile","value":{"path":"%s","algo":"sha256","oid":"%s","size":%s}}' "$1" "$2" "$3"; }
commit() {  # commit REPO BODYFILE [QUERY] [TOKEN]
  call -H "Authorization: Bearer ${4:-$TW}" -H "$NDJ" --data-binary @"$2" "$U/api/models/$1/commit/main${3:-}"
}

# ---- 1. The Python client's LFS flow ---------------------------------------------------------
check "create repo" 200 "$(call -H "$AW" -H "$JSON" -d '{"name":"lfs","organization":"ns","type":"model"}' "$U/api/repos/create")"
check "create: url on this endpoint" "$U/ns/lfs" "$(jb 'd["url"]')"
check "create again: 409" 409 "$(call -H "$AW" -H "$JSON" -d '{"name":"lfs","organization":"ns","type":"model"}' "$U/api/repos/create")"
# Names that differ only in case, and names the URLs use for something else (issue 13, item 10).
TADMIN=$(hub token create --name admin --scope write)
AA="Authorization: Bearer $TADMIN"
check "a name differing only in case: 409" 409 "$(call -H "$AW" -H "$JSON" -d '{"name":"LFS","organization":"ns"}' "$U/api/repos/create")"
check "... in the namespace's case too: 409" 409 "$(call -H "$AA" -H "$JSON" -d '{"name":"lfs","organization":"NS"}' "$U/api/repos/create")"
check "... without naming the other repo" False "$(grep -q 'ns/lfs' "$R.body" && echo True || echo False)"
for ns in api datasets spaces models v1 Models; do
  check "namespace $ns collides with a route: 400" 400 "$(call -H "$AA" -H "$JSON" -d "{\"name\":\"x\",\"organization\":\"$ns\"}" "$U/api/repos/create")"
done
check "a bare name that is a route: 400" 400 "$(call -H "$AA" -H "$JSON" -d '{"name":"api"}' "$U/api/repos/create")"
check "create ns/spare" 200 "$(call -H "$AW" -H "$JSON" -d '{"name":"spare","organization":"ns"}' "$U/api/repos/create")"
check "a move onto another repo's name in other case: 409" 409 "$(call -H "$AA" -H "$JSON" -d '{"fromRepo":"ns/spare","toRepo":"NS/LFS"}' "$U/api/repos/move")"
check "a move into a route's namespace: 400" 400 "$(call -H "$AA" -H "$JSON" -d '{"fromRepo":"ns/spare","toRepo":"datasets/spare"}' "$U/api/repos/move")"
check "a repo's own name in other case: a rename" 200 "$(call -H "$AA" -H "$JSON" -d '{"fromRepo":"ns/spare","toRepo":"ns/Spare"}' "$U/api/repos/move")"
head -c 3000000 /dev/urandom > "$WORK/blob.bin"
printf -- '---\nlicense: apache-2.0\ntags:\n- test\n---\n\n# A test repo\n' > "$WORK/README.md"
SHA=$(sha "$WORK/blob.bin") SZ=$(size "$WORK/blob.bin")
check "preupload" 200 "$(call -H "$AW" -H "$JSON" -d "{\"files\":[{\"path\":\"weights/blob.bin\",\"size\":$SZ,\"sample\":\"$(head -c 512 "$WORK/blob.bin" | base64 -w0)\"},{\"path\":\"README.md\",\"size\":$(size "$WORK/README.md"),\"sample\":\"$(head -c 512 "$WORK/README.md" | base64 -w0)\"}]}" "$U/api/models/ns/lfs/preupload/main")"
check "preupload: modes and shouldIgnore" "lfs False regular False" "$(jb '" ".join(str(x) for f in d["files"] for x in (f["uploadMode"], f["shouldIgnore"]))')"
check "LFS batch" 200 "$(batch ns/lfs "$SHA" "$SZ")"
check "LFS batch content type" "application/vnd.git-lfs+json" "$(hdr Content-Type)"
check "LFS batch: basic, one upload action" "basic True str int" "$(jb 'd.get("transfer"), "upload" in d["objects"][0]["actions"], type(d["objects"][0]["oid"]).__name__, type(d["objects"][0]["size"]).__name__')"
HREF=$(jb 'd["objects"][0]["actions"]["upload"]["href"]')
check "href is on this endpoint and signed" True "$($PY -c "import sys; h=sys.argv[1]; print(h.startswith(sys.argv[2] + '/') and 'sig=' in h)" "$HREF" "$U")"
check "PUT to the href without Authorization" 200 "$(put "$HREF" "$WORK/blob.bin")"
check "validate-yaml on the README" "200 [] []" "$(call -H "$AW" -H "$JSON" -d "$($PY -c "import json,sys; print(json.dumps({'content': open(sys.argv[1]).read(), 'repoType': 'model'}))" "$WORK/README.md")" "$U/api/validate-yaml") $(jb 'd["errors"], d["warnings"]' | tr -d "(),")"
ndjson "$WORK/c1" '{"summary":"Upload with the Python flow","description":""}' "$(file_op README.md "$WORK/README.md")" "$(lfs_op weights/blob.bin "$SHA" "$SZ")"
check "commit" 200 "$(commit ns/lfs "$WORK/c1")"
C1=$(jb 'd["commitOid"]')
check "commit: commitOid and commitUrl" True "$(jb "len(d['commitOid']) == 40 and d['commitUrl'] == '$U/ns/lfs/commit/' + d['commitOid']")"
check "main is the commit" "$C1" "$(main_sha ns/lfs)"
check "download LFS file byte-exact" "$SHA" "$(curl -s "$U/ns/lfs/resolve/main/weights/blob.bin" | sha256sum | cut -d' ' -f1)"
check "download README byte-exact" "$(sha "$WORK/README.md")" "$(curl -s "$U/ns/lfs/resolve/main/README.md" | sha256sum | cut -d' ' -f1)"
call -I -H "Accept-Encoding: identity" "$U/ns/lfs/resolve/main/weights/blob.bin" > /dev/null
check "HEAD LFS: status" 200 "$(head -1 "$R.h" | cut -d' ' -f2)"
check "HEAD LFS: ETag = sha256" "\"$SHA\"" "$(hdr ETag)"
check "HEAD LFS: X-Linked-Etag" "\"$SHA\"" "$(hdr X-Linked-Etag)"
check "HEAD LFS: X-Linked-Size" "$SZ" "$(hdr X-Linked-Size)"
check "HEAD LFS: Content-Length" "$SZ" "$(hdr Content-Length)"
check "HEAD LFS: X-Repo-Commit" "$C1" "$(hdr X-Repo-Commit)"
check "HEAD LFS: no Xet headers" 0 "$(grep -ci '^x-xet' "$R.h")"
call -I "$U/ns/lfs/resolve/main/README.md" > /dev/null
GITSHA=$($PY -c "import hashlib,sys; b=open(sys.argv[1],'rb').read(); print(hashlib.sha1(b'blob %d\0' % len(b) + b).hexdigest())" "$WORK/README.md")
check "HEAD README: ETag = git blob sha1" "\"$GITSHA\"" "$(hdr ETag)"
check "batch again: already stored, no actions" "200 False" "$(batch ns/lfs "$SHA" "$SZ") $(jb '"actions" in d["objects"][0]')"
check "preupload again: remote oid = sha256" "$SHA" "$(call -H "$AW" -H "$JSON" -d "{\"files\":[{\"path\":\"weights/blob.bin\",\"size\":$SZ,\"sample\":\"\"}]}" "$U/api/models/ns/lfs/preupload/main" > /dev/null; jb 'd["files"][0].get("oid")')"
check "repo info lists the files" "200 True" "$(call "$U/api/models/ns/lfs") $(jb '{"README.md", "weights/blob.bin"} <= {s["rfilename"] for s in d["siblings"]} and d["sha"] == "'"$C1"'"')"
check "preupload: gitIgnore and .git/ are ignored" "True True True False" "$(call -H "$AW" -H "$JSON" -d '{"files":[{"path":"logs/x.txt","size":3},{"path":"a/b.pyc","size":3},{"path":".git/config","size":3},{"path":"keep.txt","size":3}],"gitIgnore":"logs/\n*.pyc\n"}' "$U/api/models/ns/lfs/preupload/main" > /dev/null; jb '" ".join(str(f["shouldIgnore"]) for f in d["files"])')"
check "validate-yaml: a README without front matter is valid, with a warning" "200 0 1" "$(call -H "$JSON" -d '{"content":"# Just a title\n","repoType":"model"}' "$U/api/validate-yaml") $(jb 'len(d["errors"]), len(d["warnings"])' | tr -d "(),")"
check "validate-yaml: broken YAML is an error" "400 True" "$(call -H "$JSON" -d '{"content":"---\nlicense: [unclosed\n---\n","repoType":"model"}' "$U/api/validate-yaml") $(jb 'len(d["errors"]) > 0')"

# ---- 2. Multipart ----------------------------------------------------------------------------
if [[ $MULTIPART == 1 ]]; then
  head -c 5500000 /dev/urandom > "$WORK/big.bin"
  BSHA=$(sha "$WORK/big.bin") BSZ=$(size "$WORK/big.bin")
  check "multipart batch" "200 multipart" "$(batch ns/lfs "$BSHA" "$BSZ") $(jb 'd.get("transfer")')"
  cp "$R.body" "$WORK/mp.json"
  check "multipart: chunk_size and ceil(size/chunk) parts" "1048576 6" "$($PY -c "import json,sys; h=json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['header']; print(h['chunk_size'], len([k for k in h if k != 'chunk_size']))" "$WORK/mp.json")"
  split -b 1048576 -d -a 5 "$WORK/big.bin" "$WORK/part."
  COMPLETE=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['href'])" "$WORK/mp.json")
  check "complete before the parts: 400" 400 "$(call "${LFSJ[@]}" -d "{\"oid\":\"$BSHA\",\"parts\":[]}" "$COMPLETE")"
  PARTS=()
  ok=0 etags=0
  for n in 1 2 3 4 5 6; do
    URL=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['header']['%05d' % int(sys.argv[2])])" "$WORK/mp.json" $n)
    [[ $(put "$URL" "$WORK/part.$(printf %05d $((n - 1)))") == 200 ]] && ok=$((ok + 1))
    E=$(hdr ETag)
    [[ -n $E ]] && etags=$((etags + 1))
    PARTS+=("{\"partNumber\":$n,\"etag\":$($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$E")}")
  done
  check "multipart: 6 part PUTs, each with an ETag" "6 6" "$ok $etags"
  check "multipart: a part of the wrong size" 400 "$(call -X PUT -H "Expect:" --data-binary "short" "$URL")"
  check "multipart complete (no auth)" 200 "$(call "${LFSJ[@]}" -d "{\"oid\":\"$BSHA\",\"parts\":[$(IFS=,; echo "${PARTS[*]}")]}" "$COMPLETE")"
  check "multipart object stored" "200 False" "$(batch ns/lfs "$BSHA" "$BSZ") $(jb '"actions" in d["objects"][0]')"
  ndjson "$WORK/c2" '{"summary":"multipart"}' "$(lfs_op big.bin "$BSHA" "$BSZ")"
  check "commit the multipart object" 200 "$(commit ns/lfs "$WORK/c2")"
  check "multipart download byte-exact" "$BSHA" "$(curl -s "$U/ns/lfs/resolve/main/big.bin" | sha256sum | cut -d' ' -f1)"
  # Parts in reverse order: each waits on disk until the ones before it are in.
  head -c 5000000 /dev/urandom > "$WORK/rev.bin"
  RSHA=$(sha "$WORK/rev.bin")
  batch ns/lfs "$RSHA" 5000000 > /dev/null
  cp "$R.body" "$WORK/rev.json"
  split -b 1048576 -d -a 5 "$WORK/rev.bin" "$WORK/rev."
  ok=0
  for n in 5 4 3 2 1; do
    URL=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['header']['%05d' % int(sys.argv[2])])" "$WORK/rev.json" $n)
    [[ $(put "$URL" "$WORK/rev.$(printf %05d $((n - 1)))") == 200 ]] && ok=$((ok + 1))
  done
  check "multipart: 5 parts in reverse order" 5 "$ok"
  COMPLETE=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['href'])" "$WORK/rev.json")
  check "multipart: reverse-order upload completes" 200 "$(call "${LFSJ[@]}" -d "{\"oid\":\"$RSHA\",\"parts\":[]}" "$COMPLETE")"
  ndjson "$WORK/c2r" '{"summary":"reverse"}' "$(lfs_op rev.bin "$RSHA" 5000000)"
  check "commit the reverse-order object" 200 "$(commit ns/lfs "$WORK/c2r")"
  check "reverse-order download byte-exact" "$RSHA" "$(curl -s "$U/ns/lfs/resolve/main/rev.bin" | sha256sum | cut -d' ' -f1)"
  # Parts whose bytes do not hash to the oid: the completion is refused, nothing is stored.
  head -c 4500000 /dev/urandom > "$WORK/mp2.bin"
  M2SHA=$(sha "$WORK/mp2.bin")
  batch ns/lfs "$M2SHA" 4500000 > /dev/null
  cp "$R.body" "$WORK/mp2.json"
  head -c 4500000 /dev/urandom > "$WORK/mp2bad.bin"
  split -b 1048576 -d -a 5 "$WORK/mp2bad.bin" "$WORK/bad."
  for n in 1 2 3 4 5; do
    URL=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['header']['%05d' % int(sys.argv[2])])" "$WORK/mp2.json" $n)
    put "$URL" "$WORK/bad.$(printf %05d $((n - 1)))" > /dev/null
  done
  COMPLETE=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['objects'][0]['actions']['upload']['href'])" "$WORK/mp2.json")
  check "multipart: parts that do not hash to the oid" 400 "$(call "${LFSJ[@]}" -d "{\"oid\":\"$M2SHA\",\"parts\":[]}" "$COMPLETE")"
  check "multipart: the bad object is not stored" True "$(batch ns/lfs "$M2SHA" 4500000 > /dev/null; jb '"actions" in d["objects"][0]')"
else
  echo "NOTE: this hubnode has no --multipart-threshold flag: multipart uploads not checked"
fi

# ---- 3. Signed URL security ------------------------------------------------------------------
BEFORE=$(main_sha ns/lfs)
head -c 1000000 /dev/urandom > "$WORK/s.bin"
SSHA=$(sha "$WORK/s.bin") SSZ=$(size "$WORK/s.bin")
batch ns/lfs "$SSHA" "$SSZ" > /dev/null
SHREF=$(jb 'd["objects"][0]["actions"]["upload"]["href"]')
TAMPERED=$($PY -c "import sys; h=sys.argv[1]; print(h[:-1] + ('0' if h[-1] != '0' else '1'))" "$SHREF")
check "tampered sig: 403" 403 "$(put "$TAMPERED" "$WORK/s.bin")"
check "tampered sig: error code" InvalidSignature "$(hdr X-Error-Code)"
check "tampered size (sig kept): 403" 403 "$(put "${SHREF/size=$SSZ/size=$((SSZ + 1))}" "$WORK/s.bin")"
check "href for another oid: 403" 403 "$(put "${SHREF/$SSHA/$SHA}" "$WORK/s.bin")"
head -c 1000000 /dev/urandom > "$WORK/wrong.bin"
check "wrong body (sha256 mismatch): 400" 400 "$(put "$SHREF" "$WORK/wrong.bin")"
check "wrong body: not stored (batch still asks)" True "$(batch ns/lfs "$SSHA" "$SSZ" > /dev/null; jb '"actions" in d["objects"][0]')"
check "wrong body: a commit naming it fails 4xx" 4 "$(ndjson "$WORK/c3" '{"summary":"x"}' "$(lfs_op s.bin "$SSHA" "$SSZ")"; commit ns/lfs "$WORK/c3" | cut -c1)"
check "wrong body: main unchanged" "$BEFORE" "$(main_sha ns/lfs)"
head -c $((SSZ - 1000)) "$WORK/s.bin" > "$WORK/short.bin"
check "Content-Length below the signed size: 400" 400 "$(put "$SHREF" "$WORK/short.bin")"
cat "$WORK/s.bin" "$WORK/README.md" > "$WORK/long.bin"
check "Content-Length above the signed size: 400" 400 "$(put "$SHREF" "$WORK/long.bin")"
check "after the refusals: not stored" True "$(batch ns/lfs "$SSHA" "$SSZ" > /dev/null; jb '"actions" in d["objects"][0]')"
check "chunked body over the signed size: 400" 400 "$(call -X PUT -H "Expect:" -H "Transfer-Encoding: chunked" --data-binary @"$WORK/long.bin" "$SHREF")"
check "chunked body under the signed size: 400" 400 "$(call -X PUT -H "Expect:" -H "Transfer-Encoding: chunked" --data-binary @"$WORK/short.bin" "$SHREF")"
check "after the chunked refusals: not stored" True "$(batch ns/lfs "$SSHA" "$SSZ" > /dev/null; jb '"actions" in d["objects"][0]')"
check "the right body still uploads" 200 "$(put "$SHREF" "$WORK/s.bin")"

# ---- 4. Interrupted uploads ------------------------------------------------------------------
head -c 4000000 /dev/urandom > "$WORK/i.bin"
ISHA=$(sha "$WORK/i.bin") ISZ=$(size "$WORK/i.bin")
batch ns/lfs "$ISHA" "$ISZ" '["basic"]' > /dev/null
IHREF=$(jb 'd["objects"][0]["actions"]["upload"]["href"]')
# Half the bytes under a Content-Length of the whole, then the connection closes.
$PY - "$IHREF" "$WORK/i.bin" <<'PYEOF'
import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
data = open(sys.argv[2], "rb").read()
s = socket.create_connection((u.hostname, u.port))
s.sendall(f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: {len(data)}\r\n\r\n".encode())
s.sendall(data[: len(data) // 2])
s.close()
PYEOF
sleep 0.3
check "half an upload, then close: main unchanged" "$BEFORE" "$(main_sha ns/lfs)"
check "half an upload: the batch still asks for it" True "$(batch ns/lfs "$ISHA" "$ISZ" > /dev/null; jb '"actions" in d["objects"][0]')"
check "half an upload: a commit naming it fails 4xx" 4 "$(ndjson "$WORK/c4" '{"summary":"x"}' "$(lfs_op i.bin "$ISHA" "$ISZ")"; commit ns/lfs "$WORK/c4" | cut -c1)"
# A rate-limited upload killed part way.
curl -s -o /dev/null -X PUT -H "Expect:" --limit-rate 1M --data-binary @"$WORK/i.bin" "$IHREF" &
CURL=$!
sleep 1.5
kill "$CURL" 2>/dev/null
wait "$CURL" 2>/dev/null
sleep 0.3
check "killed upload: main unchanged" "$BEFORE" "$(main_sha ns/lfs)"
check "killed upload: the batch still asks for it" True "$(batch ns/lfs "$ISHA" "$ISZ" > /dev/null; jb '"actions" in d["objects"][0]')"
check "after the interruptions the upload completes" 200 "$(put "$IHREF" "$WORK/i.bin")"
check "and is stored" False "$(batch ns/lfs "$ISHA" "$ISZ" > /dev/null; jb '"actions" in d["objects"][0]')"

# ---- 5. parentCommit and create_pr -----------------------------------------------------------
P0=$(main_sha ns/lfs)
echo "one" > "$WORK/one.txt"
ndjson "$WORK/c5" "{\"summary\":\"with parent\",\"parentCommit\":\"$P0\"}" "$(file_op one.txt "$WORK/one.txt")"
check "commit with the current parentCommit" 200 "$(commit ns/lfs "$WORK/c5")"
P1=$(jb 'd["commitOid"]')
echo "two" > "$WORK/two.txt"
ndjson "$WORK/c6" "{\"summary\":\"stale parent\",\"parentCommit\":\"$P0\"}" "$(file_op two.txt "$WORK/two.txt")"
check "stale parentCommit: 412" 412 "$(commit ns/lfs "$WORK/c6")"
check "stale parentCommit: main unchanged" "$P1" "$(main_sha ns/lfs)"
check "stale parentCommit: file absent" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$U/ns/lfs/resolve/main/two.txt")"
echo "pr file" > "$WORK/pr.txt"
ndjson "$WORK/c7" '{"summary":"a pull request"}' "$(file_op pr.txt "$WORK/pr.txt")"
check "create_pr=1" 200 "$(commit ns/lfs "$WORK/c7" '?create_pr=1')"
check "pullRequestUrl ends /discussions/1" True "$(jb 'd["pullRequestUrl"].endswith("/ns/lfs/discussions/1")')"
check "file readable at refs%2Fpr%2F1" "pr file" "$(curl -s "$U/ns/lfs/resolve/refs%2Fpr%2F1/pr.txt")"
check "create_pr: main unchanged" "$P1" "$(main_sha ns/lfs)"
check "second PR is /discussions/2" True "$(commit ns/lfs "$WORK/c7" '?create_pr=1' > /dev/null; jb 'd["pullRequestUrl"].endswith("/discussions/2")')"
# A short parentCommit (huggingface_hub allows 5 to 40 hex digits).
echo "short" > "$WORK/short.txt"
ndjson "$WORK/c12" "{\"summary\":\"short parent\",\"parentCommit\":\"${P1:0:7}\"}" "$(file_op short.txt "$WORK/short.txt")"
check "short parentCommit of the head" 200 "$(commit ns/lfs "$WORK/c12")"
P2=$(jb 'd["commitOid"]')
check "stale short parentCommit: 412" 412 "$(commit ns/lfs "$WORK/c12")"
check "malformed parentCommit: 400" 400 "$(ndjson "$WORK/c13" '{"summary":"x","parentCommit":"xyz"}' "$(file_op z.txt "$WORK/short.txt")"; commit ns/lfs "$WORK/c13")"
# Concurrent commits: with the same parentCommit exactly one wins; without one, all land.
for i in 1 2 3 4 5 6; do
  echo "race $i" > "$WORK/race$i.txt"
  ndjson "$WORK/race$i" "{\"summary\":\"race $i\",\"parentCommit\":\"$P2\"}" "$(file_op "race/$i.txt" "$WORK/race$i.txt")"
  ndjson "$WORK/free$i" "{\"summary\":\"free $i\"}" "$(file_op "free/$i.txt" "$WORK/race$i.txt")"
done
JOBS=()
for i in 1 2 3 4 5 6; do
  curl -s -o /dev/null -w '%{http_code}\n' -H "$AW" -H "$NDJ" --data-binary @"$WORK/race$i" "$U/api/models/ns/lfs/commit/main" >> "$WORK/race.codes" &
  JOBS+=($!)
done
wait "${JOBS[@]}"
check "6 racing commits on one parentCommit: one 200, five 412" "1 5" "$(grep -c '^200$' "$WORK/race.codes") $(grep -c '^412$' "$WORK/race.codes")"
JOBS=()
for i in 1 2 3 4 5 6; do
  curl -s -o /dev/null -w '%{http_code}\n' -H "$AW" -H "$NDJ" --data-binary @"$WORK/free$i" "$U/api/models/ns/lfs/commit/main" >> "$WORK/free.codes" &
  JOBS+=($!)
done
wait "${JOBS[@]}"
check "6 concurrent commits without parentCommit: all 200" 6 "$(grep -c '^200$' "$WORK/free.codes")"
check "... and all 6 files are on main" 6 "$(call "$U/api/models/ns/lfs" > /dev/null; jb 'sum(s["rfilename"].startswith("free/") for s in d["siblings"])')"

# ---- 6. Fine-tune dedup and lineage ----------------------------------------------------------
hub testmodel --family olmoe --size small --seed 3 --out "$WORK/base" > /dev/null
check "push the base" 0 "$("$HUBNODE" -q push "$WORK/base" ns/base --to "$U" --token "$TW" > "$WORK/push_base" 2>&1; echo $?)"
cp -r "$WORK/base" "$WORK/ft"
# Every 10th tensor (in file order across the shards) gets all its bytes flipped; sizes are kept.
CHANGED=$($PY - "$WORK/ft" <<'PYEOF'
import glob, json, struct, sys
changed = idx = 0
for path in sorted(glob.glob(sys.argv[1] + "/*.safetensors")):
    b = bytearray(open(path, "rb").read())
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8 : 8 + n])
    for name, t in sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]):
        if idx % 10 == 9:
            s, e = t["data_offsets"]
            for i in range(8 + n + s, 8 + n + e):
                b[i] ^= 0xFF
            changed += e - s
        idx += 1
    open(path, "wb").write(b)
print(changed)
PYEOF
)
sed -i '1a base_model: ns/base' "$WORK/ft/README.md"
FTBYTES=$(cat "$WORK"/ft/*.safetensors | wc -c)
stop
RAW0=$(hub stats --json | $PY -c "import json,sys; print(json.load(sys.stdin)['chunk_raw_bytes'])")
start
PUSHJSON=()
"$HUBNODE" push --help 2>&1 | grep -q -- --json && PUSHJSON=(--json)
check "push the fine-tune" 0 "$("$HUBNODE" -q push "$WORK/ft" ns/ft --to "$U" --token "$TW" "${PUSHJSON[@]}" > "$WORK/push_ft" 2> "$WORK/push_ft.err"; echo $?)"
stop
RAW1=$(hub stats --json | $PY -c "import json,sys; print(json.load(sys.stdin)['chunk_raw_bytes'])")
start
NEW=$((RAW1 - RAW0))
SLACK=$((64 << 10))  # safetensors headers, README, index, a chunk boundary or two
# What the commit says it added: `push --json` gives bytes.new exactly; the text form rounds.
PUSHNEW=$($PY - "$WORK/push_ft" <<'PYEOF'
import json, re, sys
text = open(sys.argv[1]).read()
try:
    print(json.loads(text)["bytes"]["new"])
except Exception:
    m = re.search(r"([0-9.]+) (B|KiB|MiB|GiB) new in the store", text)
    print(int(float(m.group(1)) * 1024 ** ["B", "KiB", "MiB", "GiB"].index(m.group(2))) if m else -1)
PYEOF
)
echo "fine-tune: $CHANGED tensor bytes changed of $FTBYTES; $NEW new raw chunk bytes in the store; the commit said $PUSHNEW new"
check "fine-tune: some tensors changed" True "$([[ $CHANGED -gt 0 && $CHANGED -lt $((FTBYTES / 5)) ]] && echo True)"
check "fine-tune: new stored bytes <= changed + slack" True "$([[ $NEW -gt 0 && $NEW -le $((CHANGED + SLACK)) ]] && echo True || echo "False ($NEW > $CHANGED + $SLACK)")"
check "fine-tune: new bytes < 1/4 of the weights" True "$([[ $NEW -lt $((FTBYTES / 4)) ]] && echo True)"
TOL=$([[ ${#PUSHJSON[@]} -gt 0 ]] && echo 0.01 || echo 0.06)
check "fine-tune: the commit's bytes.new matches the store" True "$($PY -c "import sys; p, n, t = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[4]); print(p > 0 and abs(p - n) <= max(t * n, 1024) and p <= int(sys.argv[3]))" "$PUSHNEW" "$NEW" "$((CHANGED + SLACK))" "$TOL")"
check "fine-tune downloads byte-exact" "$(sha "$WORK/ft/model-00002-of-00002.safetensors")" "$(curl -s "$U/ns/ft/resolve/main/model-00002-of-00002.safetensors" | sha256sum | cut -d' ' -f1)"
check "push again: up to date" True "$("$HUBNODE" -q push "$WORK/ft" ns/ft --to "$U" --token "$TW" 2>&1 | grep -q 'up to date' && echo True)"
check "lineage of the fine-tune" "200 ['ns/base']" "$(call "$U/api/models/ns/ft/lineage") $(jb '[b["id"] for b in d["bases"]]')"
check "lineage: base is on the node" True "$(jb 'd["bases"][0]["onNode"]')"
check "lineage of the base" "200 ['ns/ft']" "$(call "$U/api/models/ns/base/lineage") $(jb '[x["id"] for x in d["derived"]]')"

# ---- 7. A fine-tune that drops a non-commercial base's limit ---------------------------------
hub testmodel --family olmoe --size tiny --seed 5 --license cc-by-nc-4.0 --out "$WORK/ncbase" > /dev/null 2>&1
check "push a cc-by-nc-4.0 base into nc (policy allows it there)" 0 "$("$HUBNODE" -q push "$WORK/ncbase" nc/ncbase --to "$U" --token "$TN" > "$WORK/push_nc" 2>&1; echo $?)"
check "the same base refused in ns (default policy)" 1 "$("$HUBNODE" -q push "$WORK/ncbase" ns/ncbase --to "$U" --token "$TW" > /dev/null 2>&1; echo $?)"
check "refused base: ns/ncbase main has only its first commit" "200 ['.gitattributes']" "$(call -H "$AW" "$U/api/models/ns/ncbase/revision/main") $(jb '[s["rfilename"] for s in d["siblings"]]')"
printf -- '---\nlicense: cc-by-nc-4.0\n---\n\n# work in progress\n' > "$WORK/ncft0.md"
check "create nc/ncft" 200 "$(call -H "Authorization: Bearer $TN" -H "$JSON" -d '{"name":"ncft","organization":"nc"}' "$U/api/repos/create")"
ndjson "$WORK/c8" '{"summary":"start"}' "$(file_op README.md "$WORK/ncft0.md")"
check "a non-commercial card commits in nc" 200 "$(commit nc/ncft "$WORK/c8" '' "$TN")"
NC0=$(jb 'd["commitOid"]')
printf -- '---\nlicense: apache-2.0\nbase_model: nc/ncbase\n---\n\n# fine-tune\n' > "$WORK/ncft.md"
NCS=$(sha "$WORK/ncbase/model-00001-of-00002.safetensors") NCZ=$(size "$WORK/ncbase/model-00001-of-00002.safetensors")
ndjson "$WORK/c9" '{"summary":"relicense"}' "$(file_op README.md "$WORK/ncft.md")" "$(lfs_op model-00001-of-00002.safetensors "$NCS" "$NCZ")"
# The base's shard is held for nc/ncbase only: naming it by hash is not enough, it must be uploaded
# to nc/ncft (its bytes hashed), as on the Hub.
check "an object of another repo cannot be claimed by its hash: 422" 422 "$(commit nc/ncft "$WORK/c9" '' "$TN")"
AW_SAVE=$AW
AW="Authorization: Bearer $TN"
batch nc/ncft "$NCS" "$NCZ" '["basic"]' > /dev/null
check "the batch asks nc/ncft to upload it" True "$(jb '"actions" in d["objects"][0]')"
check "upload it to nc/ncft" 200 "$(put "$(jb 'd["objects"][0]["actions"]["upload"]["href"]')" "$WORK/ncbase/model-00001-of-00002.safetensors")"
AW=$AW_SAVE
check "apache-2.0 fine-tune of a cc-by-nc base: 451" 451 "$(commit nc/ncft "$WORK/c9" '' "$TN")"
check "refusal: X-Error-Code PolicyRefused" PolicyRefused "$(hdr X-Error-Code)"
check "refusal names the derivative rule" True "$(jb '"derivative rule" in d["error"] and "non-commercial" in d["error"]')"
check "refusal: main unchanged" "$NC0" "$(main_sha nc/ncft "$TN")"
check "refusal: not in lineage as derived" "[]" "$(call "$U/api/models/nc/ncbase/lineage" > /dev/null; jb '[x["id"] for x in d["derived"]]')"

# ---- 8. Private repos ------------------------------------------------------------------------
check "create a private repo" 200 "$(call -H "$AW" -H "$JSON" -d '{"name":"priv","organization":"ns","type":"model","visibility":"private"}' "$U/api/repos/create")"
printf -- '---\nlicense: apache-2.0\nbase_model: ns/base\n---\n# private\n' > "$WORK/priv.md"
ndjson "$WORK/c10" '{"summary":"private"}' "$(file_op README.md "$WORK/priv.md")"
check "commit to the private repo" 200 "$(commit ns/priv "$WORK/c10")"
check "owner reads it" 200 "$(call -H "$AW" "$U/api/models/ns/priv")"
for who in anonymous other; do
  H=()
  [[ $who == other ]] && H=(-H "Authorization: Bearer $TO")
  for path in api/models/ns/priv ns/priv/resolve/main/README.md api/models/ns/priv/lineage; do
    c=$(call "${H[@]}" "$U/$path")
    check "private, $who: $path" "RepoNotFound True" "$(hdr X-Error-Code) $([[ $c == 401 || $c == 404 ]] && echo True || echo "$c")"
    c2=$(call "${H[@]}" "$U/${path/priv/nosuchrepo}")
    check "private = missing, $who: $path" "$c2 RepoNotFound" "$c $(hdr X-Error-Code)"
  done
  c=$(call -I "${H[@]}" "$U/ns/priv/resolve/main/README.md")
  check "private, $who: HEAD resolve" "RepoNotFound True" "$(hdr X-Error-Code) $([[ $c == 401 || $c == 404 ]] && echo True || echo "$c")"
done
check "private: not in the base's lineage for others" False "$(call -H "Authorization: Bearer $TO" "$U/api/models/ns/base/lineage" > /dev/null; jb 'any(x["id"] == "ns/priv" for x in d["derived"])')"
check "private: in the base's lineage for its owner" True "$(call -H "$AW" "$U/api/models/ns/base/lineage" > /dev/null; jb 'any(x["id"] == "ns/priv" for x in d["derived"])')"
c=$(commit ns/priv "$WORK/c10" '' "$TO")
check "private: other namespace's write token commits" "404 RepoNotFound" "$c $(hdr X-Error-Code)"
c2=$(commit ns/nosuchrepo "$WORK/c10" '' "$TO")
check "private commit answers as a missing repo" "$c2 $(hdr X-Error-Code)" "$c RepoNotFound"
check "private: other token's preupload" "404 RepoNotFound" "$(call -H "Authorization: Bearer $TO" -H "$JSON" -d '{"files":[]}' "$U/api/models/ns/priv/preupload/main") $(hdr X-Error-Code)"
check "private: other token's LFS batch" "404 RepoNotFound" "$(call "${LFSJ[@]}" -H "Authorization: Bearer $TO" -d "{\"operation\":\"upload\",\"objects\":[]}" "$U/ns/priv.git/info/lfs/objects/batch") $(hdr X-Error-Code)"
check "settings: make ns/base private" 200 "$(call -X PUT -H "$AW" -H "$JSON" -d '{"private":true}' "$U/api/models/ns/base/settings")"
check "settings: now RepoNotFound anonymously" RepoNotFound "$(call "$U/api/models/ns/base" > /dev/null; hdr X-Error-Code)"
check "settings: other token's settings call" "404 RepoNotFound" "$(call -X PUT -H "Authorization: Bearer $TO" -H "$JSON" -d '{"private":false}' "$U/api/models/ns/base/settings") $(hdr X-Error-Code)"
check "settings: public again" "200 200" "$(call -X PUT -H "$AW" -H "$JSON" -d '{"visibility":"public"}' "$U/api/models/ns/base/settings") $(curl -s -o /dev/null -w '%{http_code}' "$U/api/models/ns/base")"
c=$(call -H "$NDJ" --data-binary @"$WORK/c10" "$U/api/models/ns/priv/commit/main")
check "private: anonymous commit refused" True "$([[ $c == 401 || $c == 404 ]] && echo True || echo "$c")"

# ---- 9. Bad input ----------------------------------------------------------------------------
check "commit as one JSON object (application/json)" "200 json" "$(call -H "$AW" -H "$JSON" -d "{\"summary\":\"json body\",\"files\":[{\"path\":\"j.txt\",\"content\":\"$(echo json | base64 -w0)\",\"encoding\":\"base64\"}]}" "$U/api/models/ns/lfs/commit/main") $(curl -s "$U/ns/lfs/resolve/main/j.txt")"
P1=$(main_sha ns/lfs)
printf '{"key":"header","value":{"summary":"x"}}\n{not json\n' > "$WORK/bad1"
check "malformed NDJSON: 400" 400 "$(commit ns/lfs "$WORK/bad1")"
check "malformed NDJSON: JSON error body" True "$(jb 'isinstance(d.get("error"), str) and len(d["error"]) > 0')"
printf '{"key":"header","value":{"summary":"x"}}\n{"key":"file","value":{"path":"a.txt","content":"%s","encoding":"base64"}}\n' "$(head -c 13000000 /dev/zero | base64 -w0)" > "$WORK/bigline"
check "oversized commit line: 413" 413 "$(commit ns/lfs "$WORK/bigline")"
$PY -c "
import json, sys
print(json.dumps({'summary': 'x', 'files': [{'path': 'f%d.txt' % i, 'content': 'A' * 1000000, 'encoding': 'utf-8'} for i in range(18)]}))" > "$WORK/bigjson"
check "oversized JSON commit body: 413" 413 "$(call -H "$AW" -H "$JSON" --data-binary @"$WORK/bigjson" "$U/api/models/ns/lfs/commit/main")"
check "oversized preupload body: 413" 413 "$(call -H "$AW" -H "$JSON" --data-binary @"$WORK/bigjson" "$U/api/models/ns/lfs/preupload/main")"
for p in ../evil.txt a/../../b.txt a/../b.txt /abs.txt; do
  ndjson "$WORK/bad2" '{"summary":"x"}' "$(printf '{"key":"file","value":{"path":"%s","content":"eA==","encoding":"base64"}}' "$p")"
  check "path $p: 400" 400 "$(commit ns/lfs "$WORK/bad2")"
done
ndjson "$WORK/bad3" '{"summary":"x"}' '{"key":"deletedFile","value":{"path":"no/such/file.txt"}}'
check "delete a missing file: 404" 404 "$(commit ns/lfs "$WORK/bad3")"
ndjson "$WORK/ok1" '{"summary":"x"}' "$(file_op ro.txt "$WORK/one.txt")"
check "read-only token commits: 403" 403 "$(commit ns/lfs "$WORK/ok1" '' "$TR")"
check "no token commits: 401" 401 "$(call -H "$NDJ" --data-binary @"$WORK/ok1" "$U/api/models/ns/lfs/commit/main")"
check "invalid token commits: 401" 401 "$(commit ns/lfs "$WORK/ok1" '' hf_not_a_token)"
check "no token LFS batch: 401" 401 "$(call "${LFSJ[@]}" -d "{\"operation\":\"upload\",\"objects\":[]}" "$U/ns/lfs.git/info/lfs/objects/batch")"
check "no token create: 401" 401 "$(call -H "$JSON" -d '{"name":"x","organization":"ns"}' "$U/api/repos/create")"
check "other namespace's token creates in ns: 403" 403 "$(call -H "Authorization: Bearer $TO" -H "$JSON" -d '{"name":"x","organization":"ns"}' "$U/api/repos/create")"
check "commit without a header: 400" 400 "$(printf '%s\n' "$(file_op ro.txt "$WORK/one.txt")" > "$WORK/bad4"; commit ns/lfs "$WORK/bad4")"
check "lfsFile never uploaded: 4xx" 4 "$(ndjson "$WORK/bad5" '{"summary":"x"}' "$(lfs_op z.bin "$(printf '%064d' 7)" 10)"; commit ns/lfs "$WORK/bad5" | cut -c1)"
check "LFS batch: bad oid 422" 422 "$(call "${LFSJ[@]}" -H "$AW" -d '{"operation":"upload","objects":[{"oid":"xyz","size":1}]}' "$U/ns/lfs.git/info/lfs/objects/batch")"
check "LFS batch: an unknown operation 400" 400 "$(call "${LFSJ[@]}" -H "$AW" -d '{"operation":"verify","objects":[]}' "$U/ns/lfs.git/info/lfs/objects/batch")"
check "LFS batch: download of an object the repo lacks: 404 in the answer" 404 "$(call "${LFSJ[@]}" -H "$AW" -d "{\"operation\":\"download\",\"objects\":[{\"oid\":\"$(printf '%064d' 7)\",\"size\":10}]}" "$U/ns/lfs.git/info/lfs/objects/batch" > /dev/null; $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["objects"][0]["error"]["code"])' "$R.body")"
check "after the bad input: main unchanged" "$P1" "$(main_sha ns/lfs)"
check "the server still answers" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/api/models/ns/lfs")"

# A body left unread (refused early) is never parsed as a further request on the connection.
smuggle() {  # smuggle METHOD PATH: how many responses come back for one request carrying another
  /usr/bin/python3 - "${U#http://}" "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1].split(":")
inner = b"GET /api/whoami-v2?smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
body = b"x" * 4096 + inner
req = f"{sys.argv[2]} {sys.argv[3]} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
s = socket.create_connection((host, int(port)))
s.settimeout(2)
s.sendall(req)
data = b""
try:
    while (d := s.recv(65536)):
        data += d
except socket.timeout:
    pass
print(data.count(b"HTTP/1.1 "))
PY
}
# An NDJSON commit cut short (the connection drops after a complete line) is not committed in part.
BEFORE_CUT=$(main_sha ns/lfs)
/usr/bin/python3 - "${U#http://}" "$TW" <<'PY'
import socket, sys
host, port = sys.argv[1].split(":")
lines = b'{"key":"header","value":{"summary":"cut"}}\n{"key":"deletedFile","value":{"path":"one.txt"}}\n'
req = (f"POST /api/models/ns/lfs/commit/main HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sys.argv[2]}\r\n"
       f"Content-Type: application/x-ndjson\r\nContent-Length: {len(lines) + 1000}\r\n\r\n").encode() + lines
s = socket.create_connection((host, int(port)))
s.sendall(req)
s.shutdown(socket.SHUT_WR)
s.settimeout(5)
try:
    s.recv(65536)
except Exception:
    pass
PY
check "a commit body cut short changes nothing" "$BEFORE_CUT" "$(main_sha ns/lfs)"
check "emptyBranch of the wrong type: 4xx or 200, never 500" 2 "$(call -X POST -H "$AW" -H "$JSON" -d '{"emptyBranch":"yes"}' "$U/api/models/ns/lfs/branch/typed" | cut -c1)"
call -X DELETE -H "$AW" "$U/api/models/ns/lfs/branch/typed" > /dev/null
check "unread body of a refused upload is not a request" 1 "$(smuggle PUT "/api/lfs/objects/$(printf '%064d' 0)?size=5&exp=1&sig=00")"
check "unread body of a PATCH is not a request" 1 "$(smuggle PATCH /api/models/ns/lfs)"
check "unread body of a refused write is not a request" 1 "$(smuggle POST /api/models/ns/private-nope/commit/main)"
check "no smuggled request reached the server" 0 "$(grep -c 'smuggled' "$WORK/err" 2>/dev/null; true)"

# ---- 10. Branches, tags, move, delete --------------------------------------------------------
B="$U/api/models/ns/lfs"
check "create branch dev" 200 "$(call -X POST -H "$AW" -H "$JSON" -d '{}' "$B/branch/dev")"
check "dev is at main" "$P1" "$(call "$B/revision/dev" > /dev/null; jb 'd["sha"]')"
check "create branch dev again: 409" 409 "$(call -X POST -H "$AW" -H "$JSON" -d '{}' "$B/branch/dev")"
ndjson "$WORK/c11" '{"summary":"on dev"}' "$(file_op dev.txt "$WORK/two.txt")"
check "commit to dev" 200 "$(call -H "$AW" -H "$NDJ" --data-binary @"$WORK/c11" "$B/commit/dev")"
check "dev file on dev, not on main" "200 404" "$(curl -s -o /dev/null -w '%{http_code}' "$U/ns/lfs/resolve/dev/dev.txt") $(curl -s -o /dev/null -w '%{http_code}' "$U/ns/lfs/resolve/main/dev.txt")"
check "create branch feat/x (encoded slash)" 200 "$(call -X POST -H "$AW" -H "$JSON" -d '{}' "$B/branch/feat%2Fx")"
check "resolve at feat%2Fx (the Python client's encoding)" "one" "$(curl -s "$U/ns/lfs/resolve/feat%2Fx/one.txt")"
check "repo info at revision feat%2Fx" "$P1" "$(call "$B/revision/feat%2Fx" > /dev/null; jb 'd["sha"]')"
check "delete branch feat/x" 200 "$(call -X DELETE -H "$AW" "$B/branch/feat%2Fx")"
check "read token cannot branch: 403" 403 "$(call -X POST -H "Authorization: Bearer $TR" -H "$JSON" -d '{}' "$B/branch/x")"
check "delete branch dev" 200 "$(call -X DELETE -H "$AW" "$B/branch/dev")"
check "deleted branch: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$B/revision/dev")"
check "delete it again: 404" 404 "$(call -X DELETE -H "$AW" "$B/branch/dev")"
check "delete the default branch: 403" 403 "$(call -X DELETE -H "$AW" "$B/branch/main")"
for name in HEAD -x refs%2Fheads%2Fz 'a%20b' 'x.lock' 'a..b'; do
  check "branch name $name: 400" 400 "$(call -X POST -H "$AW" -H "$JSON" -d '{}' "$B/branch/$name")"
done
check "tag named refs/pr/5: 400" 400 "$(call -X POST -H "$AW" -H "$JSON" -d '{"tag":"refs/pr/5"}' "$B/tag/main")"
check "create tag v1 at main" 200 "$(call -X POST -H "$AW" -H "$JSON" -d '{"tag":"v1"}' "$B/tag/main")"
check "v1 resolves" "$P1" "$(call "$B/revision/v1" > /dev/null; jb 'd["sha"]')"
check "file at the tag" "one" "$(curl -s "$U/ns/lfs/resolve/v1/one.txt")"
check "create tag v1 again: 409" 409 "$(call -X POST -H "$AW" -H "$JSON" -d '{"tag":"v1"}' "$B/tag/main")"
check "delete tag v1" 200 "$(call -X DELETE -H "$AW" "$B/tag/v1")"
check "deleted tag: 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$B/revision/v1")"
check "move ns/lfs to ns/moved" 200 "$(call -H "$AW" -H "$JSON" -d '{"fromRepo":"ns/lfs","toRepo":"ns/moved","type":"model"}' "$U/api/repos/move")"
check "moved: old name RepoNotFound" "401 RepoNotFound" "$(call "$U/api/models/ns/lfs") $(hdr X-Error-Code)"
check "moved: new name at the same commit" "$P1" "$(main_sha ns/moved)"
check "moved: file byte-exact" "$SHA" "$(curl -s "$U/ns/moved/resolve/main/weights/blob.bin" | sha256sum | cut -d' ' -f1)"
check "move into another namespace: 403" 403 "$(call -H "$AW" -H "$JSON" -d '{"fromRepo":"ns/moved","toRepo":"other/moved"}' "$U/api/repos/move")"
check "move onto an existing repo: 409" 409 "$(call -H "$AW" -H "$JSON" -d '{"fromRepo":"ns/moved","toRepo":"ns/base"}' "$U/api/repos/move")"
check "other namespace's token deletes: RepoNotFound/403" True "$(c=$(call -X DELETE -H "Authorization: Bearer $TO" -H "$JSON" -d '{"name":"moved","organization":"ns"}' "$U/api/repos/delete"); [[ $c == 403 || $c == 404 ]] && echo True)"
check "delete ns/moved" 200 "$(call -X DELETE -H "$AW" -H "$JSON" -d '{"name":"moved","organization":"ns","type":"model"}' "$U/api/repos/delete")"
check "deleted: RepoNotFound" "401 RepoNotFound" "$(call "$U/api/models/ns/moved") $(hdr X-Error-Code)"
check "deleted: resolve RepoNotFound" RepoNotFound "$(call "$U/ns/moved/resolve/main/one.txt" > /dev/null; hdr X-Error-Code)"
check "delete again: 404" 404 "$(call -X DELETE -H "$AW" -H "$JSON" -d '{"name":"moved","organization":"ns"}' "$U/api/repos/delete")"
check "the name can be created again, fresh" "200 ['.gitattributes']" "$(call -H "$AW" -H "$JSON" -d '{"name":"moved","organization":"ns"}' "$U/api/repos/create") $(call -H "$AW" "$U/api/models/ns/moved/revision/main" > /dev/null; jb '[s["rfilename"] for s in d["siblings"]]')"

# ---- GET /api/tokens: the tokens each caller may see, never a secret ---------------------------
TNR=$(hub token create --name ns-reader --scope read --namespace ns)
toks() { jb 'sorted((t["name"], t["role"], t["namespace"], t["current"]) for t in d)' | tr -d "'"; }
check "tokens, anonymous: 401 Unauthorized" "401 Unauthorized" "$(call "$U/api/tokens") $(hdr X-Error-Code)"
check "tokens, a node-wide read token: itself only" "200 [(reader, read, , True)]" "$(call -H "Authorization: Bearer $TR" "$U/api/tokens") $(toks)"
check "tokens, a namespace's read token: itself only" "[(ns-reader, read, ns, True)]" "$(call -H "Authorization: Bearer $TNR" "$U/api/tokens" > /dev/null; toks)"
check "tokens, a namespace's write token: its namespace's" "[(ns-reader, read, ns, False), (writer, write, ns, True)]" "$(call -H "$AW" "$U/api/tokens" > /dev/null; toks)"
check "tokens, a node-wide write token: every token" "[(admin, write, , True), (nc, write, nc, False), (ns-reader, read, ns, False), (other, write, other, False), (reader, read, , False), (writer, write, ns, False)]" "$(call -H "$AA" "$U/api/tokens" > /dev/null; toks)"
check "tokens: exactly name, role, namespace, createdAt (ISO 8601), current" True "$(jb 'all(sorted(t) == ["createdAt", "current", "name", "namespace", "role"] and __import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", t["createdAt"]) is not None for t in d) and len(d) == 6')"
SECRETS="$TW $TO $TN $TR $TADMIN $TNR $($PY -c "import json,sys; print(' '.join(t['sha256'] for t in json.load(open(sys.argv[1]))['tokens']))" "$WORK/data/tokens.json")"
check "tokens: no secret, digest or hf_ text in the body (12 strings)" "12 0" "$(echo $SECRETS | wc -w) $(for x in $SECRETS hf_; do grep -c -- "$x" "$R.body"; done | paste -sd+ | bc)"
check "tokens: POST is 405" 405 "$(call -X POST -H "$AA" "$U/api/tokens")"
stop
check "hubnode lineage (CLI) names the base" True "$(hub lineage ns/ft | grep -q '^  base: ns/base ' && echo True)"
check "hubnode lineage --json: the derived, private ones too" "['ns/ft', 'ns/priv']" "$(hub lineage ns/base --json | $PY -c "import json,sys; print(sorted(x['id'] for x in json.load(sys.stdin)['derived']))")"
check "server log has no errors" "" "$(grep -E ' (ERROR|FATAL) ' "$WORK/err" | head -3)"
check "every error answer (of $(wc -l < "$WORK/error_count" 2>/dev/null || echo 0)) had X-Error-Code, X-Error-Message and a JSON error" "" "$(cat "$WORK/bare_errors" 2>/dev/null | head -5)"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
