#!/usr/bin/env bash
# Staged commits and discussions as an attacker sees them (issue 14), against a real `hubnode
# serve` on 127.0.0.1: a commit needing review is staged for the repo's writers and stays out of
# reach of everyone else (resolve by branch and by sha, tree, refs, commits, listings, the peer
# catalog and chunk routes, a pull request opened while it is staged); the admin release and
# refuse routes; branches and tags from a staged head; who may open, comment, rename, close and
# merge; caps on discussions; conflicts, nothing-to-merge and closed pull requests; `hubnode pr`,
# `hubnode approve --node` and `hubnode refuse` (--node and on the store). Prints "N passed, M failed".
# Usage: staging.sh HUBNODE
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
R=$WORK/r
# Requests never wait for a body the client did not announce (curl -X POST sends no length).
call() { curl -s -m 10 -o "$R.body" -D "$R.h" -w "%{http_code}" "$@"; }
jb() { $PY -c "import json,sys
try: d=json.load(open(sys.argv[1]))
except Exception: print('ERR'); sys.exit()
print($1)" "$R.body"; }
hdr() { grep -i "^$1:" "$R.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

TW=$(hub token create --name alice --scope write --namespace alice)
TO=$(hub token create --name bob --scope write --namespace bob)
TR=$(hub token create --name reader --scope read)
TA=$(hub token create --name admin --scope write)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
AW=(-H "Authorization: Bearer $TW")
AO=(-H "Authorization: Bearer $TO")
AR=(-H "Authorization: Bearer $TR")
AA=(-H "Authorization: Bearer $TA")
JSON=(-H "Content-Type: application/json")
# commit REPO SUMMARY PATH TEXT [create_pr|rev]: one inline file; prints the status.
commit() {
  local q="" rev=main
  [[ "${5:-}" == pr ]] && q="?create_pr=1"
  [[ -n "${5:-}" && "${5:-}" != pr ]] && rev=$5
  printf '{"key":"header","value":{"summary":"%s"}}\n{"key":"file","value":{"path":"%s","content":"%s","encoding":"base64"}}\n' \
    "$2" "$3" "$(printf '%s' "$4" | base64 -w0)" > "$WORK/c.ndjson"
  call "${AW[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/c.ndjson" "$U/api/models/$1/commit/$rev$q"
}
files() { call "$@" > /dev/null; jb 'sorted(s["rfilename"] for s in d.get("siblings", []))'; }
APACHE='---
license: apache-2.0
---
# ok
'

# ---- staging ------------------------------------------------------------------------------
check "create alice/m" 200 "$(call "${AW[@]}" "${JSON[@]}" -d '{"name":"m","organization":"alice"}' "$U/api/repos/create")"
RELEASED=$(call "$U/api/models/alice/m" > /dev/null; jb 'd["sha"]')
check "a commit without a license is staged: 200" 200 "$(commit alice/m "secret weights" notes.txt "held text")"
STAGED=$(jb 'd["commitOid"]')
check "the answer says why (held field and header)" "True True" "$(jb '"held for review" in d["held"]["reason"] and d["held"]["ref"] == "refs/held/main"') $([[ -n "$(hdr X-Hubnode-Held)" ]] && echo True)"
check "the writer's repo info: staged sha, held field" "$STAGED True" "$(call "${AW[@]}" "$U/api/models/alice/m" > /dev/null; jb 'd["sha"], "held" in d' | tr -d "(),'")"
check "anonymous repo info: the released sha, no held field" "$RELEASED False" "$(call "$U/api/models/alice/m" > /dev/null; jb 'd["sha"], "held" in d' | tr -d "(),'")"
check "another namespace's token: released" "['.gitattributes']" "$(files "${AO[@]}" "$U/api/models/alice/m")"
check "a read-only token: released" "['.gitattributes']" "$(files "${AR[@]}" "$U/api/models/alice/m")"
check "anonymous resolve of the staged file: 404" 404 "$(call "$U/alice/m/resolve/main/notes.txt")"
check "anonymous resolve by the staged sha: 404" 404 "$(call "$U/alice/m/resolve/$STAGED/notes.txt")"
check "anonymous tree at the staged sha: 404" 404 "$(call "$U/api/models/alice/m/tree/$STAGED")"
check "anonymous commits: the staged one absent" False "$(call "$U/api/models/alice/m/commits/main" > /dev/null; jb "any(c['id'] == '$STAGED' for c in d)")"
check "anonymous refs: main at the released sha" "$RELEASED" "$(call "$U/api/models/alice/m/refs" > /dev/null; jb '[b["targetCommit"] for b in d["branches"] if b["name"] == "main"][0]')"
check "the writer's refs: main at the staged sha, marked held" "$STAGED True" "$(call "${AW[@]}" "$U/api/models/alice/m/refs" > /dev/null; jb '[(b["targetCommit"], b.get("held")) for b in d["branches"] if b["name"] == "main"][0]' | tr -d "(),'")"
check "the model listing shows the released sha" "$RELEASED" "$(call "$U/api/models?search=alice/m" > /dev/null; jb '[m.get("sha") for m in d if m["id"] == "alice/m"][0]')"
check "the writer reads the staged file" "held text" "$(curl -s "${AW[@]}" "$U/alice/m/resolve/main/notes.txt")"
check "peer catalog: the released sha there, the staged one absent" "1 0" "$(curl -s "$U/api/peer/v1/catalog" > "$WORK/cat"; grep -c "$RELEASED" "$WORK/cat") $(grep -c "$STAGED" "$WORK/cat")"

# A branch from the staged head stays staged; a tag of it is refused.
check "branch dev from the staged main" 200 "$(call "${AW[@]}" "${JSON[@]}" -d '{}' "$U/api/models/alice/m/branch/dev")"
check "anonymous: dev holds only what is released" "['.gitattributes']" "$(files "$U/api/models/alice/m/revision/dev")"
check "the writer: dev at the staged commit" "$STAGED" "$(call "${AW[@]}" "$U/api/models/alice/m/revision/dev" > /dev/null; jb 'd["sha"]')"
check "a tag of a staged commit: 409" 409 "$(call "${AW[@]}" "${JSON[@]}" -d '{"tag":"v0"}' "$U/api/models/alice/m/tag/main")"

# A pull request never starts from a staged commit.
check "an empty PR opened while main is staged" 200 "$(call "${AW[@]}" "${JSON[@]}" -d '{"title":"t","pullRequest":true}' "$U/api/models/alice/m/discussions")"
PRN=$(jb 'd["num"]')
check "its ref is the released head" "$RELEASED" "$(call "$U/api/models/alice/m/revision/refs%2Fpr%2F$PRN" > /dev/null; jb 'd["sha"]')"

# Release: the admin route needs a node-wide write token.
check "approve with a namespace token: 403" 403 "$(call -X POST "${AW[@]}" "$U/api/models/alice/m/approve/main")"
check "approve anonymously: 401" 401 "$(call -X POST "$U/api/models/alice/m/approve/main")"
check "approve with the admin token" "200 $STAGED" "$(call -X POST "${AA[@]}" "$U/api/models/alice/m/approve/main") $(jb 'd["commitOid"]')"
check "approve again: nothing staged (404 NotHeld)" "404 NotHeld" "$(call -X POST "${AA[@]}" "$U/api/models/alice/m/approve/main") $(hdr X-Error-Code)"
check "released: anonymous reads the file" "held text" "$(curl -s "$U/alice/m/resolve/main/notes.txt")"
# hubnode approve --node for dev.
check "hubnode approve --node releases dev" 0 "$("$HUBNODE" -q approve --node "$U" --token "$TA" alice/m@dev > /dev/null 2>&1; echo $?)"
check "anonymous: dev released" "$STAGED" "$(call "$U/api/models/alice/m/revision/dev" > /dev/null; jb 'd["sha"]')"

# Refuse: the admin route drops what is staged; the released branch stays where it is.
mainref() { call "${AW[@]}" "$U/api/models/alice/m/refs" > /dev/null; jb '[(b["targetCommit"], b.get("held")) for b in d["branches"] if b["name"] == "main"][0]' | tr -d "(),'"; }
heldlist() { call "${AA[@]}" "$U/api/models?held=1&search=alice/m" > /dev/null; jb 'any(m["id"] == "alice/m" and m.get("held") for m in d)'; }
check "a second commit without a license is staged" 200 "$(commit alice/m "second secret" second.txt "dropped text")"
DROP=$(jb 'd["commitOid"]')
check "the writer's refs: main held at it" "$DROP True" "$(mainref)"
check "listed as held (held=1)" True "$(heldlist)"
check "refuse anonymously: 401" 401 "$(call -X POST "$U/api/models/alice/m/refuse/main")"
check "refuse with a namespace write token: 403" 403 "$(call -X POST "${AW[@]}" "$U/api/models/alice/m/refuse/main")"
check "refuse with a read token: 403" 403 "$(call -X POST "${AR[@]}" "$U/api/models/alice/m/refuse/main")"
check "refuse where nothing is staged: 404 NotHeld" "404 NotHeld" "$(call -X POST "${AA[@]}" "$U/api/models/alice/m/refuse/dev") $(hdr X-Error-Code)"
check "refuse by the staged commit's id" "200 $DROP True" "$(call -X POST "${AA[@]}" "$U/api/models/alice/m/refuse/$DROP") $(jb 'd["commitOid"], d["refused"]' | tr -d "(),'")"
check "the writer's refs: main at the released sha, not held" "$STAGED None" "$(mainref)"
check "no longer listed as held" False "$(heldlist)"
check "the writer no longer reads the refused file" 404 "$(call "${AW[@]}" "$U/alice/m/resolve/main/second.txt")"
check "anonymous: main unchanged" "$STAGED" "$(call "$U/api/models/alice/m" > /dev/null; jb 'd["sha"]')"
check "refuse again: 404 NotHeld" "404 NotHeld" "$(call -X POST "${AA[@]}" "$U/api/models/alice/m/refuse/main") $(hdr X-Error-Code)"
check "the log names who refused" 1 "$(grep -c "refused $DROP .*(refused by admin)" "$WORK/err")"
check "stage a third commit" 200 "$(commit alice/m "third secret" third.txt "dropped too")"
check "refuse refs/held/main" "200 True" "$(call -X POST "${AA[@]}" "$U/api/models/alice/m/refuse/refs/held/main") $(jb 'd["refused"]')"
check "stage a fourth commit" 200 "$(commit alice/m "fourth secret" fourth.txt "dropped by the CLI")"
check "hubnode refuse --node drops it" 0 "$("$HUBNODE" -q refuse --node "$U" --token "$TA" alice/m@main > /dev/null 2>&1; echo $?)"
check "main: released sha, not held" "$STAGED None" "$(mainref)"
check "hubnode refuse --node with nothing staged fails" 1 "$("$HUBNODE" -q refuse --node "$U" --token "$TA" alice/m@main > /dev/null 2>&1; echo $?)"

# A denied commit is 451 with the rule and the message headers; nothing moves.
NC='---
license: cc-by-nc-4.0
---
'
check "a non-commercial README: 451 PolicyRefused" "451 PolicyRefused True" "$(commit alice/m nc README.md "$NC") $(hdr X-Error-Code) $([[ $(hdr X-Error-Message) == *"Refused by this node's policy"* ]] && echo True)"
check "main did not move" "$STAGED" "$(call "${AW[@]}" "$U/api/models/alice/m" > /dev/null; jb 'd["sha"]')"
check "an allowed commit (apache README)" 200 "$(commit alice/m readme README.md "$APACHE")"
check "it is released at once" "False" "$(jb '"held" in d')"

# hubnode push says when its commit is staged, and how it is released.
mkdir -p "$WORK/plain" && echo '{"a": 1}' > "$WORK/plain/config.json"
"$HUBNODE" -q push "$WORK/plain" alice/pushed --to "$U" --token "$TW" > "$WORK/push.out" 2>&1
check "push of a model without a card: staged, and says how to release it" "0 1" "$? $(grep -c "staged, not released: held for review.*hubnode approve alice/pushed@refs/held/main" <(tr '\n' ' ' < "$WORK/push.out"))"

# ---- discussions: who may do what ----------------------------------------------------------
D="$U/api/models/alice/m/discussions"
check "anonymous cannot open a discussion: 401" 401 "$(call "${JSON[@]}" -d '{"title":"x"}' "$D")"
check "a read-only token cannot: 403" 403 "$(call "${AR[@]}" "${JSON[@]}" -d '{"title":"x"}' "$D")"
check "bob opens one on alice's public repo" 200 "$(call "${AO[@]}" "${JSON[@]}" -d '{"title":"Question","description":"why?"}' "$D")"
N=$(jb 'd["num"]')
check "anonymous reads it" "200 Question" "$(call "$D/$N") $(jb 'd["title"]')"
check "bob comments" 200 "$(call "${AO[@]}" "${JSON[@]}" -d '{"comment":"<script>alert(1)</script>"}' "$D/$N/comment")"
CID=$(jb 'd["newMessage"]["id"]')
check "a comment's HTML is escaped" True "$(jb '"&lt;script&gt;" in d["newMessage"]["data"]["latest"]["html"] and "<script>" not in d["newMessage"]["data"]["latest"]["html"]')"
check "alice cannot edit bob's comment: 403" 403 "$(call "${AW[@]}" "${JSON[@]}" -d '{"content":"mine"}' "$D/$N/comment/$CID/edit")"
check "alice (a writer) hides it" "200 True" "$(call -X POST "${AW[@]}" "$D/$N/comment/$CID/hide") $(jb 'd["updatedComment"]["data"]["hidden"]')"
check "a hidden comment cannot be edited back: 409" 409 "$(call "${AO[@]}" "${JSON[@]}" -d '{"content":"back"}' "$D/$N/comment/$CID/edit")"
check "its text is gone for readers" "" "$(call "$D/$N" > /dev/null; jb "[e['data']['latest']['raw'] for e in d['events'] if e['id'] == '$CID'][0]")"
check "bob cannot close: 403" 403 "$(call "${AO[@]}" "${JSON[@]}" -d '{"status":"closed"}' "$D/$N/status")"
check "a bad status: 400" 400 "$(call "${AW[@]}" "${JSON[@]}" -d '{"status":"gone"}' "$D/$N/status")"
check "a comment over 16 KiB: 400" 400 "$(call "${AO[@]}" "${JSON[@]}" -d "{\"comment\":\"$(head -c 20000 /dev/zero | tr '\0' a)\"}" "$D/$N/comment")"
check "a body that is not an object: 400" 400 "$(call "${AO[@]}" "${JSON[@]}" -d '[1]' "$D/$N/comment")"
check "no such discussion: 404" 404 "$(call "${AO[@]}" "${JSON[@]}" -d '{"comment":"x"}' "$D/999/comment")"
check "a malformed number: 404" 404 "$(call "$D/1abc")"
check "bob cannot merge: 403" 403 "$(call -X POST "${AO[@]}" "$D/$PRN/merge")"
check "alice closes bob's discussion" 200 "$(call "${AW[@]}" "${JSON[@]}" -d '{"status":"closed","comment":"done"}' "$D/$N/status")"
check "list filters: closed, by bob" "[$N]" "$(call "$D?status=closed&author=bob" > /dev/null; jb '[x["num"] for x in d["discussions"]]')"
check "a bad filter: 400" 400 "$(call "$D?type=everything")"
# One token keeps at most 50 open discussions on a repo.
for i in $(seq 50); do call "${AO[@]}" "${JSON[@]}" -d "{\"title\":\"spam $i\"}" "$D" > /dev/null; done
check "the 51st open discussion of one token: 429" 429 "$(call "${AO[@]}" "${JSON[@]}" -d '{"title":"one more"}' "$D")"
check "listing pages by 50" "50 $((N + 50))" "$(call "$D" > /dev/null; jb 'len(d["discussions"]), d["count"]' | tr -d "(),")"

# Private repos: their discussions are as absent as the repo.
check "create alice/p private" 200 "$(call "${AW[@]}" "${JSON[@]}" -d '{"name":"p","organization":"alice","private":true}' "$U/api/repos/create")"
check "anonymous lists a private repo's discussions: same as a missing repo" "$(call "$U/api/models/alice/nope/discussions") $(hdr X-Error-Code)" "$(call "$U/api/models/alice/p/discussions") $(hdr X-Error-Code)"
check "bob opens one there: same as a missing repo" "$(call "${AO[@]}" "${JSON[@]}" -d '{"title":"x"}' "$U/api/models/alice/nope/discussions")" "$(call "${AO[@]}" "${JSON[@]}" -d '{"title":"x"}' "$U/api/models/alice/p/discussions")"

# Contributors: another namespace's write token opens pull requests on a public repo, nothing more.
check "bob: preupload for a pull request" 200 "$(call "${AO[@]}" "${JSON[@]}" -d '{"files":[]}' "$U/api/models/alice/m/preupload/main?create_pr=1")"
check "bob: preupload for main: 403" 403 "$(call "${AO[@]}" "${JSON[@]}" -d '{"files":[]}' "$U/api/models/alice/m/preupload/main")"
check "bob: LFS batch on a public repo" 200 "$(call -H "Accept: application/vnd.git-lfs+json" -H "Content-Type: application/vnd.git-lfs+json" "${AO[@]}" -d '{"operation":"upload","objects":[]}' "$U/alice/m.git/info/lfs/objects/batch")"
check "bob: LFS batch on a private repo: 404" 404 "$(call -H "Accept: application/vnd.git-lfs+json" -H "Content-Type: application/vnd.git-lfs+json" "${AO[@]}" -d '{"operation":"upload","objects":[]}' "$U/alice/p.git/info/lfs/objects/batch")"
printf '{"key":"header","value":{"summary":"bob"}}\n{"key":"file","value":{"path":"bob.txt","content":"%s","encoding":"base64"}}\n' "$(printf bob | base64 -w0)" > "$WORK/bob.ndjson"
check "a read-only token cannot open a pull request: 403" 403 "$(call "${AR[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/bob.ndjson" "$U/api/models/alice/m/commit/main?create_pr=1")"
check "bob commits to main: 403" 403 "$(call "${AO[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/bob.ndjson" "$U/api/models/alice/m/commit/main")"
check "bob opens a pull request with a file" 200 "$(call "${AO[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/bob.ndjson" "$U/api/models/alice/m/commit/main?create_pr=1")"
BOBPR=$(jb 'd["ref"]')
sed 's/bob.txt/bob2.txt/' "$WORK/bob.ndjson" > "$WORK/bob2.ndjson"
check "bob pushes to his pull request" "200 True" "$(call "${AO[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/bob2.ndjson" "$U/api/models/alice/m/commit/${BOBPR//\//%2F}") $(jb 'd["changed"]')"
check "the push is an event of the pull request" 2 "$(call "$D/${BOBPR#refs/pr/}" > /dev/null; jb 'sum(e["type"] == "commit" for e in d["events"])')"
check "bob on a private repo's pull requests: same as a missing repo" "$(call "${AO[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/bob.ndjson" "$U/api/models/alice/nope/commit/main?create_pr=1")" "$(call "${AO[@]}" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/bob.ndjson" "$U/api/models/alice/p/commit/main?create_pr=1")"

# ---- pull requests: merge, conflicts, nothing to merge, closed ------------------------------
check "a PR changing a.txt" 200 "$(commit alice/m "Add a" a.txt "from the pr" pr)"
P1=$(jb 'd["pullRequestUrl"].rsplit("/", 1)[1]')
check "hubnode pr list shows it" 1 "$(HF_TOKEN=$TW "$HUBNODE" -q pr list alice/m --node "$U" | grep -c "^#$P1 ")"
check "hubnode pr show --diff has the diff" 1 "$("$HUBNODE" -q pr show alice/m "$P1" --diff --node "$U" | grep -c '^+from the pr')"
check "hubnode pr merge" 0 "$("$HUBNODE" -q pr merge alice/m "$P1" --node "$U" --token "$TW" > /dev/null 2>&1; echo $?)"
check "merged: anonymous reads a.txt" "from the pr" "$(curl -s "$U/alice/m/resolve/main/a.txt")"
check "merging again: 409" 409 "$(call -X POST "${AW[@]}" "$D/$P1/merge")"
check "a commit to a merged PR's ref: 409" 409 "$(commit alice/m late b.txt late "refs%2Fpr%2F$P1")"
check "the empty PR: nothing to merge (409)" "409 NothingToMerge" "$(call -X POST "${AW[@]}" "$D/$PRN/merge") $(hdr X-Error-Code)"
commit alice/m "PR b" b.txt "pr side" pr > /dev/null
P2=$(jb 'd["pullRequestUrl"].rsplit("/", 1)[1]')
commit alice/m "main b" b.txt "main side" > /dev/null
check "a conflicting merge: 409 naming the file" "409 ['b.txt']" "$(call -X POST "${AW[@]}" "$D/$P2/merge") $(jb 'd["filesWithConflicts"]')"
check "hubnode pr close" 0 "$("$HUBNODE" -q pr close alice/m "$P2" --node "$U" --token "$TW" > /dev/null 2>&1; echo $?)"
check "hubnode pr merge by bob fails with the node's reason" 1 "$("$HUBNODE" -q pr merge alice/m "$PRN" --node "$U" --token "$TO" 2> "$WORK/pr.err"; echo $?)"
check "...which it prints" 1 "$(grep -c "only the repo's writers merge" "$WORK/pr.err")"

check "server log has no errors" "" "$(grep -E ' (ERROR|FATAL) ' "$WORK/err" | head -3)"

# hubnode refuse on the store (the server stopped): alice/pushed's staged head goes, and only it.
MAIN=$(call "$U/api/models/alice/m" > /dev/null; jb 'd["sha"]')
kill "$PID" && wait "$PID" 2>/dev/null
PID=
check "alice/pushed has a staged head" 1 "$(hub refs alice/pushed | grep -c ' refs/held/main$')"
check "hubnode refuse (store) drops it" "0 0" "$(hub refuse alice/pushed@main > /dev/null 2>&1; echo $?) $(hub refs alice/pushed | grep -c ' refs/held/')"
check "hubnode refuse (store) again fails" 1 "$(hub refuse alice/pushed@main > /dev/null 2>&1; echo $?)"
check "alice/m's main untouched" "$MAIN" "$(hub refs alice/m | sed -n 's| refs/heads/main$||p')"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
