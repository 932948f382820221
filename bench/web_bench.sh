#!/usr/bin/env bash
# The web UI's page weight and time to first render (issue 16), in Debian's chromium against a
# real node (the fixtures of tests/web/run.sh): the models list and a model page, each loaded
# RUNS times in a fresh browser context, against the named baseline of the same run — fetching
# the JSON the page is built from. Prints a table (after the UI test's own checks).
# Usage: bench/web_bench.sh HUBNODE [RUNS]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BENCH=1 RUNS=${2:-7} "$HERE/../tests/web/run.sh" "$1" "$(mktemp -d)" | sed -n '/^| page/,$p'
