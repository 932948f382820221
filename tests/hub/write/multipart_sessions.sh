#!/usr/bin/env bash
# Multipart uploads belong to their repo and uploader, and abandoned ones end (issue 13, items
# 6-7): another namespace's writer who batches the same object gets an upload of its own and
# cannot complete (or commit) the victim's parts; one token's abandoned uploads do not block
# another's; and unfinished uploads are dropped with their parts once their URLs expire. Against a
# real `hubnode serve` on 127.0.0.1 (multipart from 4 MiB in 1 MiB parts, URLs valid 4 s).
# Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3

TA=$(hub token create --name alice --scope write --namespace a)
TM=$(hub token create --name mallory --scope write --namespace m)
TC=$(hub token create --name carol --scope write --namespace c)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference --multipart-threshold 4194304 \
  --multipart-chunk 1048576 --upload-url-lifetime 4 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")

# up.py TOKEN REPO FILE ACTION...: drives the LFS flow as huggingface_hub does. Actions: create,
# batch (prints the number of parts or "held"), put:N (one part), complete (prints the status),
# commit (prints the status).
cat > "$WORK/up.py" <<'PYEOF'
import hashlib, json, os, sys, urllib.request, urllib.error
url, token, repo, path = sys.argv[1:5]
data = open(path, "rb").read()
oid, size = hashlib.sha256(data).hexdigest(), len(data)
state_file = path + "." + token[-6:] + ".json"
state = json.load(open(state_file)) if os.path.exists(state_file) else {}
def req(method, u, body=None, headers=None, auth=True):
    h = dict(headers or {})
    if auth: h["Authorization"] = "Bearer " + token
    r = urllib.request.Request(u, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(r) as resp: return resp.status, resp.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
out = []
for action in sys.argv[5:]:
    if action == "create":
        ns, name = repo.split("/")
        out.append(req("POST", url + "/api/repos/create", json.dumps({"name": name, "organization": ns}).encode(),
                       {"Content-Type": "application/json"})[0])
    elif action == "batch":
        st, body = req("POST", url + "/" + repo + ".git/info/lfs/objects/batch",
                       json.dumps({"operation": "upload", "transfers": ["basic", "multipart"], "hash_algo": "sha256",
                                   "objects": [{"oid": oid, "size": size}]}).encode(),
                       {"Content-Type": "application/vnd.git-lfs+json", "Accept": "application/vnd.git-lfs+json"})
        o = json.loads(body)["objects"][0]
        if "actions" not in o: out.append("held"); continue
        up = o["actions"]["upload"]
        state = {"complete": up["href"], "chunk": int(up["header"]["chunk_size"]),
                 "parts": {k: v for k, v in up["header"].items() if k != "chunk_size"}}
        out.append(len(state["parts"]))
    elif action.startswith("put:"):
        n = int(action[4:]); c = state["chunk"]
        out.append(req("PUT", state["parts"]["%05d" % n], data[(n - 1) * c:n * c], auth=False)[0])
    elif action == "complete":
        st, body = req("POST", state["complete"], json.dumps({"oid": oid, "parts": []}).encode(),
                       {"Content-Type": "application/vnd.git-lfs+json"}, auth=False)
        out.append(st)
    elif action == "commit":
        # No card: the commit is staged for review, which is all this test needs.
        lines = [{"key": "header", "value": {"summary": "upload"}},
                 {"key": "lfsFile", "value": {"path": os.path.basename(path), "algo": "sha256", "oid": oid, "size": size}}]
        out.append(req("POST", url + "/api/models/" + repo + "/commit/main", "\n".join(json.dumps(l) for l in lines).encode(),
                       {"Content-Type": "application/x-ndjson"})[0])
json.dump(state, open(state_file, "w"))
print(" ".join(str(x) for x in out))
PYEOF
up() { $PY "$WORK/up.py" "$U" "$@"; }
head -c 5000000 /dev/urandom > "$WORK/w.bin"

# Alice uploads 4 of 5 parts; Mallory learns the oid and batches it for her own repo.
check "alice: 5 parts" "200 5 200 200 200 200" "$(up "$TA" a/one "$WORK/w.bin" create batch put:1 put:2 put:3 put:4)"
check "mallory batches the same object: an upload of her own" "200 5" "$(up "$TM" m/steal "$WORK/w.bin" create batch)"
check "mallory cannot complete alice's parts" 400 "$(up "$TM" m/steal "$WORK/w.bin" complete)"
check "mallory cannot commit the object" 422 "$(up "$TM" m/steal "$WORK/w.bin" commit)"
check "alice finishes and completes" "200 200" "$(up "$TA" a/one "$WORK/w.bin" put:5 complete)"
check "alice commits" 200 "$(up "$TA" a/one "$WORK/w.bin" commit)"
check "mallory still has to upload it herself" 5 "$(up "$TM" m/steal "$WORK/w.bin" batch)"

# Carol abandons 9 uploads (one part each): at most 8 stream per token, the 9th cannot complete;
# Alice is not affected.
up "$TC" c/x "$WORK/w.bin" create > /dev/null
for i in $(seq 9); do
  head -c 4500000 /dev/urandom > "$WORK/c$i.bin"
  up "$TC" c/x "$WORK/c$i.bin" batch put:1 > /dev/null
done
for p in 2 3 4 5; do up "$TC" c/x "$WORK/c9.bin" put:$p > /dev/null; done
check "carol's 9th upload: 503 (8 per token)" 503 "$(up "$TC" c/x "$WORK/c9.bin" complete)"
head -c 4500000 /dev/urandom > "$WORK/w2.bin"
check "alice's next upload completes meanwhile" "5 200 200 200 200 200 200" "$(up "$TA" a/one "$WORK/w2.bin" batch put:1 put:2 put:3 put:4 put:5 complete)"
PARTS_BEFORE=$(find "$WORK/data/uploads" -type f | wc -l)
check "carol's parts wait on disk" True "$([[ $PARTS_BEFORE -gt 0 ]] && echo True)"

# The URLs expire after 4 s: the abandoned uploads go with them, parts included, and carol can
# upload again.
sleep 5
head -c 4500000 /dev/urandom > "$WORK/c10.bin"
check "after expiry carol uploads again" "5 200 200 200 200 200 200" "$(up "$TC" c/x "$WORK/c10.bin" batch put:1 put:2 put:3 put:4 put:5 complete)"
check "abandoned parts removed" 0 "$(find "$WORK/data/uploads" -type f | wc -l)"
check "an expired URL is refused" 403 "$(up "$TC" c/x "$WORK/c1.bin" put:2)"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
