#!/usr/bin/env bash
# Slow and idle clients against a real `hubnode serve` (tests/hub/http/slow_clients.py says what
# is checked). Usage: tests/hub/http/slow_clients.sh HUBNODE
set -uo pipefail
HUBNODE=$(realpath "$1")
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
mkdir -p "$WORK/m"
printf -- '---\nlicense: apache-2.0\n---\n# files\n' > "$WORK/m/README.md"
cp /usr/share/common-licenses/Apache-2.0 "$WORK/m/LICENSE"
head -c 64000000 /dev/urandom > "$WORK/m/big.bin"
echo '{"small": true}' > "$WORK/m/config.json"
hub import "$WORK/m" --repo org/files > /dev/null
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference --raw-cache-size 0 \
  --header-timeout 3 --idle-timeout 3 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
/usr/bin/python3 "$(dirname "$0")/slow_clients.py" "$U" /org/files/resolve/main/big.bin /org/files/resolve/main/config.json
rc=$?
kill "$PID"; wait "$PID" 2>/dev/null; PID=
exit $rc
