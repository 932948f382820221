#!/usr/bin/env bash
# Interop of hubnode's model signatures with the openssl CLI alone, both directions:
#  1. a bundle made by `hubnode sign` verifies with `openssl dgst -verify` over a PAE built with
#     shell tools;
#  2. a bundle made with openssl, sha256sum, base64 and printf verifies in `hubnode verify`.
# Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
hex2bin() { printf "$(echo "$1" | sed 's/../\\x&/g')"; }
TYPE=application/vnd.in-toto+json

"$HUBNODE" -q testmodel --out model > /dev/null

# 1. hubnode signs (each curve), openssl verifies.
for curve in p256 p384 p521; do
  case $curve in p256) dgst=-sha256 ;; p384) dgst=-sha384 ;; p521) dgst=-sha512 ;; esac
  rm -f k k.pub model/model.sig
  "$HUBNODE" keygen --out k --curve $curve > /dev/null
  "$HUBNODE" sign model --key k > /dev/null
  # Pull payload and signature out of the JSON with sed (one field per line in our output).
  payload_b64=$(sed -n 's/.*"payload": "\([^"]*\)".*/\1/p' model/model.sig)
  sig_b64=$(sed -n 's/.*"sig": "\([^"]*\)".*/\1/p' model/model.sig)
  echo "$payload_b64" | base64 -d > payload.json
  echo "$sig_b64" | base64 -d > sig.der
  { printf 'DSSEv1 %d %s %d ' ${#TYPE} "$TYPE" "$(stat -c %s payload.json)"; cat payload.json; } > pae.bin
  check "openssl verifies a hubnode $curve bundle" "Verified OK" "$(openssl dgst $dgst -verify k.pub -signature sig.der pae.bin)"
  # The statement's subject is SHA-256 over the raw resource digests, in order.
  digests=$(grep -o '"digest":"[0-9a-f]\{64\}"' payload.json | cut -d'"' -f4 | tr -d '\n')
  subject=$(grep -o '"sha256":"[0-9a-f]\{64\}"' payload.json | cut -d'"' -f4)
  check "$curve subject = SHA-256 of the resource digests" "$subject" "$(hex2bin "$digests" | sha256sum | cut -d' ' -f1)"
done

# 2. openssl signs a bundle built by hand; hubnode verifies it.
rm -f model/model.sig
openssl ecparam -name secp384r1 -genkey -noout -out hand.key 2> /dev/null
openssl ec -in hand.key -pubout -out hand.pub 2> /dev/null
resources="" all=""
for f in $(cd model && find . -type f | sed 's|^\./||' | LC_ALL=C sort); do
  d=$(sha256sum "model/$f" | cut -d' ' -f1)
  resources="$resources${resources:+,}{\"name\":\"$f\",\"algorithm\":\"sha256\",\"digest\":\"$d\"}"
  all="$all$d"
done
root=$(hex2bin "$all" | sha256sum | cut -d' ' -f1)
printf '{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"model","digest":{"sha256":"%s"}}],"predicateType":"https://model_signing/signature/v1.0","predicate":{"serialization":{"method":"files","hash_type":"sha256","allow_symlinks":false,"ignore_paths":[".git",".gitattributes",".github",".gitignore","model.sig"]},"resources":[%s]}}' \
  "$root" "$resources" > statement.json
{ printf 'DSSEv1 %d %s %d ' ${#TYPE} "$TYPE" "$(stat -c %s statement.json)"; cat statement.json; } > pae2.bin
openssl dgst -sha384 -sign hand.key -out hand.sig pae2.bin
hint=$(openssl pkey -pubin -in hand.pub | sha256sum | cut -d' ' -f1)
printf '{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"%s"},"tlogEntries":[]},"dsseEnvelope":{"payload":"%s","payloadType":"%s","signatures":[{"sig":"%s","keyid":""}]}}' \
  "$hint" "$(base64 -w0 statement.json)" "$TYPE" "$(base64 -w0 hand.sig)" > model/model.sig
out=$("$HUBNODE" verify model --key hand.pub 2>&1)
check "hubnode verifies an openssl-made bundle" 1 "$(echo "$out" | grep -c '^verdict: OK')"
# The same bundle with its payload in the URL-safe base64 alphabet, unpadded.
sed -i "s|\"payload\":\"[^\"]*\"|\"payload\":\"$(base64 -w0 statement.json | tr '+/' '-_' | tr -d '=')\"|" model/model.sig
out=$("$HUBNODE" verify model --key hand.pub 2>&1)
check "URL-safe base64 payload" 1 "$(echo "$out" | grep -c '^verdict: OK')"
# A file changed after signing is named.
echo tamper >> model/README.md
out=$("$HUBNODE" verify model --key hand.pub 2>&1)
check "tampered file is named" 1 "$(echo "$out" | grep -c 'digest mismatch: README.md')"
# 3. A stored revision verifies from the SHA-256s the store keeps (files) or through its reader
#    (shards), with the bundle inside the repo or given beside it.
"$HUBNODE" -q testmodel --seed 3 --out m2 > /dev/null
"$HUBNODE" keygen --out k3 > /dev/null
"$HUBNODE" sign m2 --key k3 > /dev/null
"$HUBNODE" --data store -q import m2 --repo t/m > /dev/null
check "stored repo verifies (files, model.sig in the repo)" 1 "$("$HUBNODE" --data store verify t/m --key k3.pub | grep -c '^verdict: OK')"
"$HUBNODE" --data store sign t/m@main --key k3 --method shards --shard-size 100000 --out shards.sig > /dev/null
check "stored repo verifies (shards, signed from the store)" 1 \
  "$("$HUBNODE" --data store verify t/m --key k3.pub --signature shards.sig | grep -c '^verdict: OK')"
check "shards bundle verifies against the directory too" 1 \
  "$("$HUBNODE" verify m2 --key k3.pub --signature shards.sig | grep -c '^verdict: OK')"
# 4. Certificate mode with certificates made by the openssl CLI: a root CA and a leaf for a P-256 key.
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2> /dev/null
openssl req -x509 -new -key ca.key -subj "/CN=Interop Root" -days 2 -out ca.pem \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2> /dev/null
openssl ecparam -name prime256v1 -genkey -noout -out leaf.key 2> /dev/null
openssl req -new -key leaf.key -subj "/CN=Interop Publisher" -out leaf.csr 2> /dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile leaf.ext -out leaf.pem 2> /dev/null
rm -f m2/model.sig
"$HUBNODE" sign m2 --key leaf.key --cert leaf.pem > /dev/null
check "certificate-mode bundle verifies against the openssl-made root" 1 \
  "$("$HUBNODE" verify m2 --ca ca.pem 2>&1 | grep -c '^verdict: OK')"
openssl req -x509 -new -key leaf.key -subj "/CN=Self Signed" -days 1 -out self.pem 2> /dev/null
check "an untrusted root is refused" 1 "$("$HUBNODE" verify m2 --ca self.pem 2>&1 | grep -c 'certificate chain rejected')"

# A single-file model (issue 13, item 19): one resource named "." (the reference tool's vectors),
# its bundle FILE.sig, checked by openssl too; a bundle without verificationMaterial is refused
# even with the right key.
head -c 5000 /dev/urandom > single.bin
"$HUBNODE" sign single.bin --key k3 > /dev/null
check "a single-file model signs to FILE.sig" True "$([[ -s single.bin.sig ]] && echo True)"
check "its one resource is named ." '["."]' "$(python3 -c "import base64,json; b=json.load(open('single.bin.sig')); p=json.loads(base64.b64decode(b['dsseEnvelope']['payload'])); print(json.dumps([r['name'] for r in p['predicate']['resources']]))")"
check "it verifies" 1 "$("$HUBNODE" verify single.bin --key k3.pub | grep -c '^verdict: OK')"
python3 -c "import base64,json; b=json.load(open('single.bin.sig')); open('pae1.bin','wb').write(b'DSSEv1 28 application/vnd.in-toto+json %d ' % len(base64.b64decode(b['dsseEnvelope']['payload'])) + base64.b64decode(b['dsseEnvelope']['payload'])); open('sig1.der','wb').write(base64.b64decode(b['dsseEnvelope']['signatures'][0]['sig']))"
check "openssl verifies its signature" "Verified OK" "$(openssl dgst -sha256 -verify k3.pub -signature sig1.der pae1.bin)"
head -c 5000 /dev/urandom > single.bin
check "a changed single file fails" 1 "$("$HUBNODE" verify single.bin --key k3.pub 2>&1 | grep -c '^verdict: FAILED')"
python3 -c "import json; b=json.load(open('single.bin.sig')); del b['verificationMaterial']; json.dump(b, open('bare.sig','w'))"
check "no verificationMaterial: refused with the key" 1 "$("$HUBNODE" verify single.bin --key k3.pub --signature bare.sig 2>&1 | grep -c 'verificationMaterial')"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
