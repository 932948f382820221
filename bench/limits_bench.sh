#!/usr/bin/env bash
# The denial-of-service limits of issue 13, measured: requests served under slow and idle
# clients (against the same requests with nothing else open), the billion-laughs card (answer
# size and server RSS), and safetensors header parsing from 10k to 1M tensors (against nlohmann's
# DOM parse of the same text). Usage: bench/limits_bench.sh BUILD_DIR
set -euo pipefail
BUILD=$(realpath "${1:-build}")
HERE=$(cd "$(dirname "$0")" && pwd)
echo "## Slow and idle clients (tests/hub/http/slow_clients.sh)"
"$HERE/../tests/hub/http/slow_clients.sh" "$BUILD/hub/hubnode" | sed -n '/^| phase/,/^$/p'
echo
echo "## Billion laughs and paths-info (tests/hub/read/limits.sh)"
"$HERE/../tests/hub/read/limits.sh" "$BUILD/hub/hubnode" | grep -E '^(billion laughs|paths-info):'
echo
echo "## Safetensors header parsing (bench/header_bench)"
"$BUILD/bench/header_bench" 1000000
