#!/usr/bin/env bash
# GET /api/models/{repo}/peers: which peers hold what of a partly held model. An origin A holds an
# OLMoE-shaped model (public org/moe, private acme/secret); node B pulled both with --experts 0:1
# and serves with --peer A. Expert 0:1 is local on B and every other expert "peer" once A trusts
# B's node key ("missing" before: A would not serve B's readers); A stopped, the rest is
# "missing" and A unreachable, within the timeout; a node without peers answers local/missing;
# an anonymous caller of a private repo is answered as for a missing one and A is never asked;
# answers are cached; hostile peers (garbage, wrong repo/commit/counts, oversized bitmaps or
# bodies, a hang) are errors beside a good peer, and the node stays up. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; [[ -n "${KEEP:-}" ]] || rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
PY=/usr/bin/python3
node() { local d=$1; shift; "$HUBNODE" --data "$WORK/$d" -q "$@"; }
serve() {  # serve NAME [FLAGS...] -> sets URL and SPID
  local name=$1
  shift
  "$HUBNODE" --data "$WORK/$name" serve --listen 127.0.0.1:0 --no-inference "$@" > "$WORK/$name.out" 2>> "$WORK/$name.err" &
  SPID=$!
  PIDS+=($SPID)
  for _ in $(seq 600); do grep -q serving "$WORK/$name.out" && break; sleep 0.05; done
  URL=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/$name.out")
}
stop() { kill "$1"; wait "$1" 2>/dev/null; }
jq_py() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# The state of every expert but 0:1, as a set.
others() { jq_py 'sorted(set(e[2] for e in d["experts"] if (e[0], e[1]) != (0, 1)))'; }
have_requests() { grep -c "GET /api/peer/v1/have/$1" "$WORK/a.err"; }

node a testmodel --family olmoe --size small --seed 21 --out "$WORK/model" > /dev/null
node a import "$WORK/model" --repo org/moe > /dev/null
node a import "$WORK/model" --repo acme/secret > /dev/null
node a node-key > "$WORK/a.pub"
serve a; A=$URL; APID=$SPID
A_SHA=$(curl -s "$A/api/models/org/moe" | jq_py 'd["sha"]')

node b trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node b pull org/moe --from "$A" --experts 0:1 > /dev/null 2>&1
check "partial pull of org/moe" 0 "$?"
node b pull acme/secret --from "$A" --experts 0:1 > /dev/null 2>&1
check "partial pull of acme/secret" 0 "$?"
# acme/secret turns private, on both nodes (a partial pull of a private repo is not the point here).
stop "$APID"
node a repo visibility acme/secret private > /dev/null
node b repo visibility acme/secret private > /dev/null
serve a; A=$URL; APID=$SPID
node b node-key > "$WORK/b.pub"
BTOK=$(node b token create --name acme-reader --scope read --namespace acme)

# A does not trust B yet: A answers (org/moe is public) but would not serve B's readers.
serve b --peer "$A"; B=$URL; BPID=$SPID
OUT=$(curl -s -w '\n%{http_code}' "$B/api/models/org/moe/peers")
check "untrusted: 200" 200 "$(tail -1 <<< "$OUT")"
OUT=$(head -n -1 <<< "$OUT")
check "untrusted: the peer is reachable, holds all, does not trust B" "True True False None" \
  "$(jq_py '[(p["reachable"], p["heldChunks"] == p["totalChunks"] > 0, p["trusted"], p.get("error")) for p in d["peers"]][0]' <<< "$OUT" | tr -d '(),')"
check "untrusted: the peer's commit is A's" "$A_SHA" "$(jq_py 'd["peers"][0]["commit"]' <<< "$OUT")"
check "untrusted: expert 0:1 local" local "$(jq_py '[e[2] for e in d["experts"] if e[0] == 0 and e[1] == 1][0]' <<< "$OUT")"
check "untrusted: the rest missing" "['missing']" "$(others <<< "$OUT")"
OUT=$(curl -s -H "Authorization: Bearer $BTOK" "$B/api/models/acme/secret/peers")
check "untrusted, private repo: A shows B nothing, no error" "True None None" \
  "$(jq_py 'd["peers"][0]["reachable"], d["peers"][0]["commit"], d["peers"][0].get("error")' <<< "$OUT" | tr -d '(),')"
check "untrusted, private repo: the rest missing" "['missing']" "$(others <<< "$OUT")"
stop "$BPID"

node a trust add-node-key --key "$WORK/b.pub" --name mirror-b > /dev/null
serve b --peer "$A"; B=$URL; BPID=$SPID
BEFORE=$(have_requests org/moe)
OUT=$(curl -s "$B/api/models/org/moe/peers")
check "trusted: commit is B's" "$(curl -s "$B/api/models/org/moe" | jq_py 'd["sha"]')" "$(jq_py 'd["commit"]' <<< "$OUT")"
check "trusted: A trusts B" True "$(jq_py 'd["peers"][0]["trusted"]' <<< "$OUT")"
check "trusted: expert 0:1 local" local "$(jq_py '[e[2] for e in d["experts"] if e[0] == 0 and e[1] == 1][0]' <<< "$OUT")"
check "trusted: every other expert on a peer" "['peer']" "$(others <<< "$OUT")"
check "trusted: counts" True "$(jq_py 'd["expertCounts"]["local"] == 1 and d["expertCounts"]["missing"] == 0 and d["expertCounts"]["peer"] == len(d["experts"]) - 1' <<< "$OUT")"
INFO=$(curl -s "$B/api/models/org/moe")
check "trusted: A fills exactly what B lacks" True "$($PY -c "
import json, sys
info, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])['peers'][0]
loc = info['locality']
print(p['fillBytes'] == loc['bytes'] - loc['localBytes'] > 0 and
      {f['path']: f['size'] for f in loc['files']} == {f['path']: f['heldBytes'] for f in p['files']})" "$INFO" "$OUT")"
curl -s -o /dev/null "$B/api/models/org/moe/peers"
curl -s -o /dev/null "$B/api/models/org/moe/peers/main"
check "repeated loads within 10 s ask A once" 1 "$(($(have_requests org/moe) - BEFORE))"

# Private repo: the anonymous caller learns nothing, and A is not asked.
ASKED=$(have_requests acme/secret)
ANON=$(curl -s -o /dev/null -w '%{http_code}' "$B/api/models/acme/secret/peers")
check "private, anonymous: as a missing repo" "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/models/acme/nothing/peers")" "$ANON"
check "private, anonymous: as repo info" "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/models/acme/secret")" "$ANON"
check "private, anonymous: RepoNotFound" RepoNotFound \
  "$(curl -s -D - -o /dev/null "$B/api/models/acme/secret/peers" | grep -i '^X-Error-Code' | tr -d '\r' | cut -d' ' -f2)"
check "private, anonymous: A got no have request" "$ASKED" "$(have_requests acme/secret)"
OUT=$(curl -s -H "Authorization: Bearer $BTOK" "$B/api/models/acme/secret/peers")
check "private, reader: A answers B's signed request" "True None" "$(jq_py 'd["peers"][0]["trusted"], d["peers"][0].get("error")' <<< "$OUT" | tr -d '(),')"
check "private, reader: every other expert on a peer" "['peer']" "$(others <<< "$OUT")"
check "private, reader: A was asked" True "$([[ $(have_requests acme/secret) -gt $ASKED ]] && echo True)"
stop "$BPID"

# Without peers: local or missing, nobody asked.
serve b; B=$URL; BPID=$SPID
OUT=$(curl -s "$B/api/models/org/moe/peers")
check "no peers: empty peer list" "[]" "$(jq_py 'd["peers"]' <<< "$OUT")"
check "no peers: expert 0:1 local" local "$(jq_py '[e[2] for e in d["experts"] if e[0] == 0 and e[1] == 1][0]' <<< "$OUT")"
check "no peers: the rest missing" "['missing']" "$(others <<< "$OUT")"
check "no peers: a revision by name" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/models/org/moe/peers/main")"
check "no peers: an unknown revision" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$B/api/models/org/moe/peers/nope")"
stop "$BPID"

# A sibling C that pulled expert 0:2 from A under a commit of its own answers for A's commit id
# (by its Mirrored-From trailer): 0:2 is on a peer, the rest missing; with A too, all on peers.
node c trust add-node-key --key "$WORK/a.pub" --name origin > /dev/null
node c pull org/moe --from "$A" --experts 0:2 > /dev/null 2>&1
check "partial pull of expert 0:2 on C" 0 "$?"
node c trust add-node-key --key "$WORK/b.pub" --name mirror-b > /dev/null
serve c; C=$URL; CPID=$SPID
serve b --peer "$C"; B=$URL; BPID=$SPID
OUT=$(curl -s "$B/api/models/org/moe/peers")
check "sibling: C's own commit, mirroring A's" True \
  "$(jq_py 'd["peers"][0]["commit"] not in (None, "'"$A_SHA"'", d["commit"]) and "error" not in d["peers"][0]' <<< "$OUT")"
check "sibling: 0:1 local, 0:2 on a peer, the rest missing" "local peer ['missing']" \
  "$(jq_py '[e[2] for e in d["experts"] if e[:2] == [0, 1]][0], [e[2] for e in d["experts"] if e[:2] == [0, 2]][0], sorted(set(e[2] for e in d["experts"] if e[:2] not in ([0, 1], [0, 2])))' <<< "$OUT" | tr -d '(),')"
stop "$BPID"
serve b --peer "$C" --peer "$A"; B=$URL; BPID=$SPID
check "sibling and origin: every other expert on a peer" "['peer']" "$(curl -s "$B/api/models/org/moe/peers" | others)"
stop "$BPID"
stop "$CPID"

# Hostile peers beside A: each one an error, A unaffected, the answer within the timeout.
MODES="garbage deep wrongrepo wrongcommit wrongcount bigbitmap missingfile badcounts huge hang status500"
$PY "$(dirname "$0")/hostile_have_peer.py" "$A" "$WORK/ports" "$WORK/hostile.log" $MODES &
HPID=$!
PIDS+=($HPID)
for _ in $(seq 100); do [[ -f "$WORK/ports" ]] && break; sleep 0.05; done
FLAGS=(--peer "$A")
while read -r mode port; do FLAGS+=(--peer "http://127.0.0.1:$port"); done < "$WORK/ports"
serve b "${FLAGS[@]}"; B=$URL; BPID=$SPID
# Four page loads at once: one query to each peer, the others wait for it.
CURLS=()
for k in 1 2 3; do
  curl -s -m 30 -o "$WORK/concurrent.$k" -w '%{http_code}' "$B/api/models/org/moe/peers" > "$WORK/status.$k" &
  CURLS+=($!)
done
OUT=$(curl -s -m 30 -w '\n%{http_code} %{time_total}' -H "Authorization: Bearer $BTOK" "$B/api/models/org/moe/peers")
wait "${CURLS[@]}"
STATUS=$(tail -1 <<< "$OUT")
OUT=$(head -n -1 <<< "$OUT")
check "hostile: 200" 200 "${STATUS% *}"
check "hostile: concurrent loads all 200" "200200200" "$(cat "$WORK"/status.{1,2,3})"
check "hostile: concurrent loads ask each peer once" "1 1" "$(grep -c '^hang ' "$WORK/hostile.log") $(grep -c '^garbage ' "$WORK/hostile.log")"
check "hostile: answered within the timeout" True "$($PY -c "print(${STATUS#* } < 6)")"
check "hostile: A still good" "True None" "$(jq_py 'd["peers"][0]["trusted"], d["peers"][0].get("error")' <<< "$OUT" | tr -d '(),')"
check "hostile: every other expert still on a peer" "['peer']" "$(others <<< "$OUT")"
i=1
for mode in $MODES; do
  check "hostile $mode: an error, nothing held" "True 0 None" \
    "$(jq_py "[('error' in p, p['heldChunks'], p['commit']) for p in d['peers']][$i]" <<< "$OUT" | tr -d '(),')"
  i=$((i + 1))
done
check "hostile huge: capped" True "$(jq_py "'over' in d['peers'][9]['error']" <<< "$OUT")"
check "hostile hang: timed out" True "$(jq_py "'no answer within' in d['peers'][10]['error'] and not d['peers'][10]['reachable']" <<< "$OUT")"
check "hostile: peers never see the caller's token" 0 "$(grep -c 'auth=yes' "$WORK/hostile.log")"
check "hostile: every request signed" 0 "$(grep -c 'signed=no' "$WORK/hostile.log")"
check "hostile: the node stays up" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$B/health")"
stop "$BPID"
stop "$HPID"

# A down: unreachable within the timeout, the rest missing.
stop "$APID"
serve b --peer "$A"; B=$URL; BPID=$SPID
OUT=$(curl -s -m 30 -w '\n%{http_code} %{time_total}' "$B/api/models/org/moe/peers")
STATUS=$(tail -1 <<< "$OUT")
OUT=$(head -n -1 <<< "$OUT")
check "A down: 200" 200 "${STATUS% *}"
check "A down: within the timeout" True "$($PY -c "print(${STATUS#* } < 5)")"
check "A down: unreachable, with an error" "False True" "$(jq_py 'd["peers"][0]["reachable"], "error" in d["peers"][0]' <<< "$OUT" | tr -d '(),')"
check "A down: expert 0:1 local" local "$(jq_py '[e[2] for e in d["experts"] if e[0] == 0 and e[1] == 1][0]' <<< "$OUT")"
check "A down: the rest missing" "['missing']" "$(others <<< "$OUT")"
stop "$BPID"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
