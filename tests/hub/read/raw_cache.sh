#!/usr/bin/env bash
# The raw cache of hot files (DATA/rawcache): a file's first download is served from chunks and
# queues its raw copy; later downloads and ranges come from the copy, byte-exact; the cache keeps
# to its capacity (least recently used out); a copy altered on disk while the node was down is
# re-hashed at start and dropped, never served. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
serve() {
  "$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference --raw-cache-size "$1" > "$WORK/s.out" 2> "$WORK/s.err" &
  PID=$!
  for _ in $(seq 600); do grep -q serving "$WORK/s.out" && break; sleep 0.05; done
  U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/s.out")
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null; PID=; }
cached() { ls "$WORK/data/rawcache" 2>/dev/null | grep -v tmp | sort | tr '\n' ' '; }
wait_cached() {  # wait_cached N: until N copies are in place
  for _ in $(seq 300); do [[ $(cached | wc -w) -ge $1 ]] && return; sleep 0.05; done
}

# Two 12 MB shards (over the 8 MiB minimum).
"$HUBNODE" -q testmodel --family llama --size small --shards 2 --seed 3 --hidden 512 --layers 8 --out "$WORK/m" > /dev/null
"$HUBNODE" --data "$WORK/data" -q import "$WORK/m" --repo t/m > /dev/null
S1=$(cd "$WORK/m" && ls *.safetensors | sed -n 1p)
S2=$(cd "$WORK/m" && ls *.safetensors | sed -n 2p)
SZ1=$(stat -c %s "$WORK/m/$S1")
SHA1=$(sha256sum < "$WORK/m/$S1" | cut -c1-64)
SHA2=$(sha256sum < "$WORK/m/$S2" | cut -c1-64)
check "shards over 8 MiB" True "$([[ $SZ1 -gt 8388608 ]] && echo True)"

serve $((SZ1 * 3 / 2))   # room for one shard only
check "first download byte-exact" "$SHA1" "$(curl -sf "$U/t/m/resolve/main/$S1" | sha256sum | cut -c1-64)"
wait_cached 1
check "its copy is cached under its sha256" "$SHA1 " "$(cached)"
check "second download (from the copy) byte-exact" "$SHA1" "$(curl -sf "$U/t/m/resolve/main/$S1" | sha256sum | cut -c1-64)"
check "range from the copy" "$(tail -c +1001 "$WORK/m/$S1" | head -c 5000 | sha256sum)" \
  "$(curl -sf -r 1000-5999 "$U/t/m/resolve/main/$S1" | sha256sum)"
check "suffix range from the copy" "$(tail -c 100 "$WORK/m/$S1" | sha256sum)" "$(curl -sf -r -100 "$U/t/m/resolve/main/$S1" | sha256sum)"
check "HEAD unchanged" "\"$SHA1\"" "$(curl -sfI "$U/t/m/resolve/main/$S1" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')"
curl -sf -o /dev/null "$U/t/m/resolve/main/$S2"
for _ in $(seq 300); do [[ "$(cached)" == "$SHA2 " ]] && break; sleep 0.05; done
check "capacity: the older copy made room" "$SHA2 " "$(cached)"
check "evicted file still served (from chunks)" "$SHA1" "$(curl -sf "$U/t/m/resolve/main/$S1" | sha256sum | cut -c1-64)"
stop

# A copy altered while the node was down is re-hashed at start and dropped.
F="$WORK/data/rawcache/$(cached | tr -d ' ')"
printf 'X' | dd of="$F" bs=1 seek=100 conv=notrunc 2> /dev/null
serve $((SZ1 * 3))
for _ in $(seq 200); do grep -q "does not match its name" "$WORK/s.err" && break; sleep 0.05; done
check "altered copy dropped" True "$(grep -q 'does not match its name' "$WORK/s.err" && echo True)"
check "altered file served byte-exact (from chunks)" "$SHA2" "$(curl -sf "$U/t/m/resolve/main/$S2" | sha256sum | cut -c1-64)"
stop
serve 0
check "--raw-cache-size 0: served from chunks" "$SHA1" "$(curl -sf "$U/t/m/resolve/main/$S1" | sha256sum | cut -c1-64)"
stop

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
