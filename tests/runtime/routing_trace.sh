#!/usr/bin/env bash
# `hubnode run --routing-trace` and the next-layer prediction figures of `--stats`, on the trained
# demo model (models/kjv-moe, a router that has learned something): the trace has one record per
# token and layer with top-k distinct expert ids in range, the predictions where a next MoE layer
# exists, the routing does not depend on the cache (budget, prefetch), and the precision and recall
# --stats prints are the ones the trace gives. A trace file that cannot be written is a clear error.
# Prints "N passed, M failed".
set -uo pipefail
HUBNODE=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODEL=$ROOT/models/kjv-moe
[[ -f "$MODEL/model.safetensors" ]] || { echo "SKIP: models/kjv-moe is not in this checkout"; exit 77; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source "$ROOT/tests/lib.sh"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }

hub import "$MODEL" --repo demo/kjv-moe > /dev/null
check "imports" 0 $?
GEN=24
run() {  # run TRACE [flags]: greedy, GEN tokens; stats on stderr into TRACE.err
  local trace=$1
  shift
  hub run demo/kjv-moe --prompt "And the LORD said unto Moses" --max-tokens $GEN --ignore-eos --stats \
    --runtime-threads 2 --routing-trace "$trace" "$@" > /dev/null 2> "$trace.err"
}
run "$WORK/a.jsonl" --expert-budget 25%
check "run with a trace at a 25% budget" 0 $?
run "$WORK/b.jsonl" --no-prefetch
check "run with a trace without prefetch" 0 $?
run "$WORK/c.jsonl" --repeat 2
check "run with a trace, twice" 0 $?

RESULT=$(/usr/bin/python3 - "$WORK" "$MODEL/config.json" "$GEN" <<'EOF'
import json, re, sys
work, cfg, gen = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
L, E, K = cfg["num_hidden_layers"], cfg["num_experts"], cfg["num_experts_per_tok"]
def load(name):
    return [json.loads(line) for line in open("%s/%s" % (work, name))]
out = {}
a, b, c = load("a.jsonl"), load("b.jsonl"), load("c.jsonl")
positions = sorted({r["pos"] for r in a})
prompt = len(positions) - (gen - 1)  # the last generated token is never fed back
out["records"] = len(a) == len(positions) * L and positions == list(range(len(positions))) and prompt > 1
out["order"] = [(r["pos"], r["layer"]) for r in a if r["pos"] >= prompt] == \
    [(p, l) for p in range(prompt, len(positions)) for l in range(L)]
ok = True
for r in a + b + c:
    for key in ("routed", "predicted"):
        if key in r:
            ids = r[key]
            ok &= len(ids) == K and len(set(ids)) == K and all(0 <= e < E for e in ids)
    ok &= ("predicted" in r) == (r["layer"] < L - 1)
out["ids"] = ok
# Routing is the model's, whatever the cache holds or prefetches.
key = lambda rs: [(r["pos"], r["layer"], r["routed"]) for r in rs]
out["same_routing"] = key(a) == key(b) and key(c) == key([dict(r, run=0) for r in a] + [dict(r, run=1) for r in a])
out["runs"] = sorted({r["run"] for r in c}) == [0, 1]
# Precision and recall from the trace: per forward pass (the prompt is one pass, then one per
# generated token) and layer, over the pass's distinct experts, as the engine counts them.
def figures(records):
    passes = {}
    for r in records:
        passes.setdefault(0 if r["pos"] < prompt else r["pos"], []).append(r)
    predicted = routed = correct = 0
    for rs in passes.values():
        for l in range(L - 1):
            want = {e for r in rs if r["layer"] == l for e in r["predicted"]}
            used = {e for r in rs if r["layer"] == l + 1 for e in r["routed"]}
            predicted += len(want)
            routed += len(used)
            correct += len(want & used)
    return correct / predicted, correct / routed
def printed(name):
    m = re.search(r"precision ([0-9.]+)\); \d+ routed at predicted layers \(recall ([0-9.]+)\)",
                  open("%s/%s.err" % (work, name)).read())
    return (float(m.group(1)), float(m.group(2))) if m else None
p, r = figures(a)
out["bounds"] = 0 <= p <= 1 and 0 <= r <= 1
out["stats_match_trace"] = printed("a.jsonl") is not None and all(
    abs(x - y) < 5e-4 for x, y in zip(printed("a.jsonl"), (p, r)))
out["no_prefetch_predicts"] = printed("b.jsonl") == printed("a.jsonl")
out["trained_router_predicts"] = p > 0.5
print(json.dumps(out, sort_keys=True))
print("precision %.3f recall %.3f, %d positions (prompt %d) x %d layers" % (p, r, len(positions), prompt, L), file=sys.stderr)
EOF
)
echo "$RESULT"
field() { /usr/bin/python3 -c "import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2]))" "$RESULT" "$1"; }
check "one record per token and layer, positions in order" True "$(field records)"
check "generated tokens: one pass each, every layer in order" True "$(field order)"
check "top-k distinct expert ids in range; predictions wherever a next layer exists" True "$(field ids)"
check "routing does not depend on the budget, prefetch or a repeat" True "$(field same_routing)"
check "--repeat numbers its runs" True "$(field runs)"
check "precision and recall within [0, 1]" True "$(field bounds)"
check "--stats precision and recall are the trace's" True "$(field stats_match_trace)"
check "with a trace, predictions are made (and counted) even without prefetch" True "$(field no_prefetch_predicts)"
check "the trained router predicts the next layer better than chance (precision > 0.5)" True "$(field trained_router_predicts)"

hub run demo/kjv-moe --prompt "And" --max-tokens 2 --routing-trace "$WORK/missing/t.jsonl" > /dev/null 2> "$WORK/err"
check "a trace in a missing directory: non-zero exit" 1 $?
check "... naming the flag and the path" True \
  "$(grep -q -- "--routing-trace: cannot create $WORK/missing/t.jsonl" "$WORK/err" && echo True)"
hub run demo/kjv-moe --prompt "And" --max-tokens 2 --routing-trace "$WORK" > /dev/null 2> "$WORK/err"
check "a directory as the trace: non-zero exit" 1 $?
hub run demo/kjv-moe --prompt "And" --max-tokens 2 --routing-trace /dev/full > /dev/null 2> "$WORK/err"
check "a full device: the write error is reported" "1 True" "$? $(grep -q -- "--routing-trace: cannot write" "$WORK/err" && echo True)"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
