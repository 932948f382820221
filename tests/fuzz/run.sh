#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for FUZZ_SECONDS
# (default 10; `FUZZ_SECONDS=600 tests/fuzz/run.sh` for a longer run by hand).
# Usage: tests/fuzz/run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
SRC=$(realpath "$1")
OUT=$(mkdir -p "$2" && realpath "$2")
SECONDS_EACH=${FUZZ_SECONDS:-10}
command -v clang++ > /dev/null || { echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
SOURCES="$SRC/base/bytes.cc $SRC/base/file.cc $SRC/base/hash.cc $SRC/base/hex.cc $SRC/base/log.cc \
  $SRC/base/status.cc $SRC/base/thread_pool.cc $SRC/base/time_format.cc $SRC/verify/*.cc $SRC/runtime/jinja/*.cc \
  $SRC/runtime/tokenizer/*.cc $SRC/base/json_limits.cc $SRC/store/safetensors.cc $SRC/hub/http/router.cc \
  $SRC/hub/http/http_util.cc $SRC/store/records.cc"
FLAGS="-std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I $SRC"
# The library sources are compiled once (and again only when changed), then linked per target.
mkdir -p "$OUT/obj"
# Any header change rebuilds everything (a stale object with an old struct layout crashes).
newest_header=$(ls -t "$SRC"/base/*.h "$SRC"/verify/*.h "$SRC"/runtime/*.h "$SRC"/runtime/*/*.h "$SRC"/store/*.h \
  "$SRC"/hub/http/*.h | head -1)
OBJS=()
for src in $SOURCES; do
  obj="$OUT/obj/$(echo "${src#$SRC/}" | tr '/' '_').o"
  [[ -f "$obj" && "$obj" -nt "$src" && "$obj" -nt "$newest_header" ]] || clang++ $FLAGS -c "$src" -o "$obj"
  OBJS+=("$obj")
done
pass=0 fail=0
for target in bundle spdx card jinja tokenizer chunkmap safetensors http pack; do
  bin="$OUT/${target}_fuzzer"
  clang++ $FLAGS -fsanitize=fuzzer "$SRC/tests/fuzz/${target}_fuzzer.cc" "${OBJS[@]}" -lcrypto -lyaml-cpp -lpcre2-8 -licuuc -lcpp-httplib -lpthread -o "$bin"
  mkdir -p "$OUT/corpus-$target"
  if "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -max_len=4096 -print_final_stats=1 "$OUT/corpus-$target" \
       > "$OUT/$target.log" 2>&1; then
    pass=$((pass + 1))
    echo "fuzz $target: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/$target.log" | tail -1 || true) ok"
  else
    fail=$((fail + 1))
    echo "fuzz $target: FAILED"; tail -30 "$OUT/$target.log"
  fi
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
