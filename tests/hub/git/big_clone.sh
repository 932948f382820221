#!/usr/bin/env bash
# A ~1 GB model cloned with Debian's git and git-lfs, with bounded server memory (issue 15): the
# generated bench model (4 safetensors shards, with the Hub's .gitattributes line) imported private, cloned pointers-only with a read
# token as the password, then `git lfs pull` (git-lfs runs several downloads at once); every file
# byte-exact, the commit id `hubnode log`'s, and the server's peak RSS (VmHWM from
# /proc/PID/status, the whole life of the process) under LIMIT_MB. A memory bound, not a timing
# threshold: the time is printed only. Prints "N passed, M failed"; exits 77 without git-lfs.
# Usage: big_clone.sh HUBNODE [LIMIT_MB=400] [SIZE=bench]
set -uo pipefail
HUBNODE=$(realpath "$1")
LIMIT_MB=${2:-400}
SIZE=${3:-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in git git-lfs; do
  command -v "$tool" > /dev/null || { echo "SKIP: $tool is not installed (apt-get install git git-lfs)"; exit 77; }
done
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
source "$HERE/../../lib.sh"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
export HOME=$WORK/home GIT_CONFIG_GLOBAL=$WORK/home/.gitconfig GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
export GIT_HTTP_LOW_SPEED_LIMIT=1000 GIT_HTTP_LOW_SPEED_TIME=60
unset GIT_LFS_SKIP_SMUDGE GIT_DIR GIT_WORK_TREE GIT_TRACE_PACKET
mkdir -p "$HOME"
git lfs install --skip-repo > /dev/null
git config --global init.defaultBranch main

hub testmodel --size "$SIZE" --seed 1 --out "$WORK/model" > /dev/null
# As on the Hub (and in every repo made through the API), *.safetensors go through git-lfs.
printf '*.safetensors filter=lfs diff=lfs merge=lfs -text\n' > "$WORK/model/.gitattributes"
hub import "$WORK/model" --repo big/m --private > /dev/null
HEAD=$(hub log big/m -n 1 | sed -n 's/^commit \([0-9a-f]\{40\}\).*/\1/p')
TOKEN=$(hub token create --name reader --scope read --namespace big)
BYTES=$(du -cb "$WORK/model"/*.safetensors | tail -1 | cut -f1)
[[ -n "$HEAD" && -n "$TOKEN" && "$BYTES" -gt 0 ]] || { echo "FAIL: setup (model, import, token)"; exit 1; }
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -qs "serving http" "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
[[ -n "$U" ]] || { echo "FAIL: the node did not start"; cat "$WORK/err"; exit 1; }
hwm_mb() { awk '/^VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$PID/status"; }
IDLE=$(hwm_mb)

C=$WORK/clone
T0=$(date +%s.%N)
GIT_LFS_SKIP_SMUDGE=1 timeout 300 git clone -q "http://git:$TOKEN@${U#http://}/big/m" "$C" > "$WORK/clone.out" 2>&1
check "pointers-only clone" 0 "$?"
(cd "$C" 2>/dev/null && timeout 1200 git lfs pull) > "$WORK/pull.out" 2>&1
check "git lfs pull" 0 "$?"
T1=$(date +%s.%N)
PEAK=$(hwm_mb)
check "the commit is hubnode log's" "$HEAD" "$(git -C "$C" rev-parse HEAD 2>&1)"
check "every file byte-exact" "" "$(diff -rq --exclude=.git --exclude=.gitattributes "$WORK/model" "$C" 2>&1 | head -3)"
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }')
echo "cloned $BYTES bytes of LFS files in ${SECS}s ($(awk -v n="$BYTES" -v s="$SECS" 'BEGIN { printf "%.0f", n / s / 1e6 }') MB/s); server peak RSS ${PEAK} MB (idle ${IDLE} MB, limit ${LIMIT_MB} MB)"
check "server peak RSS under ${LIMIT_MB} MB" True "$( (( PEAK < LIMIT_MB )) && echo True || echo "False: ${PEAK} MB")"
check "server log has no errors" "" "$(grep -E ' (ERROR|FATAL) ' "$WORK/err" | head -3)"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
