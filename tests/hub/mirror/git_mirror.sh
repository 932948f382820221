#!/usr/bin/env bash
# A mirror keeps the upstream's identities (issue 15): node B pulls through from node A, which
# speaks git, so B's commits are A's (same ids and history in the API, in a git clone and in
# `hubnode log`); the real python client pins `revision=<A's sha>` through B and then reads the
# same files offline; after A's branch moves, B serves the new head once --mirror-ttl has passed,
# and with A gone B serves what it holds and says so. Prints "N passed, M failed".
# Usage: git_mirror.sh HUBNODE
set -uo pipefail
HUBNODE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENTS=$(realpath -m "$HERE/../../../../shared/clients")
PY=/usr/bin/python3
WORK=$(mktemp -d)
PIDA= PIDB=
trap '[[ -n "$PIDA" ]] && kill -9 "$PIDA" 2>/dev/null; [[ -n "$PIDB" ]] && kill -9 "$PIDB" 2>/dev/null; rm -rf "$WORK"' EXIT
source "$HERE/../../lib.sh"
export HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
git config --global user.name t && git config --global user.email t@example.com
ha() { "$HUBNODE" --data "$WORK/a" -q "$@"; }
hb() { "$HUBNODE" --data "$WORK/b" -q "$@"; }
start() {  # start NAME DATA ARGS...: serves, sets URL_NAME and PID_NAME
  local name=$1 data=$2
  shift 2
  "$HUBNODE" --data "$data" serve --listen 127.0.0.1:0 --no-inference "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  for _ in $(seq 600); do grep -qs serving "$WORK/$name.out" && break; sleep 0.05; done
  eval "PID${name}=$pid"
  eval "U${name}=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")"
}
sha() { curl -s -m 30 "$1/api/models/$2" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("sha",""))' 2>/dev/null; }
field() { curl -s -m 30 "$1/api/models/$2" | $PY -c "import json,sys; d=json.load(sys.stdin); print($3)" 2>/dev/null; }
ids() { awk '/^commit /{ print $2 }'; }

"$HUBNODE" testmodel --out "$WORK/model" --size tiny > /dev/null
ha import "$WORK/model" --repo alice/m -m "first" > /dev/null
TW=$(ha token create --name alice --scope write --namespace alice)
start A "$WORK/a"
start B "$WORK/b" --upstream "$UA" --mirror-ttl 2
A0=$(sha "$UA" alice/m)

# ---- the first pull-through keeps A's commit -----------------------------------------------
check "B's repo info: A's commit id" "$A0" "$(sha "$UB" alice/m)"
check "...mirrored over git, with the upstream's ids" "upstream git" "$(field "$UB" alice/m 'd["mirror"]["commitIds"], d["mirror"]["via"]')"
check "...the upstream's address is not shown" False "$(field "$UB" alice/m '"upstream" in d["mirror"]')"
check "X-Repo-Commit of a file through B is A's" "$A0" "$(curl -s -m 30 -o /dev/null -D - "$UB/alice/m/resolve/main/config.json" | tr -d '\r' | sed -n 's/^[Xx]-[Rr]epo-[Cc]ommit: //p')"
check "a file through B is byte-exact" same "$(curl -s -m 30 "$UB/alice/m/resolve/main/model-00001-of-00002.safetensors" | cmp -s - "$WORK/model/model-00001-of-00002.safetensors" && echo same)"

# A second commit on A, then B follows within the TTL.
printf '{"key":"header","value":{"summary":"notes"}}\n{"key":"file","value":{"path":"notes.txt","content":"%s","encoding":"base64"}}\n' \
  "$(printf 'second commit\n' | base64 -w0)" > "$WORK/c.ndjson"
check "a new commit on A" 200 "$(curl -s -m 30 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TW" -H "Content-Type: application/x-ndjson" --data-binary @"$WORK/c.ndjson" "$UA/api/models/alice/m/commit/main")"
A1=$(sha "$UA" alice/m)
sleep 2.5
check "after the TTL, B serves A's new head" "$A1" "$(sha "$UB" alice/m)"
check "...its parent is A's first commit" "$A0" "$(curl -s -m 30 "$UB/api/models/alice/m/commits/main" | $PY -c 'import json,sys; print(json.load(sys.stdin)[1]["id"])')"
check "...lastCommit of notes.txt is A's" "$A1" "$(curl -s -m 30 -X POST -d 'paths=notes.txt&expand=true' "$UB/api/models/alice/m/paths-info/main" | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["lastCommit"]["id"])')"

# git clones of A and B: the same history.
GIT_LFS_SKIP_SMUDGE=1 timeout 120 git clone -q "$UA/alice/m" "$WORK/ca" 2>/dev/null
GIT_LFS_SKIP_SMUDGE=1 timeout 120 git clone -q "$UB/alice/m" "$WORK/cb" 2>/dev/null
check "git log of a clone of B = of a clone of A" "$(git -C "$WORK/ca" log --format=%H | tr '\n' ' ')" "$(git -C "$WORK/cb" log --format=%H | tr '\n' ' ')"
check "...two commits" 2 "$(git -C "$WORK/cb" rev-list --count HEAD 2>/dev/null)"

# ---- python: pin A's sha through B, then offline ---------------------------------------------
if [[ -d "$CLIENTS/huggingface_hub-1.3.7" ]] && $PY -c 'import httpx, filelock, fsspec, tqdm, yaml, packaging' 2>/dev/null; then
  export HF_HOME=$WORK/hf HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_TELEMETRY=1 HF_HUB_DISABLE_PROGRESS_BARS=1
  py() { PYTHONPATH="$CLIENTS/huggingface_hub-1.3.7" $PY -c "$1" 2>&1 | tail -1; }
  check "snapshot_download(revision=A's first sha) through B" ok "$(HF_ENDPOINT=$UB py "
from huggingface_hub import snapshot_download
p = snapshot_download('alice/m', revision='$A0', token=False)
print('ok')")"
  check "...offline, the same revision resolves from the cache" ok "$(HF_ENDPOINT=$UB HF_HUB_OFFLINE=1 py "
from huggingface_hub import hf_hub_download, snapshot_download
import filecmp, os
p = snapshot_download('alice/m', revision='$A0', token=False)
f = hf_hub_download('alice/m', 'model-00002-of-00002.safetensors', revision='$A0', token=False)
assert filecmp.cmp(f, '$WORK/model/model-00002-of-00002.safetensors', shallow=False)
assert not os.path.exists(os.path.join(p, 'notes.txt'))
print('ok')")"
else
  echo "SKIP (python checks): the real python client is not at $CLIENTS"
fi

# ---- A goes away: B serves what it holds, and says so ---------------------------------------
kill -9 "$PIDA"; wait "$PIDA" 2>/dev/null; PIDA=
sleep 2.5
curl -s -m 30 -D "$WORK/stale.h" -o "$WORK/stale.json" "$UB/api/models/alice/m/revision/main"
check "A down, TTL passed: B still serves main" "$A1" "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha"])' "$WORK/stale.json")"
check "...with X-Hubnode-Mirror-Stale" True "$(grep -qi '^X-Hubnode-Mirror-Stale: the upstream is unavailable' "$WORK/stale.h" && echo True)"
check "...and mirrorStale in repo info" True "$($PY -c 'import json,sys; print("mirrorStale" in json.load(open(sys.argv[1])))' "$WORK/stale.json")"
check "within the TTL, no new attempt: no header" "" "$(curl -s -m 30 -D - -o /dev/null "$UB/api/models/alice/m/revision/main" | grep -i '^X-Hubnode-Mirror-Stale:')"

# ---- hubnode log on both nodes ----------------------------------------------------------------
kill "$PIDB"; wait "$PIDB" 2>/dev/null; PIDB=
check "hubnode log: B = A" "$(ha log alice/m | ids | tr '\n' ' ')" "$(hb log alice/m | ids | tr '\n' ' ')"
check "...and = A's API ids" "$A1 $A0 " "$(hb log alice/m | ids | tr '\n' ' ')"
check "fsck of B is clean" 0 "$(hb fsck > /dev/null 2>&1; echo $?)"

check "B's log has no errors" "" "$(grep -E ' (ERROR|FATAL) ' "$WORK/B.err" | head -3)"
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
