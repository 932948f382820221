#!/usr/bin/env bash
# `hubnode follow`: a node replicates new commits of a branch from an origin hubnode as they
# appear (through peers and a trusted chunk map when available), and keeps going when the origin
# is briefly down. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
node() { local d=$1; shift; "$HUBNODE" --data "$WORK/$d" -q "$@"; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
A=http://127.0.0.1:$PORT
serve_a() {
  "$HUBNODE" --data "$WORK/a" serve --listen "127.0.0.1:$PORT" --no-inference > "$WORK/a.out" 2> "$WORK/a.err" &
  APID=$!
  PIDS+=($APID)
  for _ in $(seq 100); do curl -s -o /dev/null "$A/health" && break; sleep 0.05; done
}
wait_for() {  # wait_for FILE PATTERN COUNT
  for _ in $(seq 200); do [[ $(grep -c "$2" "$1" 2>/dev/null) -ge $3 ]] && return 0; sleep 0.1; done
  return 1
}

node a testmodel --family olmoe --size small --seed 31 --out "$WORK/v1" > /dev/null
node a testmodel --finetune-of "$WORK/v1" --base-model org/moe --change fraction:0.1 --out "$WORK/v2" > /dev/null
node a import "$WORK/v1" --repo org/moe > /dev/null
node a node-key > "$WORK/a.pub"
serve_a
node f trust add-node-key --key "$WORK/a.pub" --name a > /dev/null
"$HUBNODE" --data "$WORK/f" -q follow org/moe --from "$A" --peer "$A" --interval 0.3 > "$WORK/follow.out" 2> "$WORK/follow.err" &
FPID=$!
PIDS+=($FPID)
wait_for "$WORK/follow.out" "org/moe@main" 1
check "first commit replicated" 1 "$(grep -c 'org/moe@main' "$WORK/follow.out")"

# The origin goes down, gets a new commit, comes back on the same address.
kill "$APID"; wait "$APID" 2>/dev/null
node a import "$WORK/v2" --repo org/moe -m "fine-tune" > /dev/null
sleep 1
serve_a
wait_for "$WORK/follow.out" "^updated org/moe@main" 2
check "new commit replicated" 2 "$(grep -c 'org/moe@main' "$WORK/follow.out")"
check "origin downtime tolerated" True "$(grep -q 'follow org/moe@main' "$WORK/follow.err" && echo True)"
kill "$FPID"; wait "$FPID" 2>/dev/null
kill "$APID"; wait "$APID" 2>/dev/null
node f export org/moe "$WORK/f-export" > /dev/null
check "follower holds the new commit byte-exact" "" "$(diff -r "$WORK/v2" "$WORK/f-export")"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
