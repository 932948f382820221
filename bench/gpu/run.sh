#!/usr/bin/env bash
# The one script for a CUDA machine (bench/gpu/README.md): builds hubnode with the CUDA backend,
# runs its tests on the device, then benchmarks decode on the GPU against the memory roofline and
# against the CPU backend in the same run, and prints one markdown table. Written for an H100
# (16 cores) within 8 minutes in all: every step has a timeout inside a global deadline (BUDGET_S),
# prints its elapsed seconds, and a failed step is reported without stopping the others, so the
# table always comes out.
#   1. configure + build into build-gpu/ (Ninja, Release, HUBNODE_CUDA=ON, sm_90 only; targets
#      hubnode cuda_backend_test cuda_membw membw)
#   2. probe the device (a tiny model on --backend cuda). Without one: the CPU-only checks (membw,
#      tests/runtime/cuda_e2e.sh skips with 77), "device absent", exit 77.
#   3. cuda_backend_test (every op against the CPU backend), tests/runtime/cuda_e2e.sh
#   4. benchmark, after bench/runtime_bench.sh: a prompt of 128 random ids, 128 tokens generated
#      with ignore_eos, the warm run (the second of two in one process) of
#      - bench: the OLMoE-shaped bf16 bench model (`testmodel --size bench`, 1.05 GB; the largest
#        preset), and
#      - 7b: OLMoE-1B-7B's shape (hidden 2048, 16 layers of 64 experts of width 1024, top-8, 16
#        heads; 13.4 GB bf16, a sixth of an H100). Generated and imported in ~1 min on 16 cores
#        (measured: ~15 core-seconds per GB on this project's 2-core VM), run from the store, each
#        process loading the experts it routes to. With less time left than it needs, it falls back
#        to 8 layers (6.7 GB), then is skipped: the table says which (BIG_LAYERS=N forces one).
#      at batch 1 (`run --stats`) and batch 8 (8 concurrent streamed greedy requests to `serve
#      --max-batch 8`: `run` decodes one sequence; bench/gpu/batch.py measures the aggregate), with
#      --gpu-expert-budget 100%, 50% and 25% (host expert cache: all experts; no raw shard copies).
#      roofline tok/s = cuda_membw's device copy bandwidth / active weights bytes per token (from
#      --stats); both membw programs count bytes copied per second (each byte read once and written
#      once, counted once), so a read-only decode can exceed 1 on the GPU.
#      Baseline: the CPU backend (all cores, its default matmul precision) on the bench model at
#      batch 1, in the same run: its roofline from bench/membw, and the GPU rows' decode / CPU.
# Everything is logged (per step) to $OUT when set (the device runner copies it back), else to
# BUILD/gpu-run; the table also goes to LOG/gpu_results.md. Models and stores live in a temporary
# directory (WORK, removed at the end; ~30 GB at the peak with the 7b model).
# Usage, from the repository root: bench/gpu/run.sh
#   With .gpu/bundle.tar.xz present (bench/gpu/pack.sh, run where the project builds: the device
#   image lacks hubnode's Debian libraries), the bundle's programs run and nothing is built.
#   NO_BUILD=1 BUILD=build bench/gpu/run.sh   use an existing build (no configure, no build)
#   BUDGET_S=450 (seconds for everything), BIG_LAYERS=16|8|0, HUBNODE=path (another binary)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SELF=$ROOT/bench/gpu/run.sh

# --step NAME ARGS...: one step, run by the orchestrator below under `timeout` (a fresh process: a
# timeout kills the step's whole process group, servers included).
if [[ ${1:-} == --step ]]; then
  STEP=$2
  shift 2
else
  STEP=
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/hubnode-gpu.XXXXXX")
  BUNDLE=${BUNDLE:-$ROOT/.gpu/bundle.tar.xz}
  if [[ ${NO_BUILD:-0} != 1 && -f $BUNDLE ]]; then
    # The programs built where the project builds (bench/gpu/pack.sh), laid out as a build tree.
    # Unpacked with Python's tarfile: the device image may have no xz.
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE" "$WORK/bundle"
    BUILD=$WORK/bundle-build
    mkdir -p "$BUILD/hub" "$BUILD/tests/runtime" "$BUILD/bench"
    ln -s "$WORK/bundle/bin/hubnode" "$BUILD/hub/hubnode"
    ln -s "$WORK/bundle/bin/cuda_backend_test" "$BUILD/tests/runtime/cuda_backend_test"
    ln -s "$WORK/bundle/bin/cuda_membw" "$BUILD/bench/cuda_membw"
    ln -s "$WORK/bundle/bin/membw" "$BUILD/bench/membw"
    NO_BUILD=1
    echo "bundle: $(cat "$WORK/bundle/COMMIT" 2> /dev/null | cut -c1-90)"
  fi
  BUILD=$(realpath -m "${BUILD:-$ROOT/build-gpu}")
  export NO_BUILD=${NO_BUILD:-0}
  HUBNODE=$(realpath -m "${HUBNODE:-$BUILD/hub/hubnode}")
  export HUBNODE
  LOG=$(realpath -m "${OUT:-$ROOT/build-gpu/gpu-run}")
  export HUBNODE_DATA=$WORK/data
  THREADS=$(nproc)
  export BUILD LOG WORK THREADS
  export PROMPT_TOKENS=${PROMPT_TOKENS:-128} GEN=${GEN:-128}
  BUDGET_S=${BUDGET_S:-450}
fi
# A python3 with NumPy (the device image's is first on PATH; /usr/bin/python3 here).
if [[ -z ${PY:-} ]]; then
  for PY in /usr/bin/python3 python3; do "$PY" -c 'import numpy' 2> /dev/null && break; done
fi
export PY

# --- steps (each runs in its own process; results go to files under LOG) --------------------------

configure() {
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBNODE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90
}
build() { ninja -C "$BUILD" -j "$THREADS" hubnode cuda_backend_test cuda_membw membw; }

# The device, as the tests find it: a tiny model's first token on --backend cuda. Writes
# LOG/device: "present BACKEND" or "absent REASON"; fails on any other error.
probe() {
  "$HUBNODE" -q testmodel --out "$WORK/probe" --family llama --size tiny --seed 1 > /dev/null
  "$HUBNODE" -q import "$WORK/probe" --repo probe/llama > /dev/null
  if "$HUBNODE" run probe/llama --tokens 1,2 --max-tokens 1 --stats --backend cuda > /dev/null 2> "$WORK/probe.err"; then
    echo "present $(grep '^\[' "$WORK/probe.err" | sed 's/.*; //')" | tee "$LOG/device"
  elif grep -q -e 'no CUDA device' -e 'built without CUDA' "$WORK/probe.err"; then
    echo "absent $(grep -m1 -e 'no CUDA device' -e 'built without CUDA' "$WORK/probe.err")" | tee "$LOG/device"
  else
    cat "$WORK/probe.err"
    return 1
  fi
}

# Copy bandwidths, GB/s (bytes copied per second): the CPU's with every thread, the GPU's.
membw() { "$BUILD/bench/membw" "$THREADS" 1024 | tee "$LOG/bw_cpu"; }
cuda_membw() { "$BUILD/bench/cuda_membw" 1024 10 | tee "$LOG/bw_gpu"; }

# Without a device cuda_membw must say so and exit 2, not print a figure.
membw_absent() {
  local rc=0
  "$BUILD/bench/cuda_membw" 64 1 || rc=$?
  [[ $rc == 2 ]] || { echo "cuda_membw exited $rc without a device, not 2"; return 1; }
}
# Without a device the end-to-end test must skip (77), quickly.
e2e_skips() {
  local rc=0
  "$ROOT/tests/runtime/cuda_e2e.sh" "$HUBNODE" || rc=$?
  [[ $rc == 77 ]] || { echo "cuda_e2e.sh exited $rc without a device, not 77 (skip)"; return 1; }
}
backend_test() { "$BUILD/tests/runtime/cuda_backend_test" --gtest_brief=1; }
e2e() { "$ROOT/tests/runtime/cuda_e2e.sh" "$HUBNODE"; }

# model NAME TESTMODEL-ARGS...: generated, imported as bench/NAME, the directory removed.
model() {
  local name=$1
  shift
  "$HUBNODE" -q testmodel --family olmoe --seed 1 --out "$WORK/$name" "$@" > /dev/null
  du -sh "$WORK/$name"
  "$HUBNODE" -q import "$WORK/$name" --repo "bench/$name" > /dev/null
  rm -rf "${WORK:?}/$name"
}

# locked ERR-FILE: the process failed on the store's lock, held by the previous step's process
# while it exits (killed by its timeout); then waits half a second: the caller tries again.
locked() {
  grep -q 'another hubnode process' "$1" || return 1
  sleep 0.5
}

# row MODEL BACKEND BUDGET: batch 1, the warm run's stats line appended to LOG/rows.
row() {
  local model=$1 backend=$2 budget=$3 line
  local flags=(--backend "$backend")
  [[ $backend == cuda ]] && flags+=(--gpu-expert-budget "$budget")
  until "$HUBNODE" run "bench/$model" --tokens "$(cat "$WORK/prompt")" --max-tokens "$GEN" --ignore-eos --stats \
    --repeat 2 --runtime-threads "$THREADS" --raw-cache-size 0 "${flags[@]}" > /dev/null 2> "$WORK/row.err"; do
    locked "$WORK/row.err" || { cat "$WORK/row.err"; return 1; }
  done
  cat "$WORK/row.err"
  # The stats line, and the prefetch figures of the line after it (next-layer prediction).
  line="$(grep '^\[' "$WORK/row.err" | tail -1) $(grep 'next-layer prediction' "$WORK/row.err" | tail -1)"
  printf '%s\t%s\t1\t%s\tstats\t%s\n' "$model" "$backend" "$budget" "$line" >> "$LOG/rows"
}

# row8 MODEL BUDGET: batch 8 through serve on the device, appended to LOG/rows.
row8() {
  local model=$1 budget=$2 url result
  # Stopped and waited for: the next step's process needs the store's lock.
  trap 'kill "$SERVER" 2> /dev/null; wait "$SERVER" 2> /dev/null' EXIT
  for _ in $(seq 20); do
    "$HUBNODE" serve --listen 127.0.0.1:0 --backend cuda --gpu-expert-budget "$budget" --max-batch 8 \
      --runtime-threads "$THREADS" --raw-cache-size 0 > "$WORK/serve.out" 2> "$WORK/serve.err" &
    SERVER=$!
    for _ in $(seq 600); do
      grep -q serving "$WORK/serve.out" && break
      kill -0 "$SERVER" 2> /dev/null || break  # it exited: serve.err says why
      sleep 0.05
    done
    grep -q serving "$WORK/serve.out" || ! locked "$WORK/serve.err" || continue
    break
  done
  url=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/serve.out")
  [[ -n "$url" ]] || { cat "$WORK/serve.err"; return 1; }
  result=$($PY "$ROOT/bench/gpu/batch.py" "$url" "bench/$model" 8 "$PROMPT_TOKENS" "$GEN" 2)
  echo "$result"
  printf '%s\tcuda\t8\t%s\tbatch\t%s\n' "$model" "$budget" "$result" >> "$LOG/rows"
}

if [[ -n $STEP ]]; then
  "$STEP" "$@"
  exit
fi

# --- the orchestrator ----------------------------------------------------------------------------

mkdir -p "$LOG"
rm -f "$LOG/rows" "$LOG/device" "$LOG/bw_cpu" "$LOG/bw_gpu" "$LOG/steps"
trap 'rm -rf "$WORK"' EXIT
exec > >(tee "$LOG/run.log") 2>&1
DEADLINE=$((SECONDS + BUDGET_S))
RESERVE=10  # seconds kept for the table
failed=0

# step NAME LIMIT [--show] STEP-FUNCTION ARGS...: the step within min(LIMIT, time left), its
# output in LOG/NAME.log (and here with --show; else its tail when it fails). Returns its status.
step() {
  local name=$1 limit=$2 show=0 rc=0 t0=$SECONDS left
  shift 2
  [[ $1 == --show ]] && { show=1; shift; }
  left=$((DEADLINE - SECONDS - RESERVE))
  if ((left < 5)); then
    echo "-- $name: not run (out of time, ${SECONDS}s elapsed)"
    printf '%s\tnot run (out of time)\t0\n' "$name" >> "$LOG/steps"
    failed=1
    return 1
  fi
  ((limit > left)) && limit=$left
  echo "== $name (limit ${limit}s, ${SECONDS}s elapsed)"
  if ((show)); then
    timeout -k 5 "$limit" bash "$SELF" --step "$@" 2>&1 | tee "$LOG/$name.log" || rc=${PIPESTATUS[0]}
  else
    timeout -k 5 "$limit" bash "$SELF" --step "$@" > "$LOG/$name.log" 2>&1 || rc=$?
  fi
  local status=ok
  if ((rc == 124 || rc == 137)); then
    status="TIMED OUT after ${limit}s"
  elif ((rc != 0)); then
    status="FAILED (exit $rc)"
  fi
  echo "-- $name: $status in $((SECONDS - t0))s"
  if ((rc != 0)); then
    ((show)) || tail -20 "$LOG/$name.log" | sed 's/^/   /'
    failed=1
  fi
  printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - t0))" >> "$LOG/steps"
  return "$rc"
}

echo "hubnode GPU run: $(git -C "$ROOT" log -1 --format='%h %s' 2> /dev/null | cut -c1-80), $THREADS cores, budget ${BUDGET_S}s"
echo "build $BUILD, log $LOG, work $WORK"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG/gpu" || true
else
  echo "nvidia-smi: not installed" | tee "$LOG/gpu"
fi

if [[ $NO_BUILD != 1 ]]; then
  if step configure 120 configure; then step build 330 build || true; fi
fi
[[ -x $HUBNODE ]] || { echo "no hubnode at $HUBNODE: nothing more can run"; exit 1; }
step probe 30 --show probe || true
step membw 30 membw || true
if [[ $(cut -d' ' -f1 "$LOG/device" 2> /dev/null) == absent ]]; then
  step cuda_e2e_skips 30 --show e2e_skips || true
  [[ -x $BUILD/bench/cuda_membw ]] && { step cuda_membw_absent 30 --show membw_absent || true; }
  [[ -x $BUILD/tests/runtime/cuda_backend_test ]] && { step cuda_backend_test_skips 60 backend_test || true; }
  echo
  echo "device absent: $(cut -d' ' -f2- "$LOG/device")"
  echo "(CPU-only checks: $(grep -c $'\tok\t' "$LOG/steps") of $(wc -l < "$LOG/steps") steps ok; nothing was run on a GPU)"
  ((failed)) && exit 1
  exit 77
fi

step cuda_backend_test 90 --show backend_test || true
step cuda_e2e 150 --show e2e || true
step cuda_membw 30 cuda_membw || true
# Without a device that runs (the probe failed otherwise), every GPU row would fail: no benchmark.
if [[ $(cut -d' ' -f1 "$LOG/device" 2> /dev/null) != present ]]; then
  echo "the device probe failed (LOG/probe.log): no benchmark"
  BENCH=0
fi

# The benchmark. The prompt: PROMPT_TOKENS random ids below 300 (every vocabulary has them).
$PY -c "import random; r = random.Random(1); print(','.join(str(r.randrange(3, 300)) for _ in range($PROMPT_TOKENS)))" > "$WORK/prompt"
if ((${BENCH:-1})) && step model_bench 60 model bench --size bench; then
  step cpu_bench_100 60 row bench cpu 100% || true
  for budget in 100% 50% 25%; do step "gpu_bench_${budget%\%}_b1" 40 row bench cuda "$budget" || true; done
  for budget in 100% 50% 25%; do step "gpu_bench_${budget%\%}_b8" 40 row8 bench "$budget" || true; done
fi
# The 7b model: as many layers as the time left allows (~4 s a layer to generate and import, and
# six processes that load its experts), unless BIG_LAYERS says.
left=$((DEADLINE - SECONDS - RESERVE))
layers=0
((left >= 120)) && layers=8
((left >= 200)) && layers=16
layers=${BIG_LAYERS:-$layers}
((${BENCH:-1})) || layers=0
echo "7b model: $layers layers (${left}s left)"
echo "$layers" > "$LOG/big_layers"
if ((layers > 0)) && step model_7b 120 model 7b --size bench --hidden 2048 --layers "$layers" \
  --experts 64 --top-k 8 --moe-intermediate 1024 --heads 16 --kv-heads 16 --shards 16; then
  for budget in 100% 50% 25%; do step "gpu_7b_${budget%\%}_b1" 60 row 7b cuda "$budget" || true; done
  for budget in 100% 50% 25%; do step "gpu_7b_${budget%\%}_b8" 60 row8 7b "$budget" || true; done
fi

# --- the table -----------------------------------------------------------------------------------
$PY - "$LOG" "$THREADS" "$PROMPT_TOKENS" "$GEN" << 'PY' | tee "$LOG/gpu_results.md"
import json, os, re, sys
log, threads, prompt, gen = sys.argv[1:]
def read(name, default=""):
    p = os.path.join(log, name)
    return open(p).read().strip() if os.path.exists(p) else default
gpu, device = read("gpu", "?"), read("device", "? (probe failed)")
bw = {"cpu": read("bw_cpu"), "cuda": read("bw_gpu")}
layers = read("big_layers", "0")
rows = {}
for line in read("rows").splitlines():
    model, backend, batch, budget, kind, data = line.split("\t", 5)
    r = {}
    if kind == "stats":
        num = lambda pat: float(re.search(pat, data).group(1))
        hits, misses = num(r"experts: (\d+) hits"), num(r" (\d+) misses")
        r = dict(prefill=num(r"prompt \d+ tokens \(([\d.]+) tok/s\)"), decode=num(r"generated \d+ tokens \(([\d.]+) tok/s\)"),
                 hit=hits / (hits + misses) if hits + misses else 1.0, active=num(r"active weights ([\d.]+) MiB/token"))
        ahead = re.search(r"(\d+) loaded ahead, (\d+) of those used", data)
        if ahead and int(ahead.group(1)):
            r["prefetch"] = f"{int(ahead.group(2)) / int(ahead.group(1)):.2f} of {ahead.group(1)}"
    else:
        d = json.loads(data)
        r = dict(prefill=d["prefill_tps"], decode=d["decode_tps"])
    rows[(model, backend, batch, budget)] = r
steps = dict((l.split("\t")[0], l.split("\t")[1]) for l in read("steps").splitlines())
print(f"\n## hubnode CUDA backend: {gpu}")
print(f"\ndevice: {device}; {threads} cores; prompt {prompt} random ids, {gen} tokens generated (ignore_eos), "
      f"warm run. Copy bandwidth (bytes copied/s): GPU {bw['cuda'] or '?'} GB/s (cuda_membw), CPU {bw['cpu'] or '?'} GB/s "
      f"(membw, {threads} threads). Models: bench = OLMoE-shaped bf16 1.05 GB; 7b = OLMoE-1B-7B's shape with "
      f"{layers} of its 16 layers, bf16.\n")
print("| backend | model | batch | GPU expert budget | prefill tok/s | decode tok/s | expert hit rate | prefetched experts used | roofline tok/s | decode / roofline | decode / CPU |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
cpu = rows.get(("bench", "cpu", "1", "100%"))
order = [("bench", "cpu", "1", "100%")]
for model in ("bench", "7b"):
    for batch in ("1", "8"):
        for budget in ("100%", "50%", "25%"):
            order.append((model, "cuda", batch, budget))
for key in order:
    model, backend, batch, budget = key
    if model == "7b" and layers == "0":
        continue
    name = f"{'cpu' if backend == 'cpu' else 'gpu'}_{model}_{budget[:-1]}_b{batch}"
    if backend == "cpu":
        name = "cpu_bench_100"
    label = f"cpu ({threads} threads)" if backend == "cpu" else "cuda"
    b = "—" if backend == "cpu" else budget
    r = rows.get(key)
    if r is None:
        print(f"| {label} | {model} | {batch} | {b} | {steps.get(name, 'not run')} | | | | | | |")
        continue
    roof = ratio = "—"
    if "active" in r and bw[backend]:
        roofv = float(bw[backend]) * 1e9 / (r["active"] * 1048576)
        roof, ratio = f"{roofv:.1f}", f"{r['decode'] / roofv:.2f}"
    hit = f"{r['hit']:.3f}" if "hit" in r else "—"
    vs = "—"  # the baseline is the CPU at batch 1 on the bench model: compared with the same only
    if cpu and cpu["decode"] and model == "bench" and backend == "cuda" and batch == "1":
        vs = f"{r['decode'] / cpu['decode']:.1f}×"
    print(f"| {label} | {model} | {batch} | {b} | {r['prefill']:.1f} | {r['decode']:.1f} | {hit} | {r.get('prefetch', '—')} | {roof} | {ratio} | {vs} |")
print("\nBatch 8: 8 concurrent streamed requests to `serve --max-batch 8` (bench/gpu/batch.py), aggregate tok/s "
      "while all 8 decode; serve reports no expert hits or active bytes, so no hit rate or roofline there. "
      "decode / CPU: batch 1 on the bench model against the CPU's batch 1 (its own roofline: membw).")
print("\n| step | status | seconds |\n|---|---|---|")
for l in read("steps").splitlines():
    print("| " + " | ".join(l.split("\t")) + " |")
PY
echo "total ${SECONDS}s; log in $LOG"
((failed == 0))
