#!/usr/bin/env bash
# What the policy cannot check is a finding, never silence (issue 13, item 9): a LICENSE whose
# text the node does not identify, or too large to read, when the card names a license; and in a
# namespace that requires signatures, a .gitattributes beyond LFS tracking or files under .github/
# (which no signature covers). `hubnode license check` exits 0 allow, 3 review, 4 deny. Prints
# "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$0")/../../lib.sh"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
cd "$WORK" || exit 1
lic() { hub license check "$@" > "$WORK/lic.out" 2>&1; echo $?; }
says() { grep -q "$1" "$WORK/lic.out" && echo True || echo False; }

mkdir m
printf -- '---\nlicense: apache-2.0\n---\n# model\n' > m/README.md
cp /usr/share/common-licenses/Apache-2.0 m/LICENSE
echo '{}' > m/config.json
check "an identified LICENSE agreeing with the card: allow" 0 "$(lic m)"

cp -r m odd
printf 'You may use this model on Tuesdays, if you are kind.\n' > odd/LICENSE
check "a LICENSE the node cannot identify: review" 3 "$(lic odd)"
check "... and it says so" True "$(says 'not a license text this node identifies')"

cp -r m big
head -c 5000000 /dev/zero | tr '\0' 'x' > big/LICENSE
check "a LICENSE too large to read: review" 3 "$(lic big)"
check "... and it says so" True "$(says 'too large to read')"

cp -r m nolicense && rm nolicense/LICENSE
check "no LICENSE file at all: allow (the card alone)" 0 "$(lic nolicense)"

# A namespace that requires signatures: a signature leaves .git*, .github/ and model.sig out.
hub keygen --out alice > /dev/null
hub trust add-key sig --key alice.pub --name alice > /dev/null
hub trust require-signature sig > /dev/null
cp -r m s
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n# a comment\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n' > s/.gitattributes
hub sign s --key alice > /dev/null
check "signed, .gitattributes only tracks LFS: allow" 0 "$(lic s --repo sig/model)"
printf '*.json text eol=crlf\n' >> s/.gitattributes
check "signed, .gitattributes rewrites bytes at checkout: review" 3 "$(lic s --repo sig/model)"
check "... and it says so" True "$(says 'gitattributes does more than track LFS')"
head -n 3 s/.gitattributes > s/g && mv s/g s/.gitattributes
mkdir -p s/.github/workflows && echo 'on: push' > s/.github/workflows/ci.yml
check "signed, a file under .github/: review" 3 "$(lic s --repo sig/model)"
check "... and it says so" True "$(says '.github/workflows/ci.yml is under .github/')"
check "the same files outside a signed namespace: allow" 0 "$(lic s --repo free/model)"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
