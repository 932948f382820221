#!/usr/bin/env bash
# The real huggingface_hub client, unmodified, as a new user runs it against a node: both released
# versions in ../shared/clients (0.35.3 on requests, 1.3.7 on httpx), each with a fresh HF_HOME,
# through hf_python_flow.py (create, staged upload, approve, folders, parent commits, pull requests
# and discussions, refs, downloads, settings, move, delete). Exits 77 (skipped, saying why) when
# the clients or Debian's python packages they import are absent.
# Usage: python_clients.sh HUBNODE
set -uo pipefail
HUBNODE=$(realpath "$1")
HERE=$(cd "$(dirname "$0")" && pwd)
CLIENTS=$(realpath -m "$HERE/../../../../shared/clients")
PY=/usr/bin/python3
if [[ ! -d "$CLIENTS/huggingface_hub-1.3.7" || ! -d "$CLIENTS/huggingface_hub-0.35.3" ]]; then
  echo "SKIP: the real python clients are not at $CLIENTS (see shared/clients/README.md)"; exit 77
fi
if ! $PY -c 'import requests, httpx, filelock, fsspec, tqdm, yaml, packaging' 2>/dev/null; then
  echo "SKIP: Debian's python packages for huggingface_hub are missing (make deps installs them)"; exit 77
fi
WORK=$(mktemp -d)
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
TW=$(hub token create --name alice --scope write --namespace alice)
TA=$(hub token create --name admin --scope write)
TO=$(hub token create --name bob --scope write --namespace bob)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --no-inference > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -qs serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
rc=0
for v in 0.35.3 1.3.7; do
  HF_ENDPOINT=$U HF_TOKEN=$TW HF_HUB_DISABLE_XET=1 HF_HUB_DISABLE_TELEMETRY=1 HF_HOME=$(mktemp -d -p "$WORK") \
    HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONPATH="$CLIENTS/huggingface_hub-$v" \
    $PY "$HERE/hf_python_flow.py" "$HUBNODE" "$TA" "$TO" || rc=1
done
if [[ $rc != 0 ]]; then echo "--- server log (errors)"; grep -v " 200 \| 206 \| 302 " "$WORK/err" | tail -40; fi
exit $rc
