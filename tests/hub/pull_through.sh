#!/usr/bin/env bash
# Pull-through and `hubnode pull` between real hubnode processes on 127.0.0.1 (B mirrors from A):
# a byte-exact snapshot through B; A killed mid-transfer leaves B with nothing partial and a
# retryable 502/504 (never RepoNotFound); --offline; deny lists; pull --include; resumed pull.
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
pass=0 fail=0
check() { if [[ "$2" == "$3" ]]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $1: expected [$2], got [$3]"; fi; }
start() {  # start NAME DATA [serve flags...]; sets URL_<NAME> and PID_<NAME>
  local name=$1 data=$2; shift 2
  "$HUBNODE" --data "$data" serve --listen 127.0.0.1:0 "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 200); do grep -q serving "$WORK/$name.out" && break; sleep 0.05; done
  eval "PID_$name=$pid"
  eval "URL_$name=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")"
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null; }

"$HUBNODE" -q testmodel --family qwen3_moe --size small --seed 9 --out "$WORK/m" > /dev/null
"$HUBNODE" -q testmodel --seed 10 --out "$WORK/s" > /dev/null
"$HUBNODE" --data "$WORK/A" -q import "$WORK/m" --repo org/model > /dev/null
"$HUBNODE" --data "$WORK/A" -q import "$WORK/s" --repo org/secret-model > /dev/null
start A "$WORK/A"
start B "$WORK/B" --upstream "$URL_A" --mirror-deny 'org/secret*'

# A snapshot through B, file by file as a client would: tree listing, then every file.
tree=$(curl -s "$URL_B/api/models/org/model/tree/main?recursive=true")
files=$(echo "$tree" | /usr/bin/python3 -c 'import json,sys; print("\n".join(e["path"] for e in json.load(sys.stdin) if e["type"]=="file"))')
check "tree through B lists every file" "$(cd "$WORK/m" && find . -type f | sed 's|^\./||' | sort)" "$(echo "$files" | sort)"
ok=0
for f in $files; do
  curl -s "$URL_B/org/model/resolve/main/$f" | cmp -s - "$WORK/m/$f" && ok=$((ok + 1))
done
check "snapshot through B is byte-exact" "$(echo "$files" | wc -l)" "$ok"
sha_b=$(curl -s -I "$URL_B/org/model/resolve/main/config.json" | grep -i '^x-repo-commit' | tr -d '\r' | cut -d' ' -f2)
sha_a=$(curl -s "$URL_A/api/models/org/model" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["sha"])')
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL_B/org/model/resolve/$sha_a/config.json")
check "the upstream commit id resolves at B" 200 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL_B/org/model/resolve/$sha_b/config.json")
check "B's own commit id resolves at B" 200 "$code"
hdr=$(curl -s -I "$URL_B/org/secret-model/resolve/main/config.json" | grep -i '^x-error-code' | tr -d '\r')
check "a denied repo is not pulled through" "X-Error-Code: RepoNotFound" "$hdr"
hdr=$(curl -s -I "$URL_B/org/absent/resolve/main/config.json" | grep -i '^x-error-code' | tr -d '\r')
check "a repo missing upstream is RepoNotFound" "X-Error-Code: RepoNotFound" "$hdr"

# --offline: B restarted offline serves what it holds and nothing else; A sees no request.
stop "$PID_B"
start B "$WORK/B" --upstream "$URL_A" --offline
before=$(grep -c ' GET \| HEAD ' "$WORK/A.err")
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL_B/org/model/resolve/main/config.json")
check "offline serves a held repo" 200 "$code"
hdr=$(curl -s -I "$URL_B/org/secret-model/resolve/main/config.json" | grep -i '^x-error-code' | tr -d '\r')
check "offline does not fetch" "X-Error-Code: RepoNotFound" "$hdr"
check "offline sent nothing upstream" "$before" "$(grep -c ' GET \| HEAD ' "$WORK/A.err")"
stop "$PID_B"

# A killed mid-transfer: C pulls through at a capped rate, A dies; C answers 502/504, keeps nothing.
start C "$WORK/C" --upstream "$URL_A" --upstream-rate-limit 2000000
curl -s -o /dev/null -w '%{http_code}' "$URL_C/org/model/resolve/main/config.json" > "$WORK/c.code" &
CURL=$!
sleep 1.5
kill -9 "$PID_A"
wait "$CURL"
code=$(cat "$WORK/c.code")
check "upstream died mid-transfer: retryable 502/504" 1 "$([[ $code == 502 || $code == 504 ]] && echo 1 || echo 0)"
hdr=$(curl -s -I "$URL_C/org/model/resolve/main/config.json" | grep -i -E '^(x-error-code|retry-after)' | tr -d '\r' | sort | tr '\n' ' ')
check "upstream down: UpstreamUnavailable with Retry-After" "Retry-After: 30 X-Error-Code: UpstreamUnavailable " "$hdr"
stop "$PID_C"
check "nothing partial is visible at C" "" "$("$HUBNODE" --data "$WORK/C" ls 2>&1)"

# `hubnode pull`: --include selects files; an interrupted pull resumes and completes.
start A "$WORK/A"
"$HUBNODE" --data "$WORK/D" -q pull org/model --from "$URL_A" --include '*.json' > /dev/null
check "pull --include" "$(cd "$WORK/m" && ls *.json | sort | tr '\n' ' ')" \
  "$("$HUBNODE" --data "$WORK/D" ls org/model | awk '{print $4}' | sort | tr '\n' ' ')"
"$HUBNODE" --data "$WORK/E" -q pull org/model --from "$URL_A" > /dev/null
"$HUBNODE" --data "$WORK/E" -q export org/model "$WORK/e-out" > /dev/null
check "pull then export is byte-exact" "" "$(diff -r "$WORK/m" "$WORK/e-out")"
# An interrupted pull keeps its verified and partial files in staging and the next pull resumes.
"$HUBNODE" --data "$WORK/F" -q pull org/model --from "$URL_A" --rate-limit 2000000 --jobs 1 > /dev/null 2>&1 &
PULL=$!
sleep 1.5
kill -9 "$PID_A"
wait "$PULL"
check "pull fails when the upstream dies" 1 "$?"
check "nothing visible after the failed pull" "" "$("$HUBNODE" --data "$WORK/F" ls 2>&1)"
staged=$(du -sb "$WORK/F/staging" | cut -f1)
check "the failed pull left staged bytes to resume from" 1 "$([[ $staged -gt 1000000 ]] && echo 1 || echo 0)"
start A "$WORK/A"
"$HUBNODE" --data "$WORK/F" -q pull org/model --from "$URL_A" > /dev/null
"$HUBNODE" --data "$WORK/F" -q export org/model "$WORK/f-out" > /dev/null
check "the resumed pull is byte-exact" "" "$(diff -r "$WORK/m" "$WORK/f-out")"
check "staging is cleaned after success" "" "$(ls "$WORK/F/staging")"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
