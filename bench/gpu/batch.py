#!/usr/bin/python3
"""Aggregate prefill and decode speed of N concurrent greedy requests to a hubnode serve.

`hubnode run` decodes one sequence; a batch is what `serve` makes of concurrent requests (one
forward pass per step over every active request, up to --max-batch). This client sends N streamed
/v1/completions at once (token-id prompts of PROMPT_TOKENS random ids, a different seed each,
MAX_TOKENS each with ignore_eos, temperature 0, logprobs 1 so that every streamed token is
counted), ROUNDS times with the same prompts, and measures the last round (warm: earlier rounds
loaded the experts):
  prefill tok/s = all prompt tokens / (the last request's first token - the send)
  decode tok/s  = tokens streamed while all N were decoding (from the last first token to the first
                  request's end) / that time; all N requests must get MAX_TOKENS tokens.
Prints one JSON line: {"prefill_tps", "decode_tps", "tokens", "seconds", "expert_loads"}.
Usage: batch.py URL MODEL N PROMPT_TOKENS MAX_TOKENS [ROUNDS=2]
"""
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse


def stream(url, body, out):
    """POSTs one streamed completion; appends (time, tokens, expert_loads) per data chunk to out."""
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    conn.request("POST", "/v1/completions", body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: {"):
            continue
        d = json.loads(line[6:])
        n = sum(len((c.get("logprobs") or {}).get("tokens") or []) for c in d.get("choices", []))
        out.append((time.monotonic(), n, (d.get("hubnode") or {}).get("expertLoads", 0)))
    conn.close()


def one_round(url, model, prompts, max_tokens):
    results = [[] for _ in prompts]
    errors = []
    start = threading.Barrier(len(prompts) + 1)

    def worker(i):
        body = {"model": model, "prompt": prompts[i], "max_tokens": max_tokens, "ignore_eos": True,
                "temperature": 0, "logprobs": 1, "stream": True}
        start.wait()
        try:
            stream(url, body, results[i])
        except Exception as e:  # reported below, with the request's number
            errors.append(f"request {i}: {e}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))
    for i, r in enumerate(results):
        got = sum(n for _, n, _ in r)
        if got != max_tokens:
            raise RuntimeError(f"request {i}: {got} tokens streamed, expected {max_tokens}")
    return t0, results


def main():
    url, model, n, prompt_tokens, max_tokens = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    rounds = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    prompts = []
    for i in range(n):
        r = random.Random(100 + i)
        prompts.append([r.randrange(3, 300) for _ in range(prompt_tokens)])
    for k in range(rounds):
        t0, results = one_round(url, model, prompts, max_tokens)
        print(f"round {k + 1} of {rounds}: {time.monotonic() - t0:.2f} s", file=sys.stderr)
    firsts = [next(t for t, k, _ in r if k > 0) for r in results]
    lasts = [r[-1][0] for r in results]
    lo, hi = max(firsts), min(lasts)
    if hi > lo:
        decoded = sum(k for r in results for t, k, _ in r if lo < t <= hi)
        decode_tps = decoded / (hi - lo)
    else:  # the requests did not overlap while decoding: all tokens after each one's first
        decoded = sum(sum(k for _, k, _ in r) - 1 for r in results)
        decode_tps = decoded / (max(lasts) - lo) if max(lasts) > lo else 0.0
    print(json.dumps({"prefill_tps": n * prompt_tokens / (lo - t0), "decode_tps": decode_tps,
                      "tokens": sum(k for r in results for _, k, _ in r), "seconds": max(lasts) - t0,
                      "expert_loads": sum(r[-1][2] for r in results)}))


if __name__ == "__main__":
    main()
