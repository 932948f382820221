#!/usr/bin/env bash
# A base model the caller may not read is absent for that caller (issue 13, item 4): the trust
# report of a public fine-tune, the refusal of a commit and the lineage never reveal that a private
# base exists or quote its license, while a reader of the base sees the derivative rule. Against a
# real `hubnode serve` on 127.0.0.1. Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
PY=/usr/bin/python3
jq_() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# acme/base: private, non-commercial (allowed in acme). other/ft names it as its base under
# apache-2.0; other/ghost names a base that does not exist at all.
hub trust policy --namespace acme --class non-commercial --verdict allow > /dev/null
hub testmodel --family olmoe --size tiny --seed 7 --license cc-by-nc-4.0 --out "$WORK/base" > /dev/null
hub import "$WORK/base" --repo acme/base --private > /dev/null
mkdir -p "$WORK/ft" "$WORK/ghost"
printf -- '---\nlicense: apache-2.0\nbase_model: acme/base\n---\n# a fine-tune\n' > "$WORK/ft/README.md"
printf -- '---\nlicense: apache-2.0\nbase_model: acme/ghost\n---\n# a fine-tune\n' > "$WORK/ghost/README.md"
cp /usr/share/common-licenses/Apache-2.0 "$WORK/ft/LICENSE"
cp /usr/share/common-licenses/Apache-2.0 "$WORK/ghost/LICENSE"
ACME=$(hub token create --name acme --scope read --namespace acme)
OTHERW=$(hub token create --name other-writer --scope write --namespace other)
ADMIN=$(hub token create --name admin --scope write)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 100); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")

# The writer of `other` cannot read acme/base: for them it is absent, so the commit passes and
# its answer says nothing of acme/base's license.
"$HUBNODE" -q push "$WORK/ft" other/ft --to "$U" --token "$OTHERW" --json > "$WORK/push_ft" 2>&1
check "a fine-tune of a base the writer cannot see commits" 0 "$?"
check "the commit answer does not quote the private base" 0 "$(grep -c 'non-commercial\|cc-by-nc' "$WORK/push_ft")"
"$HUBNODE" -q push "$WORK/ghost" other/ghost --to "$U" --token "$OTHERW" > /dev/null 2>&1
derivative() { curl -s "${@:2}" "$U/api/models/$1/trust" | jq_ 'd["derivative"]'; }
GHOST=$(derivative other/ghost | sed 's/acme\/ghost/X/')
check "anonymous trust report: the private base reads as absent" "$GHOST" "$(derivative other/ft | sed 's/acme\/base/X/')"
check "another namespace's token: absent" "$GHOST" "$(derivative other/ft -H "Authorization: Bearer $OTHERW" | sed 's/acme\/base/X/')"
check "the base's reader sees the derivative rule" True "$(derivative other/ft -H "Authorization: Bearer $ACME" | grep -q 'non-commercial' && echo True)"
check "anonymous repo info says nothing of it" 0 "$(curl -s "$U/api/models/other/ft?expand=trust" | grep -c 'non-commercial')"
check "anonymous lineage does not name the private base" "False" "$(curl -s "$U/api/models/other/ft/lineage" | jq_ '"non-commercial" in json.dumps(d)' 2>/dev/null || echo False)"

# A writer who can read the base is refused, with the rule named.
mkdir -p "$WORK/ft2" && cp "$WORK/ft/README.md" "$WORK/ft/LICENSE" "$WORK/ft2/"
"$HUBNODE" -q push "$WORK/ft2" other/ft2 --to "$U" --token "$ADMIN" > "$WORK/push_ft2" 2>&1
check "a writer who can read the base: refused" 1 "$?"
check "the refusal names the derivative rule" True "$(grep -q 'derivative rule' "$WORK/push_ft2" && echo True)"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
