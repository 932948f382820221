#!/usr/bin/env bash
# The Python client's HEAD/GET contract (it is not installable here), checked header by header
# with curl against a real hubnode on 127.0.0.1, plus ranges, error codes, malformed requests,
# metrics and graceful shutdown. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
header() { grep -i "^$2:" "$1" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
status() { head -1 "$1" | cut -d' ' -f2; }

hub testmodel --family qwen2_moe --seed 3 --out "$WORK/m" > /dev/null
hub import "$WORK/m" --repo org/model > /dev/null
hub ref set org/model refs/pr/1 main > /dev/null
hub testmodel --family llama --seed 4 --out "$WORK/g" > /dev/null
hub import "$WORK/g" --repo org/gated > /dev/null
hub repo visibility org/gated gated
hub import "$WORK/g" --repo org/private --private > /dev/null
TOKEN=$(hub token create --name t --scope read)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
COMMIT=$(hub_commit=$(curl -s "$U/api/models/org/model" | sed -n 's/.*"sha":"\([0-9a-f]*\)".*/\1/p'); echo "$hub_commit")
H="$WORK/h"

# HEAD on a regular (git) file.
curl -s -I "$U/org/model/resolve/main/config.json" > $H
check "regular HEAD status" 200 "$(status $H)"
check "regular ETag = git blob sha1" "\"$(git hash-object "$WORK/m/config.json")\"" "$(header $H ETag)"
check "regular X-Repo-Commit" "$COMMIT" "$(header $H X-Repo-Commit)"
check "regular Content-Length" "$(stat -c %s "$WORK/m/config.json")" "$(header $H Content-Length)"
check "Accept-Ranges" "bytes" "$(header $H Accept-Ranges)"
check "no X-Linked-Etag on a git file" "" "$(header $H X-Linked-Etag)"
check "no Xet headers" "" "$(grep -ci '^x-xet' $H | grep -v '^0$')"

# HEAD on an LFS file.
F=model-00001-of-00002.safetensors
SHA=$(sha256sum "$WORK/m/$F" | cut -d' ' -f1)
SIZE=$(stat -c %s "$WORK/m/$F")
curl -s -I "$U/org/model/resolve/main/$F" > $H
check "LFS ETag = sha256" "\"$SHA\"" "$(header $H ETag)"
check "LFS X-Linked-Etag" "\"$SHA\"" "$(header $H X-Linked-Etag)"
check "LFS X-Linked-Size" "$SIZE" "$(header $H X-Linked-Size)"
check "LFS Content-Length" "$SIZE" "$(header $H Content-Length)"

# GET bodies, byte for byte; revisions: encoded refs/pr/1, a 40-hex commit, HEAD, raw refs/pr/1.
for rev in main refs%2Fpr%2F1 refs/pr/1 "$COMMIT" HEAD; do
  curl -s -o "$WORK/body" -D $H "$U/org/model/resolve/$rev/$F"
  check "GET $rev status" 200 "$(status $H)"
  check "GET $rev body" "$SHA" "$(sha256sum "$WORK/body" | cut -d' ' -f1)"
done
curl -s -o "$WORK/body" "$U/org/model/resolve/main/config.json"
check "GET regular body" "" "$(cmp "$WORK/body" "$WORK/m/config.json")"
curl -s -o "$WORK/body" "$U/org/model/raw/main/$F"
check "raw serves the LFS pointer" "version https://git-lfs.github.com/spec/v1" "$(head -1 "$WORK/body")"

# Ranges: resume (N-), suffix, first byte, a closed range past the end, unsatisfiable, malformed.
curl -s -o "$WORK/body" -D $H -H "Range: bytes=1000-" "$U/org/model/resolve/main/$F"
check "resume status" 206 "$(status $H)"
check "resume Content-Range" "bytes 1000-$((SIZE - 1))/$SIZE" "$(header $H Content-Range)"
check "resume Content-Length is the remainder" "$((SIZE - 1000))" "$(header $H Content-Length)"
check "resume body" "$(tail -c +1001 "$WORK/m/$F" | sha256sum)" "$(sha256sum < "$WORK/body")"
curl -s -o "$WORK/body" -D $H -H "Range: bytes=-100" "$U/org/model/resolve/main/$F"
check "suffix range" "bytes $((SIZE - 100))-$((SIZE - 1))/$SIZE" "$(header $H Content-Range)"
check "suffix body" "$(tail -c 100 "$WORK/m/$F" | sha256sum)" "$(sha256sum < "$WORK/body")"
curl -s -o "$WORK/body" -D $H -H "Range: bytes=0-0" "$U/org/model/resolve/main/$F"
check "first byte" "bytes 0-0/$SIZE" "$(header $H Content-Range)"
curl -s -o /dev/null -D $H -H "Range: bytes=10-99999999999" "$U/org/model/resolve/main/$F"
check "range clipped at the end" "bytes 10-$((SIZE - 1))/$SIZE" "$(header $H Content-Range)"
curl -s -o /dev/null -D $H -H "Range: bytes=$SIZE-" "$U/org/model/resolve/main/$F"
check "unsatisfiable status" 416 "$(status $H)"
check "unsatisfiable Content-Range" "bytes */$SIZE" "$(header $H Content-Range)"
for bad in "bytes=abc" "bytes=5-2" "items=0-1" "bytes=0-1,4-5"; do
  curl -s -o /dev/null -D $H -H "Range: $bad" "$U/org/model/resolve/main/$F"
  check "malformed range $bad" 416 "$(status $H)"
done

# Error codes.
curl -s -I "$U/org/nope/resolve/main/config.json" > $H
check "missing repo status" 401 "$(status $H)"
check "missing repo code" RepoNotFound "$(header $H X-Error-Code)"
curl -s -I "$U/org/private/resolve/main/config.json" > "$WORK/h2"
check "private repo looks missing" "$(grep -i -v '^date' $H)" "$(grep -i -v '^date' "$WORK/h2")"
curl -s -I -H "Authorization: Bearer $TOKEN" "$U/org/private/resolve/main/config.json" > $H
check "private repo with a token" 200 "$(status $H)"
curl -s -I -H "Authorization: Bearer hf_wrong" "$U/org/model/resolve/main/config.json" > $H
check "bad token" 401 "$(status $H)"
check "bad token message" "Invalid credentials in Authorization header" "$(header $H X-Error-Message)"
curl -s -I "$U/org/model/resolve/nobranch/config.json" > $H
check "bad revision" "404 RevisionNotFound" "$(status $H) $(header $H X-Error-Code)"
curl -s -I "$U/org/model/resolve/main/nothing.txt" > $H
check "missing file" "404 EntryNotFound" "$(status $H) $(header $H X-Error-Code)"
check "missing file has X-Repo-Commit" "$COMMIT" "$(header $H X-Repo-Commit)"
curl -s -I "$U/org/gated/resolve/main/config.json" > $H
check "gated" "403 GatedRepo" "$(status $H) $(header $H X-Error-Code)"
curl -s "$U/api/models/org/gated" -o "$WORK/body" -D $H
check "gated repo info is public" 200 "$(status $H)"

# Malformed requests: clean 4xx with a JSON body.
for path in "/org/model/resolve/main/../../etc/passwd" "/org/model/resolve/main/a/%2e%2e/b" \
            "/org/model/resolve/a..b/config.json" "/..%2F..%2Fetc/resolve/main/x" "/api/models/bad%20name"; do
  code=$(curl -s --path-as-is -o "$WORK/body" -w '%{http_code}' "$U$path")
  check "malformed $path is 4xx" 4 "${code:0:1}"
done
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$U/health")
check "oversized header is 4xx" 4 "${code:0:1}"
code=$(curl -s -o /dev/null -w '%{http_code}' -d 'x=1' "$U/org/model/resolve/main/config.json")
check "POST on resolve" 405 "$code"

# paths-info, form-encoded as the Python client sends it.
n=$(curl -s -d 'paths=config.json&paths=missing&paths=README.md&expand=false' "$U/api/models/org/model/paths-info/main" | grep -o '"path"' | wc -l)
check "paths-info form" 2 "$n"
n=$(curl -s -H 'Content-Type: application/json' -d '{"paths":["config.json"],"expand":true}' "$U/api/models/org/model/paths-info/refs%2Fpr%2F1" | grep -o '"lastCommit"' | wc -l)
check "paths-info json, encoded PR revision" 1 "$n"

# Operations.
check "health" '{"status":"ok"}' "$(curl -s "$U/health")"
curl -s "$U/metrics" > "$WORK/metrics"
check "metrics counts resolve requests" 1 "$(grep -c '^hubnode_http_requests_total{route="resolve",status="200"}' "$WORK/metrics")"
check "metrics bytes served" 1 "$(grep -c '^hubnode_http_response_bytes_total [1-9]' "$WORK/metrics")"
check "metrics store size" 1 "$(grep -c '^hubnode_store_disk_bytes [1-9]' "$WORK/metrics")"
check "access log" 1 "$(grep -c 'GET /health 200' "$WORK/err" | cut -c1)"

# Graceful shutdown: SIGTERM while a slow download is in flight; it finishes, the server exits 0.
curl -s --limit-rate 200k -o "$WORK/slow" "$U/org/model/resolve/main/$F" &
CURL=$!
sleep 0.3
kill -TERM $PID
wait $CURL
check "in-flight download finished" "$SHA" "$(sha256sum "$WORK/slow" | cut -d' ' -f1)"
wait $PID
check "server exit status" 0 "$?"
PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
