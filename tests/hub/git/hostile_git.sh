#!/usr/bin/env bash
# Git's routes under attack (issue 15, from an attacker's review of the change): malformed Basic
# credentials, want floods, a tree bomb, a push whose every command is refused (the store holds
# nothing more after it), existence oracles through pushed trees, a denied commit inside a pushed
# history, a tag over a commit staged for review, 120 ref updates in one push, duplicate and
# '.GIT' tree entries, an LFS download URL after its repo turned private. hostile_git.py builds
# the objects and packs byte by byte. Prints "N passed, M failed".
# Usage: hostile_git.sh HUBNODE
set -uo pipefail
HUBNODE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
command -v git > /dev/null || { echo "SKIP: git is not installed"; exit 77; }
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
source "$HERE/../../lib.sh"
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
start() {
  "$HUBNODE" --data "$WORK/data" serve --listen "127.0.0.1:${PORT:-0}" --no-inference > "$WORK/out" 2>> "$WORK/err" &
  PID=$!
  for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
  PORT=${U##*:}
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; PID=; }
chunks() { hub stats --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["chunks"])'; }
R=$WORK/r
call() { curl -s -m 30 -o "$R.body" -D "$R.h" -w "%{http_code}" "$@"; }
jb() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($1)" "$R.body" 2>/dev/null; }
commit() {  # commit REPO TOKEN PATH TEXT: one inline file on main; prints the status
  printf '{"key":"header","value":{"summary":"c"}}\n{"key":"file","value":{"path":"%s","content":"%s","encoding":"base64"}}\n' \
    "$3" "$(printf '%s' "$4" | base64 -w0)" > "$WORK/c.ndjson"
  call -H "Authorization: Bearer $2" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/c.ndjson" "$U/api/models/$1/commit/main"
}
JSON=(-H "Content-Type: application/json")

TW=$(hub token create --name alice --scope write --namespace alice)
TB=$(hub token create --name bob --scope write --namespace bob)
TC=$(hub token create --name carol --scope write --namespace carol)
start
APACHE=$'---\nlicense: apache-2.0\n---\n# pub\n'
check "create alice/pub" 200 "$(call -H "Authorization: Bearer $TW" "${JSON[@]}" -d '{"name":"pub","organization":"alice"}' "$U/api/repos/create")"
check "its card" 200 "$(commit alice/pub "$TW" README.md "$APACHE")"
check "a first notes.txt" 200 "$(commit alice/pub "$TW" notes.txt "first notes")"
check "...then changed" 200 "$(commit alice/pub "$TW" notes.txt "second notes")"
check "create carol/vault, private" 200 "$(call -H "Authorization: Bearer $TC" "${JSON[@]}" -d '{"name":"vault","organization":"carol","private":true}' "$U/api/repos/create")"
check "carol's secret" 200 "$(commit carol/vault "$TC" vault.txt "carol's secret text")"
check "create alice/pol" 200 "$(call -H "Authorization: Bearer $TW" "${JSON[@]}" -d '{"name":"pol","organization":"alice"}' "$U/api/repos/create")"
check "its card" 200 "$(commit alice/pol "$TW" README.md "$APACHE")"
check "a card without a license: staged" 200 "$(commit alice/pol "$TW" README.md $'# no license\n')"
POL_STAGED=$(jb 'd["commitOid"]')
GIT_LFS_SKIP_SMUDGE=1 timeout 120 git clone -q "http://git:$TW@${U#http://}/alice/pub" "$WORK/pub" 2> /dev/null
PUB_HEAD=$(git -C "$WORK/pub" rev-parse HEAD)
{
  echo "pub_head=$PUB_HEAD"
  echo "pub_old_blob=$(printf 'first notes' | git hash-object --stdin)"
  echo "vault_blob=$(printf "carol's secret text" | git hash-object --stdin)"
  echo "pol_staged=$POL_STAGED"
  echo "pub_tree=$(git -C "$WORK/pub" ls-tree HEAD | $PY -c 'import json,sys; print(json.dumps([[l.split()[0], l.split("\t")[1].rstrip("\n"), l.split()[2]] for l in sys.stdin]))')"
} > "$WORK/state"
count() { while IFS='|' read -r name expected actual; do check "$name" "$expected" "$actual"; done < <(sed -n 's/^CHECK //p' "$1"); }

# A push whose every command is refused: the store's chunks are the same before and after.
stop
BEFORE=$(chunks)
start
$PY "$HERE/hostile_git.py" "$U" "$TW" "$TB" "$WORK/state" refused > "$WORK/py1.out" 2>&1
count "$WORK/py1.out"
stop
check "...and stored nothing (chunks before = after)" "$BEFORE" "$(chunks)"
start

$PY "$HERE/hostile_git.py" "$U" "$TW" "$TB" "$WORK/state" main > "$WORK/py2.out" 2>&1
count "$WORK/py2.out"
check "hostile_git.py ran to its end" True "$(grep -q 'CHECK the node is alive at the end' "$WORK/py2.out" && echo True || (tail -5 "$WORK/py2.out" >&2; echo False))"

# A signed LFS download URL stops working when its repo turns private.
check "alice/lfs created" 200 "$(call -H "Authorization: Bearer $TW" "${JSON[@]}" -d '{"name":"lfs","organization":"alice"}' "$U/api/repos/create")"
mkdir -p "$WORK/lfs" && printf -- '---\nlicense: apache-2.0\n---\n# lfs\n' > "$WORK/lfs/README.md"
head -c 300000 /dev/urandom > "$WORK/lfs/w.bin"
check "a model with an LFS file (hubnode push)" 0 "$(hub push "$WORK/lfs" alice/lfs --to "$U" --token "$TW" > /dev/null 2>&1; echo $?)"
OID=$(sha256sum "$WORK/lfs/w.bin" | cut -d' ' -f1)
check "batch download: an href" 200 "$(call -H "Content-Type: application/vnd.git-lfs+json" -d "{\"operation\":\"download\",\"objects\":[{\"oid\":\"$OID\",\"size\":300000}]}" "$U/alice/lfs.git/info/lfs/objects/batch")"
HREF=$(jb 'd["objects"][0]["actions"]["download"]["href"]')
check "...which downloads the object" "$OID" "$(curl -s -m 30 "$HREF" | sha256sum | cut -d' ' -f1)"
check "the repo turns private" 200 "$(call -X PUT -H "Authorization: Bearer $TW" "${JSON[@]}" -d '{"private":true}' "$U/api/models/alice/lfs/settings")"
check "...the old href: 404" 404 "$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$HREF")"
check "anonymous batch on the private repo: 401 with a challenge" "401 Basic" "$(call -H "Content-Type: application/vnd.git-lfs+json" -d "{\"operation\":\"download\",\"objects\":[{\"oid\":\"$OID\",\"size\":300000}]}" "$U/alice/lfs.git/info/lfs/objects/batch") $(grep -i '^WWW-Authenticate:' "$R.h" | awk '{print $2}' | tr -d '\r')"
# A head that today's policy denies is not served over git (downloads answer it 451).
check "before: ls-remote shows alice/pub's main" "$PUB_HEAD" "$(git ls-remote "$U/alice/pub" refs/heads/main 2>/dev/null | cut -f1)"
hub trust policy --namespace alice --id apache-2.0 --verdict deny > /dev/null
check "apache-2.0 denied for alice now: main is not advertised" "" "$(git ls-remote "$U/alice/pub" refs/heads/main 2>/dev/null | cut -f1)"
check "...and its head cannot be fetched by id" True "$(curl -s -m 30 -H 'Git-Protocol: version=2' -H 'Content-Type: application/x-git-upload-pack-request' --data-binary @<(printf '0012command=fetch\n00010032want %s\n0009done\n0000' "$PUB_HEAD") "$U/alice/pub.git/git-upload-pack" | grep -q 'ERR not our ref' && echo True)"
hub trust policy --namespace alice --id apache-2.0 --verdict allow > /dev/null
check "allowed again: main is back" "$PUB_HEAD" "$(git ls-remote "$U/alice/pub" refs/heads/main 2>/dev/null | cut -f1)"
check "server log has no errors" "" "$(grep -E ' (ERROR|FATAL) ' "$WORK/err" | head -3)"
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
