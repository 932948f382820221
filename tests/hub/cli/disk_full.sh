#!/usr/bin/env bash
# A full disk (issue 13, item 17), on a 128 MiB tmpfs the test mounts (skipped, exit 77, when it
# cannot mount one): an import is refused cleanly (no abort), reads and `ls` keep working, an
# upload to the running server is a 507 InsufficientStorage without internal paths, writes work
# again by themselves once space is freed, the server survives a disk filled under it, and one
# started on a full disk opens read-only and serves reads. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PID=
cleanup() {
  [[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null
  umount "$WORK/fs" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
source "$(dirname "$0")/../../lib.sh"
mkdir -p "$WORK/fs"
if ! mount -t tmpfs -o size=128m tmpfs "$WORK/fs" 2> "$WORK/mount.err"; then
  echo "SKIP: cannot mount a tmpfs here ($(cat "$WORK/mount.err")): the disk-full test needs root"
  exit 77
fi
DATA=$WORK/fs/data
hub() { "$HUBNODE" --data "$DATA" --min-free-space 8MiB -q "$@"; }
PY=/usr/bin/python3
free_mib() { df -m --output=avail "$WORK/fs" | tail -1 | tr -d ' '; }
fill_to() {  # fill_to MIB: leave about MIB free
  local now; now=$(free_mib)
  [[ $now -gt $1 ]] && head -c $(( (now - $1) * 1048576 )) /dev/zero > "$WORK/fs/filler.$RANDOM" 2>/dev/null
  true
}

"$HUBNODE" -q testmodel --family olmoe --size small --seed 1 --out "$WORK/m1" > /dev/null
"$HUBNODE" -q testmodel --family olmoe --size small --seed 2 --out "$WORK/m2" > /dev/null
hub import "$WORK/m1" --repo a/m1 > /dev/null
check "a model imported on the small disk" 0 "$?"
SHARD=$(cd "$WORK/m1" && ls *.safetensors | head -1)

fill_to 14
hub import "$WORK/m2" --repo a/m2 > /dev/null 2> "$WORK/imp.err"
CODE=$?
check "import on a nearly full disk: refused, not aborted" 1 "$CODE"
check "... saying why" True "$(grep -q 'disk space\|nearly full' "$WORK/imp.err" && echo True)"
check "... nothing of it visible" "a/m1" "$(hub ls | awk '{print $1}' | tr '\n' ' ' | sed 's/ $//')"
check "ls works on the full disk" 0 "$(hub ls > /dev/null; echo $?)"
check "cat works on the full disk" "$(sha256sum < "$WORK/m1/$SHARD" | cut -c1-64)" "$(hub cat "a/m1:$SHARD" | sha256sum | cut -c1-64)"

# The server: an upload that does not fit is a clean 507; reads go on.
TW=$(hub token create --name w --scope write --namespace a)
start() {
  "$HUBNODE" --data "$DATA" --min-free-space 8MiB serve --listen 127.0.0.1:0 --no-inference --raw-cache-size 0 \
    > "$WORK/out" 2>> "$WORK/err" &
  PID=$!
  for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
}
rm -f "$WORK/fs"/filler.*
start
head -c 20000000 /dev/urandom > "$WORK/big.bin"
upload() {  # upload FILE PATH: "PUT-status commit-status error-code error-message"
  $PY - "$U" "$TW" "$1" "$2" <<'PYEOF'
import base64, hashlib, json, sys, urllib.request, urllib.error
url, token, path, name = sys.argv[1:5]
data = open(path, "rb").read()
oid = hashlib.sha256(data).hexdigest()
def call(method, u, body, headers, auth=True):
    h = dict(headers)
    if auth: h["Authorization"] = "Bearer " + token
    try:
        with urllib.request.urlopen(urllib.request.Request(u, data=body, method=method, headers=h)) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers
st, body, headers = call("POST", url + "/a/up.git/info/lfs/objects/batch", json.dumps({"operation": "upload", "transfers": ["basic"],
                   "objects": [{"oid": oid, "size": len(data)}], "hash_algo": "sha256"}).encode(),
                   {"Content-Type": "application/vnd.git-lfs+json"})
if st != 200:
    print(st, "-", headers.get("X-Error-Code", "-"), headers.get("X-Error-Message", "-").replace(" ", "_"))
    sys.exit()
o = json.loads(body)["objects"][0]
put = 200
code = msg = "-"
if "actions" in o:
    put, body, headers = call("PUT", o["actions"]["upload"]["href"], data, {}, auth=False)
    code, msg = headers.get("X-Error-Code", "-"), headers.get("X-Error-Message", "-")
lines = [{"key": "header", "value": {"summary": "up"}},
         {"key": "file", "value": {"path": "README.md", "encoding": "base64", "content": base64.b64encode(b"---\nlicense: apache-2.0\n---\n").decode()}},
         {"key": "lfsFile", "value": {"path": name, "algo": "sha256", "oid": oid, "size": len(data)}}]
commit, _, _ = call("POST", url + "/api/models/a/up/commit/main", "\n".join(json.dumps(l) for l in lines).encode(), {"Content-Type": "application/x-ndjson"})
print(put, commit, code, msg.replace(" ", "_"))
PYEOF
}
curl -s -o /dev/null -H "Authorization: Bearer $TW" -H 'Content-Type: application/json' -d '{"name":"up","organization":"a"}' "$U/api/repos/create"
fill_to 14
read -r PUT COMMIT ECODE EMSG < <(upload "$WORK/big.bin" big.bin)
check "an upload that does not fit: 507" 507 "$PUT"
check "... InsufficientStorage" InsufficientStorage "$ECODE"
check "... its message names no internal path" False "$([[ "$EMSG" == *"$WORK"* || "$EMSG" == *"/db/"* ]] && echo True || echo False)"
check "... and the commit of it is refused" True "$([[ $COMMIT != 200 ]] && echo True)"
check "downloads go on" "$(sha256sum < "$WORK/m1/$SHARD" | cut -c1-64)" "$(curl -sf "$U/a/m1/resolve/main/$SHARD" | sha256sum | cut -c1-64)"

# Space comes back: the same upload works, without a restart.
rm -f "$WORK/fs"/filler.*
read -r PUT COMMIT ECODE EMSG < <(upload "$WORK/big.bin" big.bin)
check "space freed: the upload works again" "200 200" "$PUT $COMMIT"
check "... byte-exact" "$(sha256sum < "$WORK/big.bin" | cut -c1-64)" "$(curl -sf "$U/a/up/resolve/main/big.bin" | sha256sum | cut -c1-64)"

# The disk filled under the running server: it stays up, reads go on, writes are 507.
fill_to 0
head -c 5000000 /dev/urandom > "$WORK/small.bin"
read -r PUT COMMIT ECODE EMSG < <(upload "$WORK/small.bin" small.bin)
check "disk full under the server: an upload is 507" 507 "$PUT"
check "... the server is alive" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/health")"
check "... and serves downloads" "$(sha256sum < "$WORK/big.bin" | cut -c1-64)" "$(curl -sf "$U/a/up/resolve/main/big.bin" | sha256sum | cut -c1-64)"
kill "$PID"; wait "$PID" 2>/dev/null; PID=

# Started on a full disk: read-only, reads served, writes refused.
fill_to 0
start
check "started on a full disk: serves" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$U/a/m1/resolve/main/config.json")"
check "... says it is read-only" True "$(grep -q 'read-only' "$WORK/err" && echo True)"
read -r PUT COMMIT ECODE EMSG < <(upload "$WORK/small.bin" small.bin)
check "... refuses writes with 507" 507 "$PUT"
kill "$PID"; wait "$PID" 2>/dev/null; PID=
rm -f "$WORK/fs"/filler.*
check "afterwards the store is sound" 0 "$(hub fsck > /dev/null; echo $?)"
check "no abort anywhere" 0 "$(grep -c 'Assertion\|Aborted' "$WORK/err" "$WORK/imp.err" | awk -F: '{ n += $2 } END { print n + 0 }')"

[[ $fail -gt 0 ]] && tail -20 "$WORK/err"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
