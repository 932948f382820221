#!/usr/bin/env bash
# Pulling with peers, several processes on 127.0.0.1: an origin node A, a node B that mirrors it,
# misbehaving peers (tests/hub/peer/throttled_peer.py: one serves corrupted chunks, one is slow, one is
# killed mid-transfer), and puller nodes. With A's node key trusted, LFS
# files come chunk by chunk from the peers, every chunk checked against A's signed chunk map: the
# bad peer is demoted and its chunks fetched elsewhere, dead peers are skipped, the result is
# byte-exact. An untrusted map is refused (files then come whole from the upstream). With every
# peer and the upstream down, the pull fails clearly and stores nothing. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
PY=/usr/bin/python3
node() { local d=$1; shift; "$HUBNODE" --data "$WORK/$d" -q "$@"; }
serve() {  # serve NAME [FLAGS...] -> sets URL
  local name=$1
  shift
  "$HUBNODE" --data "$WORK/$name" serve --listen 127.0.0.1:0 --no-inference "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
  PIDS+=($!)
  for _ in $(seq 600); do grep -q serving "$WORK/$name.out" && break; sleep 0.05; done
  URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")
}
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

node a testmodel --family olmoe --size small --seed 11 --out "$WORK/model" > /dev/null
node a import "$WORK/model" --repo org/moe > /dev/null
serve a; A=$URL
node b pull org/moe --from "$A" > /dev/null
serve b --peer "$A"; B=$URL  # B's catalog lists A
node a node-key > "$WORK/a.pub"

# C: a peer that answers every chunk with corrupted bytes.
HERE=$(cd "$(dirname "$0")" && pwd)
CPORT=$(free_port)
$PY "$HERE/throttled_peer.py" "$CPORT" "$A" corrupt > /dev/null 2>&1 &
PIDS+=($!)
C=http://127.0.0.1:$CPORT
DEAD=http://127.0.0.1:$(free_port)
for _ in $(seq 50); do curl -s -o /dev/null "$C/x" && break; sleep 0.1; done

# D trusts A's node key: chunks from the peers, the bad one demoted, the dead one skipped.
node d trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node d pull org/moe --from "$A" --peer "$C" --peer "$DEAD" --peer "$B" --peer-stats > "$WORK/d.out" 2> "$WORK/d.err"
check "pull with peers" 0 "$?"
check "bad peer demoted" True "$(grep -q "peer $C: 0 chunks, 0 bytes, 0 failures, [1-9][0-9]* bad chunks, demoted" "$WORK/d.out" && echo True)"
check "dead peer demoted" True "$(grep -q "peer $DEAD: 0 chunks.*demoted" "$WORK/d.out" && echo True)"
check "good peer delivered" True "$(grep -Eq "peer $B: [1-9][0-9]* chunks" "$WORK/d.out" && echo True)"
node d export org/moe "$WORK/d-export" > /dev/null
check "byte-exact" "" "$(diff -r "$WORK/model" "$WORK/d-export")"

# E does not trust A's key: the map is refused, files come whole from the upstream.
"$HUBNODE" --data "$WORK/e" pull org/moe --from "$A" --peer "$B" --peer-stats > "$WORK/e.out" 2> "$WORK/e.err"
check "untrusted map: pull still works" 0 "$?"
check "untrusted map refused" True "$(grep -q 'chunk map .* refused' "$WORK/e.err" && echo True)"
check "untrusted map: no chunks from peers" True "$(grep -q "peer $B: 0 chunks" "$WORK/e.out" && echo True)"

# F trusts A, but every peer is down: each chunk comes from the upstream as an HTTP Range,
# checked against the map; the result is byte-exact.
node f trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
"$HUBNODE" --data "$WORK/f" pull org/moe --from "$A" --peer "$DEAD" --peer-stats > "$WORK/f.out" 2> "$WORK/f.err"
check "peers down: upstream fallback by range" "0 True" "$? $(grep -q 'came from the upstream by range' "$WORK/f.err" && echo True)"
node f export org/moe "$WORK/f-export" > /dev/null
check "peers down: byte-exact" "" "$(diff -r "$WORK/model" "$WORK/f-export")"

# G: peers and upstream down: a clear error, nothing stored.
node g trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node g pull org/moe --from "$DEAD" --peer "$DEAD" > /dev/null 2> "$WORK/g.err"
check "all down: fails" 1 "$?"
check "all down: says unavailable" True "$(grep -Eq 'Unavailable|DeadlineExceeded' "$WORK/g.err" && echo True)"
check "all down: nothing stored" "" "$(node g ls 2>/dev/null)"

# H: a slow peer (1 KiB/s) is timed out and demoted, and its chunks come from the upstream. It is
# the only peer, so every chunk is asked of it first whatever the machine's load (with a fast
# peer beside it, a busy machine could finish from the fast one before the slow one timed out).
SPORT=$(free_port)
$PY "$HERE/throttled_peer.py" "$SPORT" "$A" 1024 > /dev/null 2>&1 &
PIDS+=($!)
S=http://127.0.0.1:$SPORT
for _ in $(seq 50); do curl -s -o /dev/null "$S/x" && break; sleep 0.1; done
node h trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node h pull org/moe --from "$A" --peer "$S" --peer-stats > "$WORK/h.out" 2> "$WORK/h.err"
check "slow peer: pull completes" 0 "$?"
check "slow peer timed out and demoted" True "$(grep -Eq "peer $S: [0-9]+ chunks, [0-9]+ bytes, [1-9][0-9]* failures.*demoted" "$WORK/h.out" && echo True)"
node h export org/moe "$WORK/h-export" > /dev/null
check "slow peer: byte-exact" "" "$(diff -r "$WORK/model" "$WORK/h-export")"

# I: a peer killed mid-transfer (50 KB/s, killed after a second): its chunks come from the others.
KPORT=$(free_port)
$PY "$HERE/throttled_peer.py" "$KPORT" "$A" 51200 > /dev/null 2>&1 &
KPID=$!
PIDS+=($KPID)
K=http://127.0.0.1:$KPORT
for _ in $(seq 50); do curl -s -o /dev/null "$K/x" && break; sleep 0.1; done
node i trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
(sleep 1; kill -9 "$KPID") &
node i pull org/moe --from "$A" --peer "$K" --peer "$B" --peer-stats > "$WORK/i.out" 2> "$WORK/i.err"
check "killed peer: pull completes" 0 "$?"
check "killed peer: its transfers failed" True "$(grep -Eq "peer $K: [0-9]+ chunks, [0-9]+ bytes, [1-9]" "$WORK/i.out" && echo True)"
node i export org/moe "$WORK/i-export" > /dev/null
check "killed peer: byte-exact" "" "$(diff -r "$WORK/model" "$WORK/i-export")"

# J names only B as a peer; it learns A from B's catalog and fetches from both.
node j trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
"$HUBNODE" --data "$WORK/j" pull org/moe --from "$A" --peer "$B" --peer-stats > "$WORK/j.out" 2> "$WORK/j.err"
check "peer learned from a catalog" "0 True True" "$? $(grep -q "learned peer $A" "$WORK/j.err" && echo True) $(grep -Eq "peer $A: [1-9]" "$WORK/j.out" && echo True)"

for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
