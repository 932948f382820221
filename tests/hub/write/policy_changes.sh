#!/usr/bin/env bash
# What is served follows the policy as it is now (issue 13, item 5): a move into a namespace that
# requires signatures or refuses the license, a visibility change, and a new branch or tag re-run
# the policy; a revision denied by a policy set after it was committed is not downloaded (451),
# neither its files nor its chunk map; an empty branch needs no verdict. Against a real
# `hubnode serve` on 127.0.0.1. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
R=$WORK/r
call() { curl -s -o "$R.body" -D "$R.h" -w '%{http_code}' "$@"; }
hdr() { grep -i "^$1:" "$R.h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
JSON="Content-Type: application/json"

hub testmodel --family olmoe --size tiny --seed 3 --out "$WORK/m" > /dev/null
TA=$(hub token create --name a --scope write --namespace a)
TB=$(hub token create --name b --scope write --namespace b)
AW="Authorization: Bearer $TA"
hub trust require-signature signed > /dev/null
TS=$(hub token create --name s --scope write --namespace signed)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")

"$HUBNODE" -q push "$WORK/m" a/model --to "$U" --token "$TA" > /dev/null 2>&1
check "an apache-2.0 model in a" 200 "$(call "$U/a/model/resolve/main/config.json")"

# A move into a namespace that requires signatures: the unsigned model would be denied there.
ALL=$(hub token create --name all --scope write)
check "move into a signed namespace: refused" "403 PolicyRefused" "$(call -H "Authorization: Bearer $ALL" -H "$JSON" -d '{"fromRepo":"a/model","toRepo":"signed/model"}' "$U/api/repos/move") $(hdr X-Error-Code)"
check "the refusal says why" True "$(grep -q 'signature' "$R.body" && echo True)"
check "refused move: still at a/model" 200 "$(call "$U/a/model/resolve/main/config.json")"
check "refused move: nothing at signed/model" 401 "$(call "$U/api/models/signed/model")"
check "move within the policy: allowed" 200 "$(call -H "$AW" -H "$JSON" -d '{"fromRepo":"a/model","toRepo":"a/renamed"}' "$U/api/repos/move")"

# A policy set after the commit denies it: downloads stop (451), the chunk map too; a new branch
# or tag at it is refused; a visibility change is refused. Metadata still answers (it says why).
hub trust policy --namespace a --id apache-2.0 --verdict deny > /dev/null
check "download of a revision denied now: 451" "451 PolicyRefused" "$(call "$U/a/renamed/resolve/main/config.json") $(hdr X-Error-Code)"
check "HEAD too" 451 "$(curl -s -o /dev/null -I -w '%{http_code}' "$U/a/renamed/resolve/main/config.json")"
check "the 451 names the rule" True "$(grep -qi 'apache-2.0' "$R.body" && echo True)"
check "chunk map of a denied revision: 451" 451 "$(call "$U/api/models/a/renamed/chunk-map/main")"
check "peer chunks of a denied revision: 451" 451 "$(curl -s -o /dev/null -w '%{http_code}' -H "$JSON" -d '{"ids": [], "repo": "a/renamed"}' "$U/api/peer/v1/chunks")"
check "repo info still answers" 200 "$(call "$U/api/models/a/renamed")"
check "trust report says deny" deny "$(curl -s "$U/api/models/a/renamed/trust" | $PY -c 'import json,sys; print(json.load(sys.stdin)["verdict"])')"
check "branch at a denied revision: refused" "403 PolicyRefused" "$(call -H "$AW" -H "$JSON" -d '{}' "$U/api/models/a/renamed/branch/copy") $(hdr X-Error-Code)"
check "tag at a denied revision: refused" 403 "$(call -H "$AW" -H "$JSON" -d '{"tag":"v1"}' "$U/api/models/a/renamed/tag/main")"
check "refused branch: absent" 404 "$(call "$U/api/models/a/renamed/revision/copy")"
check "an empty branch needs no verdict" 200 "$(call -H "$AW" -H "$JSON" -d '{"emptyBranch":true}' "$U/api/models/a/renamed/branch/empty")"
check "making it private: refused" "403 PolicyRefused" "$(call -X PUT -H "$AW" -H "$JSON" -d '{"private":true}' "$U/api/models/a/renamed/settings") $(hdr X-Error-Code)"
check "refused settings: still public" False "$(curl -s "$U/api/models/a/renamed" | $PY -c 'import json,sys; print(json.load(sys.stdin)["private"])')"

# The policy lifted: served again at once (the verdict cache follows the trust store).
hub trust policy --namespace a --id apache-2.0 --verdict allow > /dev/null
check "policy lifted: downloads again" 200 "$(call "$U/a/renamed/resolve/main/config.json")"
check "policy lifted: a branch" 200 "$(call -H "$AW" -H "$JSON" -d '{}' "$U/api/models/a/renamed/branch/copy")"
check "policy lifted: private" 200 "$(call -X PUT -H "$AW" -H "$JSON" -d '{"private":true}' "$U/api/models/a/renamed/settings")"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
