#!/usr/bin/env bash
# A base model the caller may not read is absent for that caller (issue 13, item 4): the trust
# report of a public fine-tune, the refusal of a commit and the lineage never reveal that a private
# base exists or quote its license, while a reader of the base sees the derivative rule. The
# commits route's per-commit new bytes (stats=1): against the parent, against a base named by a
# root commit's card, and never telling that a private base exists. Against a real `hubnode
# serve` on 127.0.0.1. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
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
# For the commits route's new bytes: pub/base (public) and its fine-tune pub/ft (10% of the
# tensors changed), each one imported commit; acme/ft, a public fine-tune of the private
# acme/base, and acme/ftx, the same files naming a base that does not exist (a name as long).
hub testmodel --family olmoe --size tiny --seed 8 --out "$WORK/pbase" > /dev/null
hub testmodel --finetune-of "$WORK/pbase" --base-model pub/base --change fraction:0.1 --out "$WORK/pft" > /dev/null
hub testmodel --finetune-of "$WORK/base" --base-model acme/base --change fraction:0.1 --out "$WORK/aft" > /dev/null
cp -r "$WORK/aft" "$WORK/aftx" && sed -i 's|^base_model: acme/base$|base_model: acme/bxse|' "$WORK/aftx/README.md"
hub import "$WORK/pbase" --repo pub/base > /dev/null
hub import "$WORK/pft" --repo pub/ft > /dev/null
hub import "$WORK/aft" --repo acme/ft > /dev/null
hub import "$WORK/aftx" --repo acme/ftx > /dev/null
ACME=$(hub token create --name acme --scope read --namespace acme)
OTHERW=$(hub token create --name other-writer --scope write --namespace other)
ADMIN=$(hub token create --name admin --scope write)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
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

# ---- commits?stats=1: what each commit added -----------------------------------------------
# hn REPO [CURL-ARGS...]: each commit's "hubnode" figure on the first page of stats=1 as
# "files bytes new comparedWith", one line per commit ("-" when it has none).
hn() {
  curl -s "${@:2}" "$U/api/models/$1/commits/main?stats=1" | jq_ '"\n".join(
    " ".join(str(h[k]) for k in ("changedFiles", "changedBytes", "newBytes", "comparedWith")) if h else "-"
    for h in (c.get("hubnode") for c in d))'
}
commit() {  # commit REPO PATH FILE: one inline file, as the admin; prints the status
  printf '{"key":"header","value":{"summary":"add %s"}}\n{"key":"file","value":{"path":"%s","content":"%s","encoding":"base64"}}\n' \
    "$2" "$2" "$(base64 -w0 "$3")" > "$WORK/c.ndjson"
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN" -H "Content-Type: application/x-ndjson" \
    --data-binary @"$WORK/c.ndjson" "$U/api/models/$1/commit/main"
}
BASEBYTES=$(cat "$WORK/pbase"/* | wc -c)
BASEFILES=$(ls "$WORK/pbase" | wc -l)
printf 'hello stats' > "$WORK/notes.txt"
check "pub/base: commit one small file" 200 "$(commit pub/base notes.txt "$WORK/notes.txt")"
check "its figure: 1 file of 11 bytes, all new, against the parent" "1 11 11 parent" "$(hn pub/base | sed -n 1p)"
check "the import's: every file, against nothing" "$BASEFILES $BASEBYTES nothing" "$(hn pub/base | sed -n 2p | awk '{print $1, $2, $4}')"
check "the import's new bytes: over half its bytes, at most all (a chunk counts once)" True \
  "$(hn pub/base | sed -n 2p | awk '{print ($3 > $2 / 2 && $3 <= $2) ? "True" : "False"}')"
check "the new bytes of the small commit are far under the repo's" True "$(hn pub/base | awk 'NR == 1 {n = $3} NR == 2 {t = $2} END {print (n * 1000 < t) ? "True" : "False"}')"
check "a commit of content the parent holds (config.json copied): nothing new" "1 $(wc -c < "$WORK/pbase/config.json") 0 parent" \
  "$(commit pub/base copy.json "$WORK/pbase/config.json" > /dev/null; hn pub/base | sed -n 1p)"
check "without stats=1: no hubnode field" False "$(curl -s "$U/api/models/pub/base/commits/main" | jq_ 'any("hubnode" in c for c in d)')"
PFT=$(hn pub/ft | tail -1)
check "pub/ft (a root commit naming pub/base): every file changed, against the base" "$(ls "$WORK/pft" | wc -l) $(cat "$WORK/pft"/* | wc -c) base" \
  "$(echo "$PFT" | awk '{print $1, $2, $4}')"
check "pub/ft: some new bytes, under a quarter of its bytes" True "$(echo "$PFT" | awk '{print ($3 > 0 && $3 * 4 < $2) ? "True" : "False"}')"
printf 'fine-tune notes' > "$WORK/ftnotes.txt"
check "a later commit on pub/ft: against its parent and its base" "1 15 15 parent+base" \
  "$(commit pub/ft notes.txt "$WORK/ftnotes.txt" > /dev/null; hn pub/ft | sed -n 1p)"
check "...where content its base holds costs nothing (pub/base's notes.txt)" "1 11 0 parent+base" \
  "$(commit pub/ft notes.txt "$WORK/notes.txt" > /dev/null; hn pub/ft | sed -n 1p)"
# A private base counts only for callers who may read it: for the others the figure is exactly
# that of the same fine-tune naming a base that does not exist.
AFTX=$(hn acme/ftx)
check "acme/ftx (its base does not exist): against nothing" nothing "$(echo "$AFTX" | awk '{print $4}')"
check "anonymous: acme/ft as if its private base did not exist" "$AFTX" "$(hn acme/ft)"
check "another namespace's token: the same" "$AFTX" "$(hn acme/ft -H "Authorization: Bearer $OTHERW")"
check "the base's reader: against the base, under a quarter new" True \
  "$(hn acme/ft -H "Authorization: Bearer $ACME" | awk '{print ($4 == "base" && $3 > 0 && $3 * 4 < $2) ? "True" : "False"}')"
# Only the first 20 commits of a page are measured.
for i in $(seq 20); do printf '%s' "$i" > "$WORK/n.txt"; commit pub/base "n$i.txt" "$WORK/n.txt" > /dev/null; done
check "23 commits: the first 20 measured" "23 20" "$(hn pub/base | awk '{n++} $1 != "-" {m++} END {print n, m}')"
check "...of each page (cursor=20&limit=3: all 3)" 3 "$(curl -s "$U/api/models/pub/base/commits/main?stats=1&cursor=20&limit=3" | jq_ 'sum("hubnode" in c for c in d)')"

kill "$PID"; wait "$PID" 2>/dev/null; PID=
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
