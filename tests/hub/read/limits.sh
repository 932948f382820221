#!/usr/bin/env bash
# Requests an anonymous caller can make cheap or refuse (issue 13, items 12, 14, 15, 16), against a
# real `hubnode serve` on 127.0.0.1: a billion-laughs model card (repo info stays small, the
# server's RSS does not grow), paths-info capped at 1,000 paths and its lastCommit expansion right
# across a nested history, ambiguous HTTP framing refused (no smuggling through a proxy), and
# commit paths within file-system limits. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$PID/status"; }

# A repo whose card is a billion laughs (9 levels of 10 aliases: 10^9 strings when expanded).
mkdir -p "$WORK/laughs"
$PY - "$WORK/laughs/README.md" <<'PYEOF'
import sys
lines = ["---", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for i in range(1, 10):
    lines.append(f"a{i}: &a{i} [" + ",".join(f"*a{i-1}" for _ in range(10)) + "]")
lines += ["license: apache-2.0", "---", "# laughs"]
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PYEOF
echo '{}' > "$WORK/laughs/config.json"
hub import "$WORK/laughs" --repo org/laughs > /dev/null 2>&1 || true
hub approve org/laughs@refs/held/main > /dev/null 2>&1 || true

# A history for lastCommit: four commits touching different files of a nested tree.
mkdir -p "$WORK/h/d/e"
echo a > "$WORK/h/a.txt"; echo b > "$WORK/h/d/b.txt"; echo c > "$WORK/h/d/e/c.txt"
printf -- '---\nlicense: apache-2.0\n---\n' > "$WORK/h/README.md"
cp /usr/share/common-licenses/Apache-2.0 "$WORK/h/LICENSE"
for i in $(seq 1200); do echo "$i" > "$WORK/h/d/f$i.txt"; done
hub import "$WORK/h" --repo org/h -m c1 > /dev/null
echo b2 > "$WORK/h/d/b.txt"; hub import "$WORK/h" --repo org/h -m c2 > /dev/null
printf -- '---\nlicense: apache-2.0\n---\nmore\n' > "$WORK/h/README.md"; hub import "$WORK/h" --repo org/h -m c3 > /dev/null
echo c4 > "$WORK/h/d/e/c.txt"; hub import "$WORK/h" --repo org/h -m c4 > /dev/null

"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")

# ---- item 12: the billion laughs -------------------------------------------------------------
RSS0=$(rss_kb)
SIZE=$(curl -s -o "$WORK/laughs.json" -w '%{size_download}' "$U/api/models/org/laughs")
RSS1=$(rss_kb)
check "billion laughs: repo info answers small" True "$([[ $SIZE -lt 20000 ]] && echo True)"
check "billion laughs: no cardData from the refused card" True "$(jq_ '"cardData" not in d or d["cardData"] is None' < "$WORK/laughs.json")"
check "billion laughs: the trust report says why" True "$(curl -s "$U/api/models/org/laughs/trust" | grep -q 'aliases' && echo True)"
check "billion laughs: RSS grew under 20 MB" True "$([[ $((RSS1 - RSS0)) -lt 20000 ]] && echo True)"
echo "billion laughs: answer $SIZE bytes, RSS ${RSS0} -> ${RSS1} KB"

# ---- item 14: paths-info ---------------------------------------------------------------------
paths_json() { $PY -c "import json,sys; print(json.dumps({'paths': ['d/f%d.txt' % i for i in range(1, int(sys.argv[1]) + 1)], 'expand': True}))" "$1"; }
paths_json 1001 > "$WORK/p1001.json"
check "paths-info: 1,001 paths refused" 400 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$WORK/p1001.json" "$U/api/models/org/h/paths-info/main")"
paths_json 1000 > "$WORK/p1000.json"
T0=$(date +%s%N)
curl -s -H 'Content-Type: application/json' --data-binary @"$WORK/p1000.json" "$U/api/models/org/h/paths-info/main" > "$WORK/p.json"
T1=$(date +%s%N)
check "paths-info: 1,000 expanded paths answered" 1000 "$(jq_ 'sum(1 for e in d if e.get("lastCommit"))' < "$WORK/p.json")"
echo "paths-info: 1,000 paths with expand=true over 4 commits: $(( (T1 - T0) / 1000000 )) ms"
title_of() { curl -s -H 'Content-Type: application/json' -d "{\"paths\": [\"$1\"], \"expand\": true}" "$U/api/models/org/h/paths-info/main" | jq_ 'd[0]["lastCommit"]["title"]'; }
check "lastCommit of a file unchanged since the first commit" c1 "$(title_of a.txt)"
check "lastCommit of a file changed in c2" c2 "$(title_of d/b.txt)"
check "lastCommit of README changed in c3" c3 "$(title_of README.md)"
check "lastCommit of a nested file changed in c4" c4 "$(title_of d/e/c.txt)"
check "tree expand: the same answers" "c1 c2 c4" "$(curl -s "$U/api/models/org/h/tree/main?recursive=true&expand=true" | jq_ '" ".join(e["lastCommit"]["title"] for e in d if e["path"] in ("a.txt", "d/b.txt", "d/e/c.txt"))')"
check "tree expand: pages of at most 100" 100 "$(curl -s "$U/api/models/org/h/tree/main/d?expand=true" | jq_ 'len(d)')"

# ---- item 15: ambiguous framing --------------------------------------------------------------
raw() {  # raw REQUEST-TEXT: the status line of the answer to bytes sent as they are
  $PY - "$U" "$1" <<'PYEOF'
import socket, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port), timeout=5)
s.sendall(sys.argv[2].encode().replace(b"\\r\\n", b"\r\n"))
data = b""
try:
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
except socket.timeout:
    pass
print(data.split(b"\r\n")[0].decode(errors="replace").split(" ")[1] if data else "none")
PYEOF
}
BODY='{"paths":["a.txt"]}'
check "framing: a plain POST works" 200 "$(raw "POST /api/models/org/h/paths-info/main HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${#BODY}\r\n\r\n$BODY")"
check "framing: two different Content-Lengths" 400 "$(raw "POST /api/models/org/h/paths-info/main HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${#BODY}\r\nContent-Length: 5\r\n\r\n$BODY")"
check "framing: Content-Length not a number" 400 "$(raw "POST /api/models/org/h/paths-info/main HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n$BODY")"
check "framing: Transfer-Encoding gzip, chunked" 400 "$(raw "POST /api/models/org/h/paths-info/main HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")"
check "framing: Transfer-Encoding and Content-Length" 400 "$(raw "POST /api/models/org/h/paths-info/main HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n")"
check "framing: chunked alone works" 200 "$(raw "POST /api/models/org/h/paths-info/main HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n$(printf '%x' ${#BODY})\r\n$BODY\r\n0\r\n\r\n")"

# ---- item 16: long paths ---------------------------------------------------------------------
TW=$(hub token create --name w --scope write --namespace org)
commit_path() {  # commit_path PATH: the status of a commit adding one small file at PATH
  $PY - "$U" "$TW" "$1" <<'PYEOF'
import base64, json, sys, urllib.request, urllib.error
url, token, path = sys.argv[1:4]
lines = [{"key": "header", "value": {"summary": "a path"}},
         {"key": "file", "value": {"path": path, "encoding": "base64", "content": base64.b64encode(b"x").decode()}}]
req = urllib.request.Request(url + "/api/models/org/h/commit/main", data="\n".join(json.dumps(l) for l in lines).encode(),
                             headers={"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"})
try:
    print(urllib.request.urlopen(req).status)
except urllib.error.HTTPError as e:
    print(e.code)
PYEOF
}
check "a 255-byte component commits" 200 "$(commit_path "$(printf 'a%.0s' $(seq 251)).txt")"
check "a 260-byte component: 400" 400 "$(commit_path "$(printf 'a%.0s' $(seq 260))")"
check "a 4,001-byte path: 400" 400 "$(commit_path "$($PY -c "print('/'.join(['d' * 200] * 20) + 'x')")")"
check "33 levels: 400" 400 "$(commit_path "$($PY -c "print('/'.join(['d'] * 33))")")"
kill "$PID"; wait "$PID" 2>/dev/null; PID=
check "export of the repo works" 0 "$(hub export org/h "$WORK/exported" > /dev/null 2>&1; echo $?)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
