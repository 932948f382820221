#!/usr/bin/env bash
# The chunk tier (issue 19) against Ceph's radosgw started here on 127.0.0.1: an import with
# --chunks puts every chunk in packs in the bucket and keeps the local cache in its bound;
# downloads with an empty local cache are byte-exact; tier push moves a local store into packs; a crash between a pack's upload and its
# commit leaves nothing visible and GC deletes the orphan pack; a reader node pulls the writer's
# commit without fetching a chunk (it finds them in the packs' indexes) and serves it byte-exact
# (HTTP, git clone + git lfs pull), redirecting HTTP writes to the writer (or, with no writer named,
# refusing them: 403) and refusing every command-line write, metadata-only ones too; a plain node pulls the writer's
# tiered chunks through its peer API; a MoE run reloads experts from the bucket with the logits of
# a local run; radosgw down: a download of an
# uncached chunk is 503 + Retry-After with the JSON error, and works again, byte-exact, once it is
# back; a second writer store over the same prefix can neither upload nor collect packs.
# Prints "N passed, M failed"; exit 77 when Ceph is not installed (scripts/install-deps.sh).
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
CEPH=$(cd "$(dirname "$0")/../../tools/ceph" && pwd)
for b in ceph-mon ceph-osd radosgw; do
  command -v $b > /dev/null || { echo "SKIP: $b is not installed (scripts/install-deps.sh installs Ceph)"; exit 77; }
done
RPID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; [[ -n "$RPID" ]] && kill -9 "$RPID" 2>/dev/null; "$CEPH/ceph-down.sh" "$WORK/ceph" > /dev/null 2>&1; rm -rf "$WORK"' EXIT
up=
for _ in 1 2 3 4; do
  PORT=$((20000 + RANDOM % 20000))
  if "$CEPH/ceph-up.sh" "$WORK/ceph" "$PORT" > "$WORK/ceph.out" 2>&1; then up=1; break; fi
  "$CEPH/ceph-down.sh" "$WORK/ceph" > /dev/null 2>&1
done
[[ -n "$up" ]] || { echo "FAIL radosgw did not start"; cat "$WORK/ceph.out"; exit 1; }
set -a; source "$WORK/ceph/s3.env"; set +a
export AWS_ENDPOINT_URL=$S3_ENDPOINT
C="$WORK/ceph/ceph.conf"
B=hubnode-tier
objects() {  # the packs in the bucket, by radosgw's own listing
  radosgw-admin -c "$C" bucket list --bucket=$B --max-entries=1000000 2>/dev/null |
    python3 -c 'import json,sys; print(sum(1 for o in json.load(sys.stdin) if "/packs/" in o["name"]))'
}
manifests() {
  radosgw-admin -c "$C" bucket list --bucket=$B --max-entries=1000000 2>/dev/null |
    python3 -c 'import json,sys; print(sum(1 for o in json.load(sys.stdin) if o["name"].startswith("models/manifests/")))'
}
H() { "$HUBNODE" --data "$WORK/data" --chunks "s3://$B/models" "$@"; }
stat_of() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
serve() {  # serve [flags]: a node over the bucket, no raw copies (every byte from chunks)
  "$HUBNODE" --data "$WORK/data" --chunks "s3://$B/models" serve --listen 127.0.0.1:0 --no-inference --raw-cache-size 0 "$@" > "$WORK/s.out" 2> "$WORK/s.err" &
  PID=$!
  for _ in $(seq 600); do grep -qs serving "$WORK/s.out" && break; sleep 0.05; done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/s.out")
  [[ -n "$U" ]] || { echo "FAIL the node did not start:"; cat "$WORK/s.err"; }
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; PID=; }

check "tier init creates the bucket" 0 "$(H -q tier init > /dev/null; echo $?)"
"$HUBNODE" -q testmodel --family llama --size small --shards 2 --seed 3 --hidden 512 --layers 8 --out "$WORK/m" > /dev/null
H -q --chunk-cache 4MiB import "$WORK/m" --repo t/m > /dev/null
check "import with --chunks" 0 $?
H stats --json > "$WORK/st.json"
CHUNKS=$(stat_of chunks < "$WORK/st.json")
check "every chunk is in the bucket" "$CHUNKS" "$(stat_of remote_chunks < "$WORK/st.json")"
check "none held only here" 0 "$(stat_of local_only_chunks < "$WORK/st.json")"
check "an import caches nothing" 0 "$(stat_of cached_bytes < "$WORK/st.json")"
N=$(objects)
check "packs in the bucket (radosgw counts them)" True "$([[ $N -ge 1 ]] && echo True)"
DISK=$(stat_of disk_bytes < "$WORK/st.json"); REMOTE=$(stat_of remote_bytes < "$WORK/st.json")
check "the local store is a fraction of the bucket's bytes" True "$([[ $DISK -lt $((REMOTE / 2)) ]] && echo True)"

H node-key > "$WORK/w.pub"  # the reader trusts the writer's chunk maps
serve --chunk-cache 4MiB
for f in $(cd "$WORK/m" && ls); do
  check "download of $f from the bucket, byte-exact" "$(sha256sum < "$WORK/m/$f")" "$(curl -sf "$U/t/m/resolve/main/$f" | sha256sum)"
done
S1=$(cd "$WORK/m" && ls *.safetensors | sed -n 1p)
check "range of a tiered file" "$(tail -c +3000001 "$WORK/m/$S1" | head -c 100000 | sha256sum)" \
  "$(curl -sf -r 3000000-3099999 "$U/t/m/resolve/main/$S1" | sha256sum)"

# A reader node over the same bucket: metadata from the writer, chunks from the bucket.
R() { "$HUBNODE" --data "$WORK/reader" --chunks "s3://$B/models" --chunks-reader "$@"; }
R -q trust add-node-key --key "$WORK/w.pub" --name writer > /dev/null
R -q pull t/m --from "$U" --experts all > "$WORK/pull.out" 2>&1
check "the reader pulls the writer's commit" 0 $?
check "the reader fetched no chunk from the writer" True "$(grep -q 'fetched 0 chunks' "$WORK/pull.out" && echo True)"
R -q follow t/m --from "$U" --experts all --rounds 1 > "$WORK/follow.out" 2>&1
check "the reader follows the writer (follow --experts all)" True "$(grep -q "t/m@main = " "$WORK/follow.out" && echo True)"
check "the reader holds every chunk through the bucket" 0 "$(R stats --json | stat_of local_only_chunks)"
"$HUBNODE" --data "$WORK/reader" --chunks "s3://$B/models" --chunks-reader serve --listen 127.0.0.1:0 --no-inference \
  --raw-cache-size 0 --writer "$U" > "$WORK/r.out" 2> "$WORK/r.err" &
RPID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/r.out" && break; sleep 0.05; done
RU=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/r.out")
for f in $(cd "$WORK/m" && ls); do
  check "reader node: $f byte-exact" "$(sha256sum < "$WORK/m/$f")" "$(curl -sf "$RU/t/m/resolve/main/$f" | sha256sum)"
done
curl -s -D "$WORK/w.h" -o "$WORK/w.body" -X POST -H 'Content-Type: application/json' -d '{"name":"x","type":"model"}' \
  "$RU/api/repos/create"
check "a write to the reader is redirected: 307" 307 "$(head -1 "$WORK/w.h" | cut -d' ' -f2)"
check "to the writer" "$U/api/repos/create" "$(grep -i '^Location' "$WORK/w.h" | tr -d '\r' | cut -d' ' -f2)"
check "with the JSON error" ReaderNode "$(grep -i '^X-Error-Code' "$WORK/w.h" | tr -d '\r' | cut -d' ' -f2)"
# With a token, no redirect: clients drop Authorization when a redirect changes host or port
# (python's requests does, so huggingface_hub's write would reach the writer as a 401).
curl -s -D "$WORK/wa.h" -o /dev/null -X POST -H 'Authorization: Bearer hf_any' -H 'Content-Type: application/json' \
  -d '{"name":"x","type":"model"}' "$RU/api/repos/create"
check "an authenticated write to the reader: 403, not a redirect" 403 "$(head -1 "$WORK/wa.h" | cut -d' ' -f2)"
check "naming the writer's URL" True "$(grep -i '^X-Error-Message' "$WORK/wa.h" | grep -qF "$U" && echo True)"
kill "$RPID"; wait "$RPID" 2>/dev/null; RPID=
# Without --writer a reader refuses writes outright: 403 ReaderNode, before any body is read.
"$HUBNODE" --data "$WORK/reader" --chunks "s3://$B/models" --chunks-reader serve --listen 127.0.0.1:0 --no-inference \
  --raw-cache-size 0 > "$WORK/r.out" 2> "$WORK/r.err" &
RPID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/r.out" && break; sleep 0.05; done
RU=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/r.out")
curl -s -D "$WORK/w.h" -o "$WORK/w.body" -X POST -H 'Content-Type: application/json' -d '{"name":"x","type":"model"}' \
  "$RU/api/repos/create"
check "no --writer: a write to the reader is refused: 403" 403 "$(head -1 "$WORK/w.h" | cut -d' ' -f2)"
check "no --writer: ReaderNode" ReaderNode "$(grep -i '^X-Error-Code' "$WORK/w.h" | tr -d '\r' | cut -d' ' -f2)"
curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -d '{"operation":"upload","objects":[{"oid":"'"$(printf %064d 0)"'","size":1}]}' "$RU/t/m.git/info/lfs/objects/batch" > "$WORK/lfs.code"
check "no --writer: an LFS upload batch is refused" 403 "$(cat "$WORK/lfs.code")"
check "no --writer: downloads still work" "$(sha256sum < "$WORK/m/$S1")" "$(curl -sf "$RU/t/m/resolve/main/$S1" | sha256sum)"
# Reads that the write API carries (git fetch, LFS download batches) are the reader's own (no
# writer named here to send them to).
if command -v git > /dev/null && command -v git-lfs > /dev/null; then
  GIT_LFS_SKIP_SMUDGE=1 git -c credential.helper= clone -q "$RU/t/m" "$WORK/rclone" > "$WORK/clone.err" 2>&1
  check "git clone from the reader" 0 $?
  (cd "$WORK/rclone" && git lfs pull > /dev/null 2>> "$WORK/clone.err")
  check "git lfs pull from the reader" 0 $?
  check "the clone is byte-exact" "$(cd "$WORK/m" && cat * | sha256sum)" "$(cd "$WORK/rclone" && cat $(cd "$WORK/m" && ls) | sha256sum)"
fi
kill "$RPID"; wait "$RPID" 2>/dev/null; RPID=
# From the command line: a commit whose chunks are all in the bucket already (a metadata-only
# import) is refused too, and leaves no repo behind; follow still replicates.
R -q import "$WORK/m" --repo t/copy > /dev/null 2> "$WORK/rc.err"
check "a metadata-only import on the reader is refused" 1 $?
check "it says to write to the writer" True "$(grep -q 'send writes to the writer' "$WORK/rc.err" && echo True)"
check "and leaves no repo" 1 "$(R -q ls t/copy > /dev/null 2>&1; echo $?)"
check "tier push on the reader is refused" 1 "$(R -q tier push > /dev/null 2>&1; echo $?)"
check "follow on the reader still replicates" True \
  "$(R -q follow t/m --from "$U" --experts all --rounds 1 2>&1 | grep -q 't/m@main = ' && echo True)"
"$HUBNODE" -q testmodel --family llama --size small --shards 1 --seed 5 --hidden 256 --layers 2 --out "$WORK/m3" > /dev/null
# A plain node (no tier) pulls from the writer's peer API, which reads the chunks from the bucket.
P() { "$HUBNODE" --data "$WORK/plain" "$@"; }
P -q trust add-node-key --key "$WORK/w.pub" --name writer > /dev/null
P -q pull t/m --from "$U" --experts all > "$WORK/ppull.out" 2>&1
check "the peer API serves tiered chunks" True "$(grep -q 'fetched [1-9][0-9]* chunks' "$WORK/ppull.out" && echo True)"
check "what it pulled exports byte-exact" "$(cd "$WORK/m" && cat * | sha256sum)" \
  "$(P -q export t/m "$WORK/plain-out" > /dev/null && cd "$WORK/plain-out" && cat * | sha256sum)"
R -q import "$WORK/m3" --repo t/other > /dev/null 2> "$WORK/ri.err"
check "an import on the reader is refused" 1 $?
check "the refusal says to write to the writer" True "$(grep -q 'send writes to the writer' "$WORK/ri.err" && echo True)"
stop
H stats --json > "$WORK/st.json"
CACHED=$(stat_of cached_bytes < "$WORK/st.json")
check "the local cache stays in its 4 MiB bound" True "$([[ $CACHED -gt 0 && $CACHED -le 4194304 ]] && echo True)"

# tier push: a store made without the tier moves its chunks into packs, keeping 1 MiB here.
"$HUBNODE" --data "$WORK/old" -q import "$WORK/m" --repo t/old > /dev/null
O() { "$HUBNODE" --data "$WORK/old" --chunks "s3://$B/old" --chunk-cache 1MiB "$@"; }
check "tier push" True "$(O tier push | grep -q '^pushed [1-9]' && echo True)"
O stats --json > "$WORK/old.json"
check "after push: nothing held only here" 0 "$(stat_of local_only_chunks < "$WORK/old.json")"
check "after push: every chunk in the bucket" "$(stat_of chunks < "$WORK/old.json")" "$(stat_of remote_chunks < "$WORK/old.json")"
check "after push: the cache within 1 MiB" True "$([[ $(stat_of cached_bytes < "$WORK/old.json") -le 1048576 ]] && echo True)"
check "after push: byte-exact export" "$(cd "$WORK/m" && cat * | sha256sum)" "$(O -q export t/old "$WORK/old-out" > /dev/null && cd "$WORK/old-out" && cat * | sha256sum)"
N=$(objects)

# The runtime's expert loads through the tier: a MoE run at a 10% expert budget (experts reloaded
# as they are routed) with every chunk in the bucket and no local cache gives the logits of the
# same run from a local store.
"$HUBNODE" -q testmodel --family olmoe --size small --experts 16 --shards 2 --seed 5 --out "$WORK/moe" > /dev/null
"$HUBNODE" --data "$WORK/rt-local" -q import "$WORK/moe" --repo t/moe > /dev/null
RT() { "$HUBNODE" --data "$WORK/rt" --chunks "s3://$B/rt" --chunk-cache 0 "$@"; }
RT -q import "$WORK/moe" --repo t/moe > /dev/null
PROMPT=3,14,15,92,65,35,89,79,32,38,46,26,43,38,32,79,50,28,84,19
LOCAL=$("$HUBNODE" --data "$WORK/rt-local" run t/moe --tokens "$PROMPT" --dump-logits 8 --expert-budget 10% --raw-cache-size 0 2> /dev/null | sha256sum)
check "run at 10% experts from the bucket: the local store's logits" "$LOCAL" \
  "$(RT run t/moe --tokens "$PROMPT" --dump-logits 8 --expert-budget 10% --raw-cache-size 0 2> "$WORK/rt.err" | sha256sum)"
check "logits were dumped" True "$([[ "$LOCAL" != "$(printf '' | sha256sum)" ]] && echo True)"
N=$(objects)

# A crash between a pack's upload and the commit naming it: nothing visible, GC removes the pack.
"$HUBNODE" -q testmodel --family llama --size small --shards 1 --seed 9 --hidden 256 --layers 4 --out "$WORK/m2" > /dev/null
# A proxy in front of radosgw SIGKILLs the import the moment its pack is whole in the bucket.
python3 "$(dirname "$0")/crash_proxy.py" "$S3_ENDPOINT" "$WORK/proxy.port" "$WORK/victim.pid" &
XPID=$!
for _ in $(seq 200); do [[ -s "$WORK/proxy.port" ]] && break; sleep 0.05; done
AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$WORK/proxy.port")" \
  "$HUBNODE" --data "$WORK/data" --chunks "s3://$B/models" -q import "$WORK/m2" --repo t/crash > /dev/null 2>&1 &
VPID=$!
echo "$VPID" > "$WORK/victim.pid"
wait "$VPID"
check "the import was killed right after its pack's upload" 137 $?
kill "$XPID" 2>/dev/null; wait "$XPID" 2>/dev/null
check "a pack more in the bucket" $((N + 1)) "$(objects)"
check "the crashed import's repo does not exist" 1 "$(H -q ls t/crash > /dev/null 2>&1; echo $?)"
H gc > "$WORK/gc.out" 2>&1
check "gc deletes the orphan pack" True "$(grep -q 'packs: deleted 1,' "$WORK/gc.out" && echo True)"
check "the bucket is back to its packs" "$N" "$(objects)"
check "gc wrote a manifest of the packs' chunk locations" True "$(grep -q 'manifests: wrote 1 ' "$WORK/gc.out" && echo True)"
check "radosgw holds it" 1 "$(manifests)"
check "fsck is clean (tiered chunks read from the bucket)" 0 "$(H -q fsck > /dev/null 2>&1; echo $?)"
# A new reader learns the locations from the manifest and serves byte-exact.
serve
R2() { "$HUBNODE" --data "$WORK/reader2" --chunks "s3://$B/models" --chunks-reader "$@"; }
R2 -q trust add-node-key --key "$WORK/w.pub" --name writer > /dev/null
R2 -q pull t/m --from "$U" --experts all > "$WORK/pull2.out" 2>&1
check "a new reader pulls without fetching a chunk" True "$(grep -q 'fetched 0 chunks' "$WORK/pull2.out" && echo True)"
stop
check "and exports byte-exact" "$(cd "$WORK/m" && cat * | sha256sum)" \
  "$(R2 -q export t/m "$WORK/r2-out" > /dev/null && cd "$WORK/r2-out" && cat * | sha256sum)"

# One writer per prefix: a second writer store (a reader started without --chunks-reader) can
# neither upload nor collect the first one's packs.
S2() { "$HUBNODE" --data "$WORK/second" --chunks "s3://$B/models" "$@"; }
S2 -q import "$WORK/m3" --repo t/second > /dev/null 2> "$WORK/s2.err"
check "a second writer's import is refused" 1 $?
check "naming the writer's data directory" True "$(grep -q "is written by another store.*data $WORK/data" "$WORK/s2.err" && echo True)"
check "a second writer's gc is refused" 1 "$(S2 -q gc > /dev/null 2>&1; echo $?)"
check "and deletes no pack" "$N" "$(objects)"
check "tier claim without --force is refused" 1 "$(S2 -q tier claim > /dev/null 2>&1; echo $?)"

# The object store down: an uncached chunk is a clean 503 with Retry-After, nothing corrupt.
serve --chunk-cache 0
RGW=$(awk '$1=="rgw.a"{print $2}' "$WORK/ceph/pids")
kill -TERM "$RGW"; for _ in $(seq 40); do kill -0 "$RGW" 2>/dev/null || break; sleep 0.25; done
curl -s -D "$WORK/d.h" -o "$WORK/d.body" "$U/t/m/resolve/main/$S1"
check "radosgw down: 503" 503 "$(head -1 "$WORK/d.h" | cut -d' ' -f2)"
check "radosgw down: Retry-After" 30 "$(grep -i '^Retry-After' "$WORK/d.h" | tr -d '\r' | cut -d' ' -f2)"
check "radosgw down: X-Error-Code" ChunksUnavailable "$(grep -i '^X-Error-Code' "$WORK/d.h" | tr -d '\r' | cut -d' ' -f2)"
check "radosgw down: JSON body" True "$(python3 -c 'import json,sys; json.load(open(sys.argv[1])); print(True)' "$WORK/d.body" 2>/dev/null)"
check "no secret in the answer or the log" 0 "$(cat "$WORK/d.body" "$WORK/s.err" | grep -c "$AWS_SECRET_ACCESS_KEY")"
radosgw -c "$C" -n client.rgw.a -f < /dev/null >> "$WORK/ceph/log/rgw.b.out" 2>&1 &
echo "rgw.b $!" >> "$WORK/ceph/pids"
for _ in $(seq 120); do curl -sf -m 2 -o /dev/null "$S3_ENDPOINT/" && break; sleep 0.25; done
check "radosgw back: byte-exact again" "$(sha256sum < "$WORK/m/$S1")" "$(curl -sf "$U/t/m/resolve/main/$S1" | sha256sum)"
stop

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
