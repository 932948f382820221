#!/usr/bin/env bash
# Policy enforcement end to end: import refuses denied licenses and bad signatures, holds what
# needs review until `approve`, derivative rules against a base on the node, the served trust
# status, and pull-through refusing what the policy denies. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT
cd "$WORK"
has() { [[ "$2" == *"$3"* ]] && check "$1" 1 1 || check "$1" "$3" "$2"; }
hub() { "$HUBNODE" --data data -q "$@"; }
serve() {  # serve NAME DATA [flags]
  local name=$1 data=$2; shift 2
  "$HUBNODE" --data "$data" serve --listen 127.0.0.1:0 "$@" > "$name.out" 2> "$name.err" &
  PIDS+=($!)
  for _ in $(seq 600); do grep -q serving "$name.out" && break; sleep 0.05; done
  eval "URL_$name=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$name.out")"
  eval "PID_$name=$!"
}

# Licenses at import.
hub testmodel --out nc --license cc-by-nc-4.0 --seed 2 2> /dev/null
out=$(hub import nc --repo lab/nc 2>&1); code=$?
check "non-commercial import refused" 1 "$code"
has "refusal names the license and the rule" "$out" "CC-BY-NC-4.0 (non-commercial): deny by policy for class non-commercial"
check "nothing stored for the refused import" "" "$(hub ls)"
hub testmodel --out gpl --license gpl-3.0 --seed 3
out=$(hub import gpl --repo lab/gpl 2>&1)
has "copyleft import is held for review" "$out" "held for review"
check "the held commit is on refs/held/main only" "refs/held/main" "$(hub refs lab/gpl | awk '{print $2}')"
commit=$(hub refs lab/gpl | awk '{print $1}')
check "a held commit does not resolve" 1 "$(hub ls lab/gpl@$commit > /dev/null 2>&1; echo $?)"
hub approve lab/gpl@$commit > /dev/null
check "approve releases it onto main" "refs/heads/main" "$(hub refs lab/gpl | awk '{print $2}')"

# The policy is configurable per class, per license id and per namespace.
hub trust policy --namespace free --class strong-copyleft --verdict allow
out=$(hub import gpl --repo free/gpl2 2>&1)
has "a namespace's policy allows what the default holds" "$out" "committed free/gpl2@"
out=$(hub import gpl --repo lab/gpl3 2>&1)
has "other namespaces keep the default" "$out" "held for review"
hub trust policy --id cc-by-nc-4.0 --verdict review
out=$(hub import nc --repo lab/nc2 2>&1)
has "an id override wins over its class" "$out" "held for review"
has "trust list shows the policy" "$(hub trust list)" "policy free: class strong-copyleft -> allow"

# Derivatives: an apache-2.0 fine-tune of a non-commercial base held on this node.
hub testmodel --out ft --finetune-of gpl --base-model lab/gpl --license apache-2.0 > /dev/null
out=$(hub import ft --repo lab/ft 2>&1)
has "a permissive fine-tune of a share-alike base is held" "$out" "share-alike: derivatives must use the same license"
hub testmodel --out ft2 --finetune-of nc --base-model lab/nc --license apache-2.0 > /dev/null 2>&1
out=$("$HUBNODE" --data data -q license check ft2 --base-license CC-BY-NC-4.0 2>&1); code=$?
check "license check: NC base + apache fine-tune is deny (exit 4)" 4 "$code"
has "license check names the rule" "$out" "must keep the non-commercial limit"

# Signatures: required for namespace 'sig'.
hub keygen --out alice > /dev/null
hub keygen --out mallory > /dev/null
hub keygen --out old > /dev/null
hub trust add-key sig --key alice.pub --name alice > /dev/null
hub trust add-key sig --key old.pub --name old --expires 1000 > /dev/null
hub trust require-signature sig
hub testmodel --out s --seed 7
out=$(hub import s --repo sig/unsigned 2>&1)
has "unsigned model refused where a signature is required" "$out" "signature required for namespace 'sig': the model has no model.sig"
hub sign s --key alice > /dev/null
out=$(hub import s --repo sig/signed 2>&1)
has "signed model accepted" "$out" "committed sig/signed@"
echo "tampered" >> s/config.json
out=$(hub import s --repo sig/tampered 2>&1)
has "tampered model refused, file named" "$out" "digest mismatch: config.json"
hub testmodel --out s2 --seed 8
hub sign s2 --key mallory > /dev/null
out=$(hub import s2 --repo sig/mallory 2>&1)
has "untrusted key refused" "$out" "no trusted key for namespace 'sig'"
rm s2/model.sig && hub sign s2 --key old > /dev/null
out=$(hub import s2 --repo sig/expired 2>&1)
has "expired key refused" "$out" "expired"
rm s2/model.sig && hub sign s2 --key alice > /dev/null
hub trust revoke alice
out=$(hub import s2 --repo sig/revoked 2>&1)
has "revoked key refused" "$out" "was revoked"

# Served trust status.
serve A data
j=$(curl -s "$URL_A/api/models/sig/signed/trust")
has "trust route: signature status" "$j" '"status":"untrusted"'
has "trust route: license class" "$j" '"class":"permissive"'
info=$(curl -s "$URL_A/api/models/lab/gpl")
has "repo info carries the license class" "$info" '"licenseClass":"strong-copyleft"'
kill -TERM "$PID_A"; wait "$PID_A" 2>/dev/null

# Pull-through refuses what this node's policy denies: the upstream serves an unsigned model, the
# mirror requires signatures for its namespace.
hub testmodel --out up --seed 9
"$HUBNODE" --data upstream -q import up --repo lab2/m > /dev/null
"$HUBNODE" --data mirror -q trust require-signature lab2
serve U upstream
serve B mirror --upstream "$URL_U"
hdr=$(curl -s -D - -o "$WORK/b.body" "$URL_B/lab2/m/resolve/main/config.json" | tr -d '\r')
check "pull-through of a refused model: 451 PolicyRefused" "451 PolicyRefused" \
  "$(echo "$hdr" | head -1 | cut -d' ' -f2) $(echo "$hdr" | grep -i '^x-error-code' | cut -d' ' -f2)"
has "the refusal names the rule" "$(cat "$WORK/b.body")" "signature required for namespace 'lab2'"
kill -TERM "$PID_B"; wait "$PID_B" 2>/dev/null
check "nothing visible at the mirror" "" "$("$HUBNODE" --data mirror ls 2>&1)"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
