#!/usr/bin/env bash
# Git over smart HTTP (issue 15) with Debian's git and git-lfs as the clients, against a real
# `hubnode serve` on 127.0.0.1:
# - reads: a pointers-only clone (GIT_LFS_SKIP_SMUDGE=1) of an imported MoE model has the LFS
#   pointers and `hubnode log`'s commit ids; `git lfs pull` (all, and --include one shard) is
#   byte-exact; `.git` URLs; protocol v2 and v0; a fetch after a new commit receives exactly the
#   objects the clone lacks (v2 and v0), and nothing when there is nothing new; `--depth 1` and
#   `--unshallow`; `--filter=blob:none` (old blobs stay on the node until asked);
# - access: private and gated repos answer anonymous requests 401 with a Basic challenge, a
#   missing repo answers the same, the token works as the Basic password and as a Bearer
#   `http.extraHeader`, another namespace's token opens neither a private nor a gated repo;
# - pushes: PR #1 opened through the API takes a push to refs/pr/1; anonymous, read-token and
#   other-namespace pushes are refused; non-fast-forward refused by git, `--force` by a writer
#   accepted; a contributor pushes to the pull request he opened, but not a forced rewrite of it;
#   lightweight tags; the license policy (a denied card: the rule on a `remote:` line, the ref
#   rejected, nothing moves; a card needing review: staged as the API stages it);
# - hostile: wants for another repo's private blob or commit through a public repo; a pack
#   whose tree names a private repo's blob without carrying it (receive_pack.py); an LFS pointer
#   naming a private repo's object; the LFS batch API asked for that object;
# - a fine-tune pushed with git (git-lfs uploads the shard, then the commit): a plain clone
#   smudges it back byte-exact, `hubnode log` shows the pushed ids, and `hubnode stats` (the node
#   stopped: the store is locked while it serves) counts only the changed tensor's bytes as new.
# Prints "N passed, M failed"; exits 77 when git or git-lfs is missing.
# Usage: git_clients.sh HUBNODE
set -uo pipefail
HUBNODE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in git git-lfs curl; do
  command -v "$tool" > /dev/null || { echo "SKIP: $tool is not installed (apt-get install git git-lfs curl)"; exit 77; }
done
WORK=$(mktemp -d)
PID=
stop_node() { if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=; fi; }
trap 'stop_node; rm -rf "$WORK"' EXIT
source "$HERE/../../lib.sh"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
U=
start_node() {
  rm -f "$WORK/out"
  "$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2>> "$WORK/err" &
  PID=$!
  for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
  [[ -n "$U" ]] || { echo "FAIL: the node did not start"; cat "$WORK/err"; exit 1; }
}
au() { echo "http://git:$1@${U#http://}"; }   # au TOKEN: the node's URL with TOKEN as the Basic password

# git and git-lfs see only this test's configuration; nothing prompts; every call has a deadline.
export HOME=$WORK/home GIT_CONFIG_GLOBAL=$WORK/home/.gitconfig GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_HTTP_LOW_SPEED_LIMIT=1000 GIT_HTTP_LOW_SPEED_TIME=30
unset GIT_LFS_SKIP_SMUDGE GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_TRACE_PACKET
mkdir -p "$HOME"
git lfs install --skip-repo > /dev/null
git config --global user.name alice
git config --global user.email alice@localhost
git config --global init.defaultBranch main
git config --global protocol.version 2
git config --global advice.detachedHead false
git config --global lfs.locksverify false
g() { timeout 120 git "$@"; }
# ok CMD…: "ok", or why not; refused CMD…: "refused" when CMD fails. Output in $WORK/last.
ok() { if "$@" > "$WORK/last" 2>&1; then echo ok; else echo "failed: $(tail -3 "$WORK/last" | tr '\n' ' ')"; fi; }
refused() { if "$@" > "$WORK/last" 2>&1; then echo accepted; else echo refused; fi; }
pointer_of() {  # the LFS pointer git-lfs writes for FILE
  printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' "$(sha256sum < "$1" | cut -c1-64)" "$(stat -c %s "$1")"
}
is_pointer_of() { if cmp -s <(pointer_of "$2") "$1"; then echo pointer; else echo "not its pointer"; fi; }
same_tree() {   # same_tree DIR CLONE: every file of DIR byte-exact in CLONE, nothing else there
  if diff -rq --exclude=.git --exclude=.gitattributes "$1" "$2" > "$WORK/diff" 2>&1; then echo same; else head -3 "$WORK/diff" | tr '\n' ' '; fi
}
ids() { sed -n 's/^commit \([0-9a-f]\{40\}\).*/\1/p'; }   # commit ids of `hubnode log`
R=$WORK/r
call() { curl -s -m 30 -o "$R.body" -D "$R.h" -w "%{http_code}" "$@"; }
jb() { $PY -c "import json,sys
try:
    d=json.load(open(sys.argv[1])); print($1)
except Exception: print('ERR')" "$R.body"; }
hdr() { grep -i "^$1:" "$R.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
JSON=(-H "Content-Type: application/json")
LFSJ=(-H "Accept: application/vnd.git-lfs+json" -H "Content-Type: application/vnd.git-lfs+json")
ADV="info/refs?service=git-upload-pack"
# commit REPO TOKEN PATH TEXT [pr]: one inline file through the HTTP API; prints the status.
commit() {
  local q=""
  [[ "${5:-}" == pr ]] && q="?create_pr=1"
  printf '{"key":"header","value":{"summary":"add %s"}}\n{"key":"file","value":{"path":"%s","content":"%s","encoding":"base64"}}\n' \
    "$3" "$3" "$(printf '%s' "$4" | base64 -w0)" > "$WORK/c.ndjson"
  call -H "Authorization: Bearer $2" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/c.ndjson" "$U/api/models/$1/commit/main$q"
}
# api_main REPO [TOKEN]: where main is for that caller (anonymous: the released head).
api_main() {
  local a=()
  [[ -n "${2:-}" ]] && a=(-H "Authorization: Bearer $2")
  call "${a[@]}" "$U/api/models/$1/refs" > /dev/null
  jb '[b["targetCommit"] for b in d["branches"] if b["name"] == "main"][0]'
}
remote_ref() { g ls-remote "$1" "$2" 2> /dev/null | cut -f1 | head -1; }   # remote_ref URL REF

# ---- models, repos and tokens (the store is ours until the node starts) -------------------------
hub testmodel --family mixtral --size small --shards 2 --seed 1 --out "$WORK/model" > /dev/null
S1=model-00001-of-00002.safetensors S2=model-00002-of-00002.safetensors
# alice/m: two imports, so there is history; the first has another README and no tokenizer.
cp -r "$WORK/model" "$WORK/model1"
printf '\nDraft: the first upload.\n' >> "$WORK/model1/README.md"
rm "$WORK/model1/tokenizer.json" "$WORK/model1/tokenizer_config.json"
OLD_README=$(git hash-object "$WORK/model1/README.md")
hub import "$WORK/model1" --repo alice/m -m "first upload" > /dev/null
hub import "$WORK/model" --repo alice/m -m "add the tokenizer" > /dev/null
LOG_M=$(hub log alice/m | ids)
# alice/priv (private), alice/gated (gated), carol/vault (private, what an attacker wants).
hub testmodel --family olmoe --size tiny --seed 5 --out "$WORK/priv" > /dev/null
echo "alice's private notes" > "$WORK/priv/notes.txt"
hub import "$WORK/priv" --repo alice/priv --private > /dev/null
LOG_PRIV=$(hub log alice/priv | ids)
hub testmodel --family qwen3 --size tiny --seed 9 --out "$WORK/gated" > /dev/null
hub import "$WORK/gated" --repo alice/gated > /dev/null
hub repo visibility alice/gated gated > /dev/null
GATED_HEAD=$(hub log alice/gated | ids | head -1)
hub testmodel --family olmoe --size tiny --seed 11 --out "$WORK/vault" > /dev/null
echo "carol's vault: the launch code is 4242" > "$WORK/vault/vault.txt"
hub import "$WORK/vault" --repo carol/vault --private > /dev/null
VAULT_HEAD=$(hub log carol/vault | ids | head -1)
VAULT_BLOB=$(git hash-object "$WORK/vault/vault.txt")
VAULT_LFS=$(ls "$WORK/vault"/*.safetensors | head -1)
VAULT_OID=$(sha256sum < "$VAULT_LFS" | cut -c1-64) VAULT_SIZE=$(stat -c %s "$VAULT_LFS")
hub testmodel --family olmoe --size tiny --seed 3 --out "$WORK/pubsrc" > /dev/null
TW=$(hub token create --name alice --scope write --namespace alice)
TR=$(hub token create --name alice-read --scope read --namespace alice)
TBR=$(hub token create --name bob-read --scope read --namespace bob)
TBW=$(hub token create --name bob --scope write --namespace bob)
AW=(-H "Authorization: Bearer $TW")
hub trust policy --class non-commercial --verdict deny > /dev/null   # the default, stated
# The fine-tune: shard 1 with its largest non-expert tensor changed (the low byte of every
# 2-byte element flipped); the header and every other tensor unchanged.
cp -r "$WORK/model" "$WORK/ft"
$PY - "$WORK/model/$S1" "$WORK/ft/$S1" > "$WORK/ft.txt" <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
name, t = max(((k, v) for k, v in header.items() if k != "__metadata__" and "experts" not in k),
              key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0])
a, b = (8 + n + o for o in t["data_offsets"])
for i in range(a, b, 2):
    data[i] ^= 1
open(sys.argv[2], "wb").write(data)
print(name, b - a)
PY
read -r FT_TENSOR FT_BYTES < "$WORK/ft.txt"
[[ -n "$LOG_M" && -n "$LOG_PRIV" && -n "$GATED_HEAD" && -n "$VAULT_HEAD" && -n "${FT_BYTES:-}" && -n "$TBW" ]] ||
  { echo "FAIL: setup (test models, imports, tokens)"; exit 1; }
start_node

# ---- reads: an imported model ------------------------------------------------------------------
C1=$WORK/c1
check "pointers-only clone (protocol v2)" ok "$(GIT_TRACE_PACKET="$WORK/trace.v2" GIT_LFS_SKIP_SMUDGE=1 ok g clone "$U/alice/m" "$C1")"
check "the node spoke protocol v2" True "$(grep -q 'git< version 2' "$WORK/trace.v2" && echo True)"
check "commit ids = hubnode log" "$(echo $LOG_M)" "$(echo $(g -C "$C1" log --format=%H))"
check "HEAD is main" refs/heads/main "$(g -C "$C1" symbolic-ref HEAD)"
check "shard 1 is its LFS pointer" pointer "$(is_pointer_of "$C1/$S1" "$WORK/model/$S1")"
check "shard 2 is its LFS pointer" pointer "$(is_pointer_of "$C1/$S2" "$WORK/model/$S2")"
check "small files byte-exact" same "$(cmp -s "$WORK/model/config.json" "$C1/config.json" && cmp -s "$WORK/model/tokenizer.json" "$C1/tokenizer.json" && echo same)"
check "git lfs pull" ok "$(cd "$C1" && ok timeout 300 git lfs pull)"
check "...every file byte-exact" same "$(same_tree "$WORK/model" "$C1")"

C2=$WORK/c2
check "clone by the .git URL" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g clone "$U/alice/m.git" "$C2")"
check "...same commits" "$(echo $LOG_M)" "$(echo $(g -C "$C2" log --format=%H))"
check "git lfs pull --include one shard" ok "$(cd "$C2" && ok timeout 300 git lfs pull --include "model-00001*")"
check "...that shard byte-exact" same "$(cmp -s "$WORK/model/$S1" "$C2/$S1" && echo same)"
check "...the other still a pointer" pointer "$(is_pointer_of "$C2/$S2" "$WORK/model/$S2")"
check "...one LFS object fetched" 1 "$(find "$C2/.git/lfs/objects" -type f | wc -l)"

C0=$WORK/c0
check "protocol v0 clone" ok "$(GIT_TRACE_PACKET="$WORK/trace.v0" GIT_LFS_SKIP_SMUDGE=1 ok g -c protocol.version=0 clone "$U/alice/m" "$C0")"
check "...v0 indeed (no version 2 in the exchange)" 0 "$(grep -c 'version 2' "$WORK/trace.v0")"
check "...same commits" "$(echo $LOG_M)" "$(echo $(g -C "$C0" log --format=%H))"

# A fetch after a new commit receives exactly what the clone lacks ("Receiving objects" counts
# the pack; unpackLimit=1 keeps it a pack so that line is printed).
fetch_count() {  # fetch_count DIR [git -c options…]: objects in the pack the fetch received
  local d=$1; shift
  g -C "$d" "$@" -c fetch.unpackLimit=1 -c transfer.unpackLimit=1 fetch --progress origin > "$WORK/fetch.out" 2>&1 || { echo "fetch failed: $(tail -2 "$WORK/fetch.out")"; return; }
  tr '\r' '\n' < "$WORK/fetch.out" | sed -n -e 's/^Receiving objects: 100% (\([0-9]*\)\/.*/\1/p' -e 's/^Unpacking objects: 100% (\([0-9]*\)\/.*/\1/p' | tail -1
}
objects() { g -C "$1" rev-list --objects --all | cut -d' ' -f1 | sort; }
objects "$C1" > "$WORK/objs.before"
check "a new commit through the HTTP API" 200 "$(commit alice/m "$TW" notes.txt "fetched later")"
NEWC=$(jb 'd["commitOid"]')
RECV=$(fetch_count "$C1")
check "fetch: origin/main is that commit" "$NEWC" "$(g -C "$C1" rev-parse origin/main)"
objects "$C1" > "$WORK/objs.after"
NEWOBJ=$(comm -13 "$WORK/objs.before" "$WORK/objs.after" | wc -l)
check "fetch: 3 objects are new (commit, root tree, notes.txt)" 3 "$NEWOBJ"
check "fetch (v2): the pack held exactly those" "$NEWOBJ" "$RECV"
check "fetch with nothing new: no pack" "" "$(fetch_count "$C1")"
objects "$C0" > "$WORK/objs.before"
RECV=$(fetch_count "$C0" -c protocol.version=0)
objects "$C0" > "$WORK/objs.after"
check "fetch (v0): the pack held exactly what the clone lacked" "$(comm -13 "$WORK/objs.before" "$WORK/objs.after" | wc -l)" "$RECV"
check "...up to the new commit" "$NEWC" "$(g -C "$C0" rev-parse origin/main)"

CS=$WORK/shallow
check "shallow clone --depth 1" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g clone --depth 1 "$U/alice/m" "$CS")"
check "...one commit" 1 "$(g -C "$CS" rev-list --count HEAD)"
check "...recorded in .git/shallow" "$NEWC" "$(cat "$CS/.git/shallow" 2>/dev/null)"
check "fetch --unshallow: the whole history" "$(($(echo "$LOG_M" | wc -l) + 1))" "$(g -C "$CS" fetch -q --unshallow > /dev/null 2>&1; g -C "$CS" rev-list --count HEAD)"

CF=$WORK/filtered
check "partial clone --filter=blob:none" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g clone --filter=blob:none "$U/alice/m" "$CF")"
check "...checked out byte-exact" same "$(cmp -s "$WORK/model/config.json" "$CF/config.json" && cmp -s "$WORK/model/README.md" "$CF/README.md" && echo same)"
check "...origin is a promisor" true "$(g -C "$CF" config remote.origin.promisor)"
check "...the first commit's README blob was not sent" "?$OLD_README" "$(g -C "$CF" rev-list --objects --all --missing=print | grep -x "?$OLD_README")"
check "...and comes when asked" "$(cat "$WORK/model1/README.md")" "$(g -C "$CF" show HEAD~2:README.md 2>&1)"

# ---- private and gated repos ---------------------------------------------------------------------
PRIV_HEAD=$(echo "$LOG_PRIV" | head -1)
CHALLENGE='401 Basic realm="hubnode"'
check "private, anonymous: 401 with a Basic challenge" "$CHALLENGE" "$(call "$U/alice/priv.git/$ADV") $(hdr WWW-Authenticate)"
check "...nothing of the repo in the answer" 0 "$(grep -c "$PRIV_HEAD" "$R.body")"
check "...same without .git" "$CHALLENGE" "$(call "$U/alice/priv/$ADV") $(hdr WWW-Authenticate)"
check "a missing repo answers the same" "$CHALLENGE" "$(call "$U/alice/nope.git/$ADV") $(hdr WWW-Authenticate)"
check "another namespace's token: private = missing" "$(call -u "git:$TBR" "$U/alice/nope.git/$ADV")" "$(call -u "git:$TBR" "$U/alice/priv.git/$ADV")"
check "...and receive-pack too" "$(call -u "git:$TBR" "$U/alice/nope.git/info/refs?service=git-receive-pack")" "$(call -u "git:$TBR" "$U/alice/priv.git/info/refs?service=git-receive-pack")"
check "private: anonymous git clone fails, nothing cloned" "refused no" "$(refused g clone "$U/alice/priv" "$WORK/p-anon") $([[ -e "$WORK/p-anon/.git" ]] && echo yes || echo no)"
check "...and git prints no commit of it" 0 "$(grep -c "$PRIV_HEAD" "$WORK/last")"
check "private: clone with a read token as the password" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g clone "$(au "$TR")/alice/priv" "$WORK/p-tok")"
check "...commit ids = hubnode log" "$(echo $LOG_PRIV)" "$(echo $(g -C "$WORK/p-tok" log --format=%H))"
check "...git lfs pull byte-exact" "ok same" "$(cd "$WORK/p-tok" && ok timeout 300 git lfs pull) $(same_tree "$WORK/priv" "$WORK/p-tok")"
check "private: clone with the token as a Bearer http.extraHeader" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g -c http.extraHeader="Authorization: Bearer $TW" clone "$U/alice/priv.git" "$WORK/p-hdr")"
check "...same commits" "$(echo $LOG_PRIV)" "$(echo $(g -C "$WORK/p-hdr" log --format=%H 2>/dev/null))"
check "private: another namespace's read token cannot clone" refused "$(refused g clone "$(au "$TBR")/alice/priv" "$WORK/p-bob")"
check "private: LFS batch download, anonymous: as a missing repo" \
  "$(call "${LFSJ[@]}" -d '{"operation":"download","objects":[]}' "$U/alice/nope.git/info/lfs/objects/batch")" \
  "$(call "${LFSJ[@]}" -d '{"operation":"download","objects":[]}' "$U/alice/priv.git/info/lfs/objects/batch")"
# Gated: files for token holders the HTTP API lets read them (its namespace's tokens, unrestricted
# ones); another namespace's token gets 403 GatedRepo for the files there, so no clone here either.
check "gated, anonymous: 401 with a Basic challenge" "$CHALLENGE" "$(call "$U/alice/gated.git/$ADV") $(hdr WWW-Authenticate)"
check "gated: anonymous git clone fails" refused "$(refused g clone "$U/alice/gated" "$WORK/g-anon")"
check "gated: another namespace's read token cannot clone (the API answers it 403 for the files)" "403 refused" \
  "$(call -H "Authorization: Bearer $TBR" "$U/alice/gated/resolve/main/config.json") $(refused g clone "$(au "$TBR")/alice/gated" "$WORK/g-bob")"
check "gated: the namespace's read token clones it" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g clone "$(au "$TR")/alice/gated" "$WORK/g-tok")"
check "...at the node's head" "$GATED_HEAD" "$(g -C "$WORK/g-tok" rev-parse HEAD 2>/dev/null)"
check "...git lfs pull byte-exact" "ok same" "$(cd "$WORK/g-tok" && ok timeout 300 git lfs pull) $(same_tree "$WORK/gated" "$WORK/g-tok")"

# ---- pushes ---------------------------------------------------------------------------------------
check "alice/pub published through the HTTP API (hubnode push)" 0 "$("$HUBNODE" -q push "$WORK/pubsrc" alice/pub --to "$U" --token "$TW" > "$WORK/last" 2>&1; echo $?)"
P=$WORK/pub
check "the writer's clone" ok "$(GIT_LFS_SKIP_SMUDGE=1 ok g clone "$(au "$TW")/alice/pub" "$P")"
g -C "$P" lfs update > /dev/null 2>&1   # git-lfs's hooks (pre-push uploads LFS objects first)
M0=$(g -C "$P" rev-parse HEAD)
check "...at main" "$M0" "$(api_main alice/pub)"
check ".gitattributes of the initial commit routes *.safetensors to LFS" lfs "$(g -C "$P" check-attr filter -- new.safetensors | awk '{ print $NF }')"
check "PR #1 opened through the API" "200 1" "$(call "${AW[@]}" "${JSON[@]}" -d '{"title":"by git","pullRequest":true}' "$U/api/models/alice/pub/discussions") $(jb 'd["num"]')"
echo "for the pull request" > "$P/pr.txt"
g -C "$P" add pr.txt && g -C "$P" commit -qm "for the pull request"
check "git push to refs/pr/1" ok "$(ok g -C "$P" push origin HEAD:refs/pr/1)"
check "...ls-remote shows it" "$(g -C "$P" rev-parse HEAD)" "$(remote_ref "$U/alice/pub" refs/pr/1)"
check "...the API's PR ref too" "$(g -C "$P" rev-parse HEAD)" "$(call "$U/api/models/alice/pub/revision/refs%2Fpr%2F1" > /dev/null; jb 'd["sha"]')"
check "...a commit event of PR #1" True "$(call "$U/api/models/alice/pub/discussions/1" > /dev/null; jb 'any(e["type"] == "commit" for e in d["events"])')"
check "...main did not move" "$M0" "$(api_main alice/pub)"

g -C "$P" reset -q --hard "$M0"
echo "a" > "$P/a.txt"
g -C "$P" add a.txt && g -C "$P" commit -qm "add a"
A1=$(g -C "$P" rev-parse HEAD)
check "anonymous push: refused" refused "$(refused g -C "$P" push "$U/alice/pub" HEAD:main)"
check "read-token push: refused" refused "$(refused g -C "$P" push "$(au "$TR")/alice/pub" HEAD:main)"
check "another namespace's write token, to main: refused" refused "$(refused g -C "$P" push "$(au "$TBW")/alice/pub" HEAD:main)"
check "...main did not move" "$M0" "$(api_main alice/pub)"
check "the writer's push" ok "$(ok g -C "$P" push origin HEAD:main)"
check "...main is the pushed commit (API, ls-remote)" "$A1 $A1" "$(api_main alice/pub) $(remote_ref "$U/alice/pub" refs/heads/main)"
check "...the API's history has git's ids" "$A1 $M0" "$(call "$U/api/models/alice/pub/commits/main" > /dev/null; jb '" ".join(c["id"] for c in d[:2])')"
g -C "$P" reset -q --hard "$M0"
echo "b" > "$P/b.txt"
g -C "$P" add b.txt && g -C "$P" commit -qm "add b instead"
B1=$(g -C "$P" rev-parse HEAD)
check "non-fast-forward push: refused" refused "$(refused g -C "$P" push origin HEAD:main)"
check "...main did not move" "$A1" "$(api_main alice/pub)"
check "the writer's push --force: accepted" ok "$(ok g -C "$P" push --force origin HEAD:main)"
check "...main is the rewritten commit" "$B1" "$(api_main alice/pub)"
g -C "$P" tag v1.0
check "a lightweight tag pushed" ok "$(ok g -C "$P" push origin v1.0)"
check "...in the API's refs" "['$B1']" "$(call "$U/api/models/alice/pub/refs" > /dev/null; jb '[t["targetCommit"] for t in d["tags"] if t["name"] == "v1.0"]')"
check "...and ls-remote" "$B1" "$(remote_ref "$U/alice/pub" refs/tags/v1.0)"

# A contributor (another namespace's write token) pushes to the pull request he opened, never a
# rewrite of it.
check "bob opens a pull request through the API" 200 "$(commit alice/pub "$TBW" bob.txt "from bob" pr)"
BOBREF=$(jb 'd["ref"]')
B=$WORK/bob
GIT_LFS_SKIP_SMUDGE=1 g clone -q "$(au "$TBW")/alice/pub" "$B" > /dev/null 2>&1
check "bob fetches $BOBREF" ok "$(ok g -C "$B" fetch origin "$BOBREF:refs/remotes/origin/pr")"
g -C "$B" checkout -q --detach origin/pr 2>/dev/null
echo "more from bob" > "$B/bob2.txt"
g -C "$B" add bob2.txt && g -C "$B" -c user.name=bob commit -qm "bob: more"
BOB1=$(g -C "$B" rev-parse HEAD)
check "bob pushes to his pull request" ok "$(ok g -C "$B" push origin "HEAD:$BOBREF")"
check "...its ref moved" "$BOB1" "$(remote_ref "$U/alice/pub" "$BOBREF")"
g -C "$B" reset -q --hard HEAD~1
echo "rewritten" > "$B/bob3.txt"
g -C "$B" add bob3.txt && g -C "$B" -c user.name=bob commit -qm "bob: rewrite"
check "bob's forced non-fast-forward push to it: refused by the node" "refused 1" "$(refused g -C "$B" push --force origin "HEAD:$BOBREF") $(grep -c 'remote rejected' "$WORK/last")"
check "...its ref did not move" "$BOB1" "$(remote_ref "$U/alice/pub" "$BOBREF")"

# The license policy runs before a ref moves.
check "create alice/pol" 200 "$(call "${AW[@]}" "${JSON[@]}" -d '{"name":"pol","organization":"alice"}' "$U/api/repos/create")"
check "an apache-2.0 card through the API" 200 "$(commit alice/pol "$TW" README.md $'---\nlicense: apache-2.0\n---\n# ok\n')"
R0=$(jb 'd["commitOid"]')
PL=$WORK/pol
GIT_LFS_SKIP_SMUDGE=1 g clone -q "$(au "$TW")/alice/pol" "$PL" > /dev/null 2>&1
printf -- '---\nlicense: cc-by-nc-4.0\n---\n# non-commercial now\n' > "$PL/README.md"
g -C "$PL" commit -qam "non-commercial card"
check "push of a card the policy denies: refused" refused "$(refused g -C "$PL" push origin HEAD:main)"
check "...the rule on a remote: line" True "$(grep -qiE '^remote: .*cc-by-nc-4\.0' "$WORK/last" && echo True)"
check "...git reports the ref rejected" 1 "$(grep -c 'remote rejected' "$WORK/last")"
check "...main did not move (anonymous, writer)" "$R0 $R0" "$(api_main alice/pol) $(api_main alice/pol "$TW")"
g -C "$PL" reset -q --hard "$R0"
printf '# no card any more\n' > "$PL/README.md"
g -C "$PL" commit -qam "no license"
HELD=$(g -C "$PL" rev-parse HEAD)
check "push of a card needing review: accepted, staged (as the API stages it)" ok "$(ok g -C "$PL" push origin HEAD:main)"
check "...the reason on a remote: line" True "$(grep -qiE '^remote: .*review' "$WORK/last" && echo True)"
check "...anonymous: main is still the released commit" "$R0" "$(api_main alice/pol)"
check "...anonymous ls-remote too" "$R0" "$(remote_ref "$U/alice/pol" refs/heads/main)"
check "...the writer: main at the pushed commit, held" "$HELD True" "$(call "${AW[@]}" "$U/api/models/alice/pol/refs" > /dev/null; jb '" ".join(str(x) for x in [(b["targetCommit"], b.get("held")) for b in d["branches"] if b["name"] == "main"][0])')"

# ---- hostile ----------------------------------------------------------------------------------------
H=$WORK/hostile
GIT_LFS_SKIP_SMUDGE=1 g clone -q "$(au "$TW")/alice/pub" "$H" > /dev/null 2>&1
g -C "$H" lfs update > /dev/null 2>&1
check "want carol's private blob through alice/pub (v2): refused" "refused absent" "$(refused g -C "$H" fetch origin "$VAULT_BLOB") $(g -C "$H" cat-file -e "$VAULT_BLOB" 2>/dev/null && echo present || echo absent)"
check "...(v0): refused" "refused absent" "$(refused g -C "$H" -c protocol.version=0 fetch origin "$VAULT_BLOB") $(g -C "$H" cat-file -e "$VAULT_BLOB" 2>/dev/null && echo present || echo absent)"
check "want carol's private commit through alice/pub: refused" "refused absent" "$(refused g -C "$H" fetch origin "$VAULT_HEAD") $(g -C "$H" cat-file -e "$VAULT_HEAD" 2>/dev/null && echo present || echo absent)"
# A commit whose tree names carol's blob, pushed in a pack without it: the node must not take the
# blob from carol's repo. The same push with the blob in the pack is the control.
OLD=$(api_main alice/pub "$TW")
BLOB=$(g -C "$H" hash-object -w "$WORK/vault/vault.txt")
GIT_INDEX_FILE=$WORK/steal.idx g -C "$H" read-tree "$OLD"
GIT_INDEX_FILE=$WORK/steal.idx g -C "$H" update-index --add --cacheinfo "100644,$BLOB,stolen.txt"
TREE=$(GIT_INDEX_FILE=$WORK/steal.idx g -C "$H" write-tree)
STEAL=$(g -C "$H" commit-tree "$TREE" -p "$OLD" -m "stolen")
printf '%s\n%s\n' "$STEAL" "$TREE" | g -C "$H" pack-objects -q --stdout > "$WORK/thin.pack"
printf '%s\n%s\n%s\n' "$STEAL" "$TREE" "$BLOB" | g -C "$H" pack-objects -q --stdout > "$WORK/full.pack"
$PY "$HERE/receive_pack.py" "$U/alice/pub.git" "$OLD" "$STEAL" refs/heads/main "$WORK/thin.pack" "$TW" > "$WORK/rp.out" 2>&1
check "a pack naming carol's blob without it: refused" "no" "$(grep -qx 'ok refs/heads/main' "$WORK/rp.out" && echo yes || echo no)"
check "...main did not move" "$OLD" "$(api_main alice/pub "$TW")"
check "...the crafted commit does not resolve" refused "$(s=$(call "$U/alice/pub/resolve/$STEAL/stolen.txt"); [[ $s == 200 ]] && echo "$s: $(head -c 60 "$R.body")" || echo refused)"
$PY "$HERE/receive_pack.py" "$U/alice/pub.git" "$OLD" "$STEAL" refs/heads/main "$WORK/full.pack" "$TW" > "$WORK/rp.out" 2>&1
check "control: the same push carrying the blob is accepted" "ok refs/heads/main" "$(grep -x 'ok refs/heads/main' "$WORK/rp.out")"
check "...main moved to it" "$STEAL" "$(api_main alice/pub "$TW")"
# An LFS pointer naming carol's object (git-lfs's pre-push hook skipped: it has nothing to upload).
g -C "$H" fetch -q origin 2>/dev/null; g -C "$H" reset -q --hard origin/main
pointer_of "$VAULT_LFS" > "$H/stolen.safetensors"
g -C "$H" add stolen.safetensors && g -C "$H" commit -qm "a pointer to carol's weights"
check "a pointer to an LFS object of carol's private repo: refused" refused "$(refused g -C "$H" push --no-verify origin HEAD:main)"
check "...main did not move" "$STEAL" "$(api_main alice/pub "$TW")"
check "LFS batch download of carol's object through alice/pub: no href" True \
  "$(s=$(call "${AW[@]}" "${LFSJ[@]}" -d "{\"operation\":\"download\",\"objects\":[{\"oid\":\"$VAULT_OID\",\"size\":$VAULT_SIZE}]}" "$U/alice/pub.git/info/lfs/objects/batch"); [[ $s != 200 ]] && echo True || jb '"href" not in json.dumps(d)')"

# ---- a fine-tune pushed with git; what the store kept ------------------------------------------------
check "alice/ft published through the HTTP API (hubnode push)" 0 "$("$HUBNODE" -q push "$WORK/model" alice/ft --to "$U" --token "$TW" > "$WORK/last" 2>&1; echo $?)"
F=$WORK/ftclone
GIT_LFS_SKIP_SMUDGE=1 g clone -q "$(au "$TW")/alice/ft" "$F" > /dev/null 2>&1
g -C "$F" lfs update > /dev/null 2>&1
check "alice/ft: $S1 goes through LFS" lfs "$(g -C "$F" check-attr filter -- "$S1" | awk '{ print $NF }')"
cp "$WORK/ft/$S1" "$F/$S1"
g -C "$F" add "$S1" && g -C "$F" commit -qm "fine-tune: $FT_TENSOR"
FTC=$(g -C "$F" rev-parse HEAD)
check "...the commit holds the new shard as an LFS pointer" pointer "$(g -C "$F" cat-file -p "HEAD:$S1" > "$WORK/ptr" 2>&1; is_pointer_of "$WORK/ptr" "$WORK/ft/$S1")"
stop_node
jstat() { $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["chunk_raw_bytes"], d["chunks"])' "$1"; }
hub stats --json > "$WORK/stats0.json"
start_node
g -C "$F" remote set-url origin "$(au "$TW")/alice/ft"
check "git push of the fine-tune (git-lfs uploads the shard, then the commit)" ok "$(ok g -C "$F" push origin HEAD:main)"
check "...main is the pushed commit" "$FTC" "$(api_main alice/ft "$TW")"
check "a plain git clone (git-lfs smudges)" ok "$(ok g clone "$U/alice/ft" "$WORK/ft-clone")"
check "...byte-exact with the pushed files" same "$(same_tree "$WORK/ft" "$WORK/ft-clone")"
check "...the old shard is in history" "$(pointer_of "$WORK/model/$S1")" "$(g -C "$WORK/ft-clone" show "HEAD~1:$S1" 2>&1)"
GIT_LFS_SKIP_SMUDGE=1 g clone -q "$U/alice/pub" "$WORK/pub-final" > /dev/null 2>&1
stop_node
hub stats --json > "$WORK/stats1.json"
read -r RAW0 CH0 < <(jstat "$WORK/stats0.json")
read -r RAW1 CH1 < <(jstat "$WORK/stats1.json")
NEWRAW=$((RAW1 - RAW0))
check "stats: only the changed tensor's bytes are new ($FT_TENSOR, $FT_BYTES of $(stat -c %s "$WORK/model/$S1") bytes)" True \
  "$([[ $NEWRAW -ge $FT_BYTES && $NEWRAW -le $((FT_BYTES + 65536)) ]] && echo True || echo "False: $NEWRAW new raw bytes in $((CH1 - CH0)) chunks")"
check "hubnode log alice/ft: the pushed commit first" "$FTC" "$(hub log alice/ft -n 1 | ids)"
check "hubnode log alice/pub = git log of a clone (pushes, force push, raw push)" "$(echo $(g -C "$WORK/pub-final" log --format=%H))" "$(echo $(hub log alice/pub -n 1000 | ids))"

check "server log has no errors" "" "$(grep -E ' (ERROR|FATAL) ' "$WORK/err" | head -3)"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
