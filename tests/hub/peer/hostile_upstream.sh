#!/usr/bin/env bash
# The mirror and peer clients survive a hostile upstream and peer (issue 13, "also"): every
# answer of tests/hub/peer/hostile_upstream.py attacks them (deep or huge JSON, too many files,
# paths that escape or overflow, a billion-laughs card, safetensors headers over the limits, bytes
# that lie, a trickling transfer, a peer catalog that is a bomb and chunks of noise). Each pull
# ends with a clear error (or, for the card, a hold for review), within bounded memory, and the
# store holds nothing of it. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
EPID=
trap '[[ -n "$EPID" ]] && kill -9 "$EPID" 2>/dev/null; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
PY=/usr/bin/python3
PORT=$($PY -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
$PY "$(dirname "$0")/hostile_upstream.py" "$PORT" 2> /dev/null &
EPID=$!
EVIL=http://127.0.0.1:$PORT
for _ in $(seq 100); do curl -s -o /dev/null "$EVIL/x" && break; sleep 0.1; done

pull() {  # pull MODE [FLAGS]: "exit-code peak-RSS-MiB", the error in $WORK/MODE.err
  local mode=$1; shift
  /usr/bin/time -f "%x %M" -o "$WORK/$mode.time" timeout 120 "$HUBNODE" --data "$WORK/data" pull "evil/$mode" \
    --from "$EVIL" "$@" > /dev/null 2> "$WORK/$mode.err"
  tail -1 "$WORK/$mode.time" | awk '{ printf "%s %d", $1, $2 / 1024 }'
}
refused() {  # refused MODE PATTERN [FLAGS]
  local mode=$1 pattern=$2; shift 2
  read -r code rss < <(pull "$mode" "$@")
  check "$mode: refused (exit 1)" 1 "$code"
  check "$mode: says why" True "$(grep -qiE "$pattern" "$WORK/$mode.err" && echo True || (tail -2 "$WORK/$mode.err" >&2; echo False))"
  check "$mode: memory bounded (<400 MiB)" True "$([[ $rss -lt 400 ]] && echo True || echo "False ($rss MiB)")"
}
refused deep-json "no sha|not"
refused huge-json "larger than"
refused many-files "more than 100000 files|larger than"
refused dotdot "bad path"
refused long-path "bad path"
refused st-tensors "more than 1000000 tensors|header"
refused st-deep "safetensors|header"
refused st-length "header length"
refused lying "digest|size|match|short"
refused slow "timed out|too slow|Operation|transfer" 
read -r code rss < <(pull laughs)
check "laughs: the card is refused, the model held for review" True "$(grep -qi 'aliases\|review' "$WORK/laughs.err" && echo True || (tail -2 "$WORK/laughs.err" >&2; echo False))"
check "laughs: memory bounded (<400 MiB)" True "$([[ $rss -lt 400 ]] && echo True || echo "False ($rss MiB)")"
# A peer whose catalog is a bomb and whose chunks are noise: the pull falls back to the upstream.
"$HUBNODE" --data "$WORK/ok" -q testmodel --family olmoe --size tiny --out "$WORK/m" > /dev/null
"$HUBNODE" --data "$WORK/ok" -q import "$WORK/m" --repo org/m > /dev/null
"$HUBNODE" --data "$WORK/ok" serve --listen 127.0.0.1:0 --no-inference > "$WORK/ok.out" 2> /dev/null &
OKPID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/ok.out" && break; sleep 0.05; done
OK=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/ok.out")
/usr/bin/time -f "%x %M" -o "$WORK/peer.time" "$HUBNODE" --data "$WORK/data" pull org/m --from "$OK" --peer "$EVIL" \
  > /dev/null 2> "$WORK/peer.err"
read -r code rss < <(tail -1 "$WORK/peer.time")
check "a hostile peer: the pull completes from the upstream" 0 "$code"
check "a hostile peer: memory bounded (<400 MiB)" True "$([[ $((rss / 1024)) -lt 400 ]] && echo True)"
kill "$OKPID"; wait "$OKPID" 2>/dev/null
check "nothing of the hostile repos was kept (the laughs only held for review)" "evil/laughs org/m" \
  "$("$HUBNODE" --data "$WORK/data" -q ls | awk '{print $1}' | sort | tr '\n' ' ' | sed 's/ $//')"
check "... and nothing of it is served" 0 "$("$HUBNODE" --data "$WORK/data" -q refs evil/laughs | grep -c 'refs/heads')"
check "no crash in any of it" 0 "$(cat "$WORK"/*.err | grep -c 'Assertion\|Segmentation\|Aborted\|terminate called')"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
