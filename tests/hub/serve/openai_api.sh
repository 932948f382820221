#!/usr/bin/env bash
# The OpenAI-compatible API end to end with curl against a real `hubnode serve` on 127.0.0.1:
# /v1/models, chat and text completions streamed and not (streamed chunks with the expert loads
# since the request), token-id prompts, logprobs, stop
# strings, seeds, concurrent requests, cancellation when the client leaves, the policy gate and
# private repos, and clear 4xx errors. Prints "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../../lib.sh"
work_dir "$1"
hub() { "$HUBNODE" --data "$WORK/data" -q "$@"; }
jq_() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
post() { curl -s -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: application/json' "$@"; }

hub testmodel --family olmoe --size small --seed 5 --out "$WORK/m" > /dev/null
hub import "$WORK/m" --repo org/moe > /dev/null
hub import "$WORK/m" --repo org/secret --private > /dev/null
# Stored, then denied by a policy set afterwards; and one held for review at import.
hub testmodel --family llama --seed 6 --out "$WORK/d" > /dev/null
hub import "$WORK/d" --repo denied/llama > /dev/null
hub trust policy --namespace denied --id apache-2.0 --verdict deny > /dev/null
hub trust policy --namespace held --id apache-2.0 --verdict review > /dev/null
hub import "$WORK/d" --repo held/llama > /dev/null 2>&1 || true
TOKEN=$(hub token create --name t --scope read)
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --runtime-threads 2 --max-batch 4 > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")

# /v1/models lists the stored models of a supported architecture visible to the caller.
curl -s "$U/v1/models" > "$WORK/models"
check "models object" list "$(jq_ 'd["object"]' < "$WORK/models")"
check "models lists org/moe" True "$(jq_ '"org/moe" in [m["id"] for m in d["data"]]' < "$WORK/models")"
check "models hides private" False "$(jq_ '"org/secret" in [m["id"] for m in d["data"]]' < "$WORK/models")"

# Chat completion, not streamed, greedy: the OpenAI shape, usage, a finish reason.
BODY='{"model":"org/moe","messages":[{"role":"user","content":"Hello there"}],"max_tokens":12,"temperature":0}'
check "chat status" 200 "$(post "$U/v1/chat/completions" -d "$BODY")"
cp "$WORK/body" "$WORK/chat1"
check "chat object" chat.completion "$(jq_ 'd["object"]' < "$WORK/chat1")"
check "chat role" assistant "$(jq_ 'd["choices"][0]["message"]["role"]' < "$WORK/chat1")"
check "chat finish" True "$(jq_ 'd["choices"][0]["finish_reason"] in ("stop","length")' < "$WORK/chat1")"
check "chat usage sums" True "$(jq_ 'd["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"] and d["usage"]["completion_tokens"] >= 1' < "$WORK/chat1")"
check "chat id" True "$(jq_ 'd["id"].startswith("chatcmpl-")' < "$WORK/chat1")"
# Greedy is deterministic.
post "$U/v1/chat/completions" -d "$BODY" > /dev/null
check "greedy repeatable" "$(jq_ 'd["choices"][0]["message"]["content"]' < "$WORK/chat1")" "$(jq_ 'd["choices"][0]["message"]["content"]' < "$WORK/body")"

# Streamed: chunks with deltas whose concatenation equals the non-streamed text, then [DONE].
curl -sN -H 'Content-Type: application/json' "$U/v1/chat/completions" \
  -d '{"model":"org/moe","messages":[{"role":"user","content":"Hello there"}],"max_tokens":12,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' > "$WORK/stream"
check "stream ends with DONE" "data: [DONE]" "$(grep '^data:' "$WORK/stream" | tail -1)"
STREAMED=$(grep '^data: {' "$WORK/stream" | sed 's/^data: //' | /usr/bin/python3 -c '
import json, sys
text = ""
for line in sys.stdin:
    d = json.loads(line)
    for c in d["choices"]:
        text += c["delta"].get("content", "")
print(text)')
check "stream text = non-stream text" "$(jq_ 'd["choices"][0]["message"]["content"]' < "$WORK/chat1")" "$STREAMED"
check "stream chunk object" chat.completion.chunk "$(grep '^data: {' "$WORK/stream" | head -1 | sed 's/^data: //' | jq_ 'd["object"]')"
check "stream usage chunk" True "$(grep '^data: {' "$WORK/stream" | tail -1 | sed 's/^data: //' | jq_ 'd["choices"] == [] and d["usage"]["completion_tokens"] >= 1')"
# Streamed chunks carry the experts loaded since the request was submitted (a hubnode field);
# the non-streamed answer does not.
# loads FILE: "True" when every data chunk of FILE has hubnode.expertLoads, a non-negative integer,
# and expertLoadSeconds, a non-negative number; then the expertLoads of each chunk.
loads() { grep '^data: {' "$1" | sed 's/^data: //' | /usr/bin/python3 -c '
import json, sys
hs = [json.loads(line).get("hubnode") for line in sys.stdin]
ok = bool(hs) and all(isinstance(h, dict) and type(h.get("expertLoads")) is int and h["expertLoads"] >= 0
                      and type(h.get("expertLoadSeconds")) in (int, float) and h["expertLoadSeconds"] >= 0 for h in hs)
print(ok, *[h["expertLoads"] for h in hs] if ok else [])'; }
check "every streamed chat chunk: hubnode.expertLoads a non-negative integer" True "$(loads "$WORK/stream" | cut -d' ' -f1)"
check "the non-streamed answer has no hubnode field" False "$(jq_ '"hubnode" in d' < "$WORK/chat1")"

# Completions with a token-id prompt, ignore_eos and max_tokens: exactly max_tokens tokens.
check "completions status" 200 "$(post "$U/v1/completions" -d '{"model":"org/moe","prompt":[5,6,7,8],"max_tokens":9,"ignore_eos":true,"temperature":0.8,"seed":11}')"
cp "$WORK/body" "$WORK/c1"
check "completions object" text_completion "$(jq_ 'd["object"]' < "$WORK/c1")"
check "completions length" "9 length 4" "$(jq_ 'str(d["usage"]["completion_tokens"]) + " " + d["choices"][0]["finish_reason"] + " " + str(d["usage"]["prompt_tokens"])' < "$WORK/c1")"
post "$U/v1/completions" -d '{"model":"org/moe","prompt":[5,6,7,8],"max_tokens":9,"ignore_eos":true,"temperature":0.8,"seed":11}' > /dev/null
check "same seed, same text" "$(jq_ 'd["choices"][0]["text"]' < "$WORK/c1")" "$(jq_ 'd["choices"][0]["text"]' < "$WORK/body")"

# Logprobs in both shapes.
post "$U/v1/chat/completions" -d '{"model":"org/moe","messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"temperature":0,"logprobs":true,"top_logprobs":3}' > /dev/null
check "chat logprobs" True "$(jq_ 'len(d["choices"][0]["logprobs"]["content"]) >= 1 and len(d["choices"][0]["logprobs"]["content"][0]["top_logprobs"]) == 3 and d["choices"][0]["logprobs"]["content"][0]["logprob"] <= 0' < "$WORK/body")"
check "greedy token is the top logprob" True "$(jq_ 'abs(d["choices"][0]["logprobs"]["content"][0]["logprob"] - d["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0]["logprob"]) < 1e-6' < "$WORK/body")"
post "$U/v1/completions" -d '{"model":"org/moe","prompt":"The weights","max_tokens":3,"logprobs":2,"ignore_eos":true}' > /dev/null
check "completion logprobs" True "$(jq_ 'len(d["choices"][0]["logprobs"]["tokens"]) == 3 and len(d["choices"][0]["logprobs"]["top_logprobs"][0]) >= 1' < "$WORK/body")"
# Log-prob bytes are a token's raw bytes: a byte-level token that is part of a character carries
# its own bytes, not U+FFFD's. Every bytes array must be the bytes of a vocabulary token.
post "$U/v1/chat/completions" -d '{"model":"org/moe","messages":[{"role":"user","content":"h\u00e9llo \u2603 na\u00efve \u4e16\u754c"}],"max_tokens":8,"temperature":0,"logprobs":true,"top_logprobs":20,"ignore_eos":true}' > /dev/null
check "log-prob bytes are vocabulary tokens' raw bytes, partial characters included" "True True" "$(/usr/bin/python3 - "$WORK/m/tokenizer.json" "$WORK/body" <<'PY'
import json, sys
vocab = json.load(open(sys.argv[1]))["model"]["vocab"]
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
cs = bs[:]
n = 0
for b in range(256):
    if b not in bs:
        bs.append(b); cs.append(256 + n); n += 1
dec = {chr(c): b for b, c in zip(bs, cs)}
raw = {bytes(dec[ch] for ch in tok) for tok in vocab if all(ch in dec for ch in tok)}
d = json.load(open(sys.argv[2]))
seen = []
for c in d["choices"][0]["logprobs"]["content"]:
    seen.append(bytes(c["bytes"]))
    seen += [bytes(t["bytes"]) for t in c["top_logprobs"]]
def valid(b):
    try: b.decode("utf-8"); return True
    except UnicodeDecodeError: return False
print(all(b in raw for b in seen), any(not valid(b) for b in seen))
PY
)"
# text_offset counts characters, and streamed chunks carry the offset into the whole text.
curl -sN -H 'Content-Type: application/json' "$U/v1/completions" \
  -d '{"model":"org/moe","prompt":"\u00e9t\u00e9 \u2603","max_tokens":10,"logprobs":1,"ignore_eos":true,"temperature":0,"stream":true}' > "$WORK/lpstream"
check "streamed text_offset: characters into the whole text" True "$(grep '^data: {' "$WORK/lpstream" | sed 's/^data: //' | /usr/bin/python3 -c '
import json, sys
text, ok, n = "", True, 0
for line in sys.stdin:
    c = json.loads(line)["choices"][0]
    lp = c.get("logprobs")
    if lp:
        n += len(lp["tokens"])
        ok = ok and lp["text_offset"][0] == len(text)
    text += c["text"]
print(ok and n == 10)')"
check "every streamed completions chunk: hubnode.expertLoads too" True "$(loads "$WORK/lpstream" | cut -d' ' -f1)"
# echo with logprobs: the prompt first, its tokens and log-probs (the first null), then the completion.
post "$U/v1/completions" -d '{"model":"org/moe","prompt":"The weights of","max_tokens":3,"logprobs":2,"echo":true,"ignore_eos":true,"temperature":0}' > /dev/null
check "echo + logprobs: prompt and completion tokens, the first log-prob null" True "$(jq_ '
(lambda c, u: c["text"].startswith("The weights of") and len(c["logprobs"]["tokens"]) == u["prompt_tokens"] + u["completion_tokens"]
 and c["logprobs"]["token_logprobs"][0] is None and c["logprobs"]["top_logprobs"][0] is None
 and all(x <= 0 for x in c["logprobs"]["token_logprobs"][1:])
 and c["logprobs"]["text_offset"] == sorted(c["logprobs"]["text_offset"])
 and "".join(c["logprobs"]["tokens"]) == c["text"])(d["choices"][0], d["usage"])' < "$WORK/body")"
post "$U/v1/completions" -d '{"model":"org/moe","prompt":"The weights of","max_tokens":3,"echo":true,"ignore_eos":true,"temperature":0}' > /dev/null
check "echo without logprobs: the prompt, then the text" True "$(jq_ 'd["choices"][0]["text"].startswith("The weights of") and d["choices"][0]["logprobs"] is None' < "$WORK/body")"

# A stop string cuts the text before it.
FULL=$(post "$U/v1/completions" -d '{"model":"org/moe","prompt":[1,2,3],"max_tokens":16,"ignore_eos":true,"temperature":0}' > /dev/null; jq_ 'd["choices"][0]["text"]' < "$WORK/body")
STOP=$(/usr/bin/python3 -c "import sys; t=sys.argv[1]; print(t[len(t)//2:len(t)//2+2] if len(t) > 4 else '')" "$FULL")
if [[ -n "$STOP" ]]; then
  post "$U/v1/completions" -d "$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"model":"org/moe","prompt":[1,2,3],"max_tokens":16,"ignore_eos":True,"temperature":0,"stop":[sys.argv[1]]}))' "$STOP")" > /dev/null
  check "stop string" "$(/usr/bin/python3 -c "import sys; print(sys.argv[1][:sys.argv[1].find(sys.argv[2])])" "$FULL" "$STOP") stop" "$(jq_ 'd["choices"][0]["text"] + " " + d["choices"][0]["finish_reason"]' < "$WORK/body")"
fi

# Several concurrent requests (batched by the engine) all complete, each with its own text.
for i in 1 2 3 4 5 6; do
  curl -s -H 'Content-Type: application/json' "$U/v1/completions" \
    -d "{\"model\":\"org/moe\",\"prompt\":[$i,9,$i],\"max_tokens\":8,\"ignore_eos\":true,\"temperature\":0}" > "$WORK/par$i" &
done
wait $(jobs -p | grep -v "^$PID$") 2>/dev/null
ok=0
for i in 1 2 3 4 5 6; do
  [[ "$(jq_ 'd["usage"]["completion_tokens"]' < "$WORK/par$i" 2>/dev/null)" == 8 ]] && ok=$((ok + 1))
done
check "6 concurrent completions" 6 "$ok"
# A concurrent answer equals the same request made alone.
post "$U/v1/completions" -d '{"model":"org/moe","prompt":[3,9,3],"max_tokens":8,"ignore_eos":true,"temperature":0}' > /dev/null
check "batched = alone" "$(jq_ 'd["choices"][0]["text"]' < "$WORK/par3")" "$(jq_ 'd["choices"][0]["text"]' < "$WORK/body")"

# Cancellation: a client that leaves mid-stream stops its generation (it asked for 3000 tokens).
gen_total() { curl -s "$U/metrics" | sed -n 's/^hubnode_runtime_generated_tokens_total{model="org\/moe"} \([0-9.]*\).*/\1/p' | cut -d. -f1; }
BEFORE=$(gen_total)
curl -sN -m 1 -H 'Content-Type: application/json' "$U/v1/completions" \
  -d '{"model":"org/moe","prompt":[1,2],"max_tokens":3000,"ignore_eos":true,"stream":true}' > /dev/null 2>&1
active=1
for _ in $(seq 50); do
  active=$(curl -s "$U/metrics" | sed -n 's/^hubnode_runtime_active_requests{model="org\/moe"} \([0-9.]*\).*/\1/p' | cut -d. -f1)
  [[ "$active" == 0 ]] && break
  sleep 0.2
done
check "cancelled when the client left" 0 "$active"
AFTER=$(gen_total)
check "generation stopped early" True "$(/usr/bin/python3 -c "print(0 < ${AFTER:-0} - ${BEFORE:-0} < 2999)")"

# Errors: OpenAI-shaped JSON bodies with a code.
check "unknown model" 404 "$(post "$U/v1/chat/completions" -d '{"model":"org/nope","messages":[{"role":"user","content":"x"}]}')"
check "unknown model code" model_not_found "$(jq_ 'd["error"]["code"]' < "$WORK/body")"
check "private model without token" 404 "$(post "$U/v1/completions" -d '{"model":"org/secret","prompt":"x"}')"
# The first request on a model loads its experts: its streamed chunks count them, never going
# down, and the last says as many as the engine's misses (it is the only request there).
curl -sN -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" "$U/v1/completions" \
  -d '{"model":"org/secret","prompt":"Cold experts","max_tokens":6,"ignore_eos":true,"temperature":0,"stream":true}' > "$WORK/cold"
COLD=$(loads "$WORK/cold")
MISSES=$(curl -s -H "Authorization: Bearer $TOKEN" "$U/metrics" | sed -n 's/^hubnode_runtime_expert_misses_total{model="org\/secret"} \([0-9]*\).*/\1/p')
check "a cold model's stream: loads counted, never going down, the last = the engine's misses (> 0)" "True $MISSES True" \
  "$(echo "$COLD" | /usr/bin/python3 -c 'import sys; v = sys.stdin.read().split(); n = [int(x) for x in v[1:]]; print(v[0], n[-1], n == sorted(n) and n[-1] > 0)')"
check "private model with token" 200 "$(post -H "Authorization: Bearer $TOKEN" "$U/v1/completions" -d '{"model":"org/secret","prompt":"x","max_tokens":2}')"
# Metrics name a loaded private model only to a scraper whose token may read it (issue 13, item 3).
check "anonymous metrics do not name a private model" 0 "$(curl -s "$U/metrics" | grep -c 'org/secret')"
check "anonymous metrics name public models" True "$(curl -s "$U/metrics" | grep -q 'model="org/moe"' && echo True)"
check "a reader's metrics name it" True "$(curl -s -H "Authorization: Bearer $TOKEN" "$U/metrics" | grep -q 'model="org/secret"' && echo True)"
check "metrics with a bad token" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer hf_nope' "$U/metrics")"
check "bad temperature" 400 "$(post "$U/v1/completions" -d '{"model":"org/moe","prompt":"x","temperature":5}')"
check "bad temperature names it" True "$(jq_ '"temperature" in d["error"]["message"]' < "$WORK/body")"
check "bad json" 400 "$(post "$U/v1/chat/completions" -d '{"model":')"
check "no messages" 400 "$(post "$U/v1/chat/completions" -d '{"model":"org/moe","messages":[]}')"
check "n=2 refused" 400 "$(post "$U/v1/chat/completions" -d '{"model":"org/moe","messages":[{"role":"user","content":"x"}],"n":2}')"
check "token id out of range" 400 "$(post "$U/v1/completions" -d '{"model":"org/moe","prompt":[1,99999999]}')"
LONG=$(/usr/bin/python3 -c 'print(",".join(["5"] * 5000))')
check "too long prompt" 400 "$(post "$U/v1/completions" -d "{\"model\":\"org/moe\",\"prompt\":[$LONG]}")"
check "too long code" context_length_exceeded "$(jq_ 'd["error"]["code"]' < "$WORK/body")"
check "GET on completions" 405 "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/completions")"
check "policy-denied model" 412 "$(post "$U/v1/completions" -d '{"model":"denied/llama","prompt":"x"}')"
check "denial names the rule" True "$(jq_ '"deny" in d["error"]["message"] and "policy" in d["error"]["message"]' < "$WORK/body")"
check "held model" 412 "$(post "$U/v1/completions" -d '{"model":"held/llama","prompt":"x"}')"
check "held says so" True "$(jq_ '"held for license review" in d["error"]["message"]' < "$WORK/body")"

# Metrics report the expert cache.
check "expert hits in metrics" True "$(curl -s "$U/metrics" | /usr/bin/python3 -c '
import sys
v = [l for l in sys.stdin if l.startswith("hubnode_runtime_expert_hits_total")]
print(bool(v) and float(v[0].split()[-1]) > 0)')"

# /v1/models says how a loaded model runs (loaded above); a model never loaded says only that.
curl -s "$U/v1/models" > "$WORK/models"
check "models: org/moe loaded, on the cpu backend, experts as stored" "True True stored" "$(jq_ '
(lambda h: "%s %s %s" % (h["loaded"], h["backend"].startswith("cpu/"), h["expert_dtype"]))([m for m in d["data"] if m["id"] == "org/moe"][0]["hubnode"])' < "$WORK/models")"
check "models: a model never loaded (denied/llama) says so" "[False]" "$(jq_ '[m["hubnode"]["loaded"] for m in d["data"] if m["id"] == "denied/llama"]' < "$WORK/models")"

kill "$PID"; wait "$PID" 2>/dev/null; PID=

# serve --expert-dtype int4 --expert-budget 25%: completions, and /v1/models reports the dtype and
# a budget of a quarter of the checkpoint's expert bytes.
"$HUBNODE" --data "$WORK/data" serve --listen 127.0.0.1:0 --runtime-threads 2 --expert-dtype int4 --expert-budget 25% \
  > "$WORK/out" 2> "$WORK/err" &
PID=$!
for _ in $(seq 600); do grep -q serving "$WORK/out" && break; sleep 0.05; done
U=$(sed -n 's/^hubnode serving \(http[^ ]*\).*/\1/p' "$WORK/out")
check "int4 experts: completion" 200 "$(post "$U/v1/completions" -d '{"model":"org/moe","prompt":"Hello","max_tokens":6}')"
curl -s "$U/v1/models" > "$WORK/models"
check "int4 experts: /v1/models reports int4 within a smaller budget" "int4 True" "$(jq_ '
(lambda h: h["expert_dtype"] + " " + str(0 < h["expert_budget_bytes"] < h["expert_bytes"]))([m for m in d["data"] if m["id"] == "org/moe"][0]["hubnode"])' < "$WORK/models")"
kill "$PID"; wait "$PID" 2>/dev/null; PID=

# The CLI (the store is free once the server stopped): the same gate, generation, and chat.
hub run denied/llama --prompt x > /dev/null 2> "$WORK/runerr"
check "run refuses a denied model" "1 True" "$? $(grep -q 'not allowed to run by the node.s policy' "$WORK/runerr" && echo True)"
hub run org/moe --tokens 5,6,7 --max-tokens 6 --ignore-eos --stats > "$WORK/run_out" 2> "$WORK/run_err"
check "run generates" "0 True" "$? $(grep -q 'generated 6 tokens' "$WORK/run_err" && echo True)"
printf 'Hello\n/reset\nAgain\n/exit\n' | hub chat org/moe --max-tokens 4 --seed 3 > "$WORK/chat_out" 2> /dev/null
check "chat answers two turns" "0 2" "$? $(grep -c . "$WORK/chat_out")"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
