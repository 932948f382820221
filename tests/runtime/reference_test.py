#!/usr/bin/python3
"""Self-checks for tests/runtime/reference.py. Run: /usr/bin/python3 tests/runtime/reference_test.py

Exits non-zero on failure. Builds small checkpoints in a temp dir with its own safetensors writer;
when /work/main/build/hub/hubnode (or $HUBNODE) exists it also runs generated tiny models of all
nine families (and DeepSeek in fp8) through the CLI. The DeepSeek checks compare with naive code
written from docs/deepseek.md: MLA in its absorbed form with 2x2 rotations, routing by sorted
lists, e4m3 decoding bit by bit."""
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import reference as ref  # noqa: E402

REF = os.path.join(HERE, "reference.py")
HUBNODE = os.environ.get("HUBNODE", os.path.join(HERE, "..", "..", "build", "hub", "hubnode"))
TMP = tempfile.mkdtemp(prefix="reference_test_")


# ----------------------------------------------------------------------------- helpers

def bf16_round(a):
    """Rounds float values to bf16 (nearest even) and returns float64 (exactly representable)."""
    u = np.atleast_1d(np.asarray(a, dtype=np.float32)).view(np.uint32).astype(np.uint64)
    s16, one = np.uint64(16), np.uint64(1)
    u = ((u + np.uint64(0x7FFF) + ((u >> s16) & one)) >> s16) << s16
    return u.astype(np.uint32).view(np.float32).astype(np.float64).reshape(np.shape(a))


def encode(a, dtype):
    if dtype == "F32":
        return np.asarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        return np.asarray(a, dtype="<f2").tobytes()
    if dtype == "BF16":
        u = np.asarray(bf16_round(a), dtype=np.float32).view(np.uint32) >> 16
        return u.astype("<u2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype="F32"):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        raw = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(tensors[name])),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_model(name, config, tensors, dtype="F32", shards=2):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f)
    names = sorted(tensors)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, dtype)
        return d
    wm = {}
    for s in range(shards):
        fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = {n: tensors[n] for n in names[s::shards]}
        write_safetensors(os.path.join(d, fn), part, dtype)
        wm.update({n: fn for n in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": wm}, f)
    return d


RNG = np.random.default_rng(7)


def rnd(*shape, std=0.15, mean=0.0):
    return bf16_round(mean + RNG.normal(0.0, std, size=shape))


def base_config(model_type, **kw):
    c = {"model_type": model_type, "hidden_size": 32, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 48,
         "intermediate_size": 24, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
         "max_position_embeddings": 4096, "tie_word_embeddings": False, "hidden_act": "silu"}
    c.update(kw)
    return c


def attention_weights(c, qkv_bias=False, qk_norm=None):
    H, D, KV, h = c["num_attention_heads"], c["head_dim"], c["num_key_value_heads"], c["hidden_size"]
    t = {}
    for li in range(c["num_hidden_layers"]):
        p = "model.layers.%d." % li
        t[p + "input_layernorm.weight"] = rnd(h, std=0.1, mean=1.0)
        t[p + "post_attention_layernorm.weight"] = rnd(h, std=0.1, mean=1.0)
        for n, rows in (("q", H * D), ("k", KV * D), ("v", KV * D)):
            t[p + "self_attn.%s_proj.weight" % n] = rnd(rows, h)
            if qkv_bias:
                t[p + "self_attn.%s_proj.bias" % n] = rnd(rows)
        t[p + "self_attn.o_proj.weight"] = rnd(h, H * D)
        if qk_norm == "head":
            t[p + "self_attn.q_norm.weight"] = rnd(D, std=0.1, mean=1.0)
            t[p + "self_attn.k_norm.weight"] = rnd(D, std=0.1, mean=1.0)
        elif qk_norm == "full":
            t[p + "self_attn.q_norm.weight"] = rnd(H * D, std=0.1, mean=1.0)
            t[p + "self_attn.k_norm.weight"] = rnd(KV * D, std=0.1, mean=1.0)
    t["model.embed_tokens.weight"] = rnd(c["vocab_size"], h, std=0.5)
    t["model.norm.weight"] = rnd(h, std=0.1, mean=1.0)
    t["lm_head.weight"] = rnd(c["vocab_size"], h, std=0.5)
    return t


def dense_mlp(c, li, width=None):
    w, h = width or c["intermediate_size"], c["hidden_size"]
    return rnd(w, h), rnd(w, h), rnd(h, w)   # gate, up, down


def dense_model(name, model_type, dtype="F32", **kw):
    c = base_config(model_type, **kw)
    t = attention_weights(c, qkv_bias=model_type == "qwen2",
                          qk_norm="head" if model_type == "qwen3" else None)
    for li in range(c["num_hidden_layers"]):
        g, u, d = dense_mlp(c, li)
        p = "model.layers.%d.mlp." % li
        t[p + "gate_proj.weight"], t[p + "up_proj.weight"], t[p + "down_proj.weight"] = g, u, d
    return write_model(name, c, t, dtype), c, t


def run_cli(*args):
    p = subprocess.run([sys.executable, REF] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def run_model(d, tokens, decode=0, rope=False, rs=None, overrides=None, cache=True):
    m = ref.load_model(d, rope, rs, overrides)
    pre, steps = m.run(tokens, decode, use_cache=cache)
    return m, pre, steps


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


def same_run(a, b, tol=1e-10):
    (pa, sa), (pb, sb) = a, b
    assert max_diff(pa, pb) <= tol, "prefill differs by %g" % max_diff(pa, pb)
    assert [t for t, _ in sa] == [t for t, _ in sb], "greedy tokens differ"
    for (_, la), (_, lb) in zip(sa, sb):
        assert max_diff(la, lb) <= tol, "decode logits differ by %g" % max_diff(la, lb)


TOKENS = [3, 17, 5, 40, 22, 9, 31]


# ----------------------------------------------------------------------------- tests

def test_moe_one_expert_equals_dense():
    # Dense llama in F32 vs Mixtral with E=1/top-1 holding the same weights in BF16.
    dd, c, t = dense_model("llama_dense", "llama")
    mc = dict(c, model_type="mixtral", num_local_experts=1, num_experts_per_tok=1,
              sliding_window=None)
    mt = {k: v for k, v in t.items() if ".mlp." not in k}
    for li in range(c["num_hidden_layers"]):
        p, q = "model.layers.%d.mlp." % li, "model.layers.%d.block_sparse_moe." % li
        mt[q + "experts.0.w1.weight"] = t[p + "gate_proj.weight"]
        mt[q + "experts.0.w3.weight"] = t[p + "up_proj.weight"]
        mt[q + "experts.0.w2.weight"] = t[p + "down_proj.weight"]
        mt[q + "gate.weight"] = rnd(1, c["hidden_size"])
    md = write_model("mixtral_e1", mc, mt, "BF16")
    same_run(run_model(dd, TOKENS, 6)[1:], run_model(md, TOKENS, 6)[1:])

    # Qwen3 dense vs Qwen3-MoE E=1/top-1 (norm_topk_prob false: the weight is softmax = 1).
    dd, c, t = dense_model("qwen3_dense", "qwen3")
    mc = dict(c, model_type="qwen3_moe", num_experts=1, num_experts_per_tok=1,
              moe_intermediate_size=c["intermediate_size"], norm_topk_prob=False,
              decoder_sparse_step=1, mlp_only_layers=[])
    mt = {k: v for k, v in t.items() if ".mlp." not in k}
    for li in range(c["num_hidden_layers"]):
        p = "model.layers.%d.mlp." % li
        for n in ("gate_proj", "up_proj", "down_proj"):
            mt[p + "experts.0.%s.weight" % n] = t[p + n + ".weight"]
        mt[p + "gate.weight"] = rnd(1, c["hidden_size"])
    md = write_model("qwen3_moe_e1", mc, mt, "F16", shards=1)
    # F16 storage re-rounds the bf16 values: tiny differences are expected, not exact equality.
    tf16 = {k: np.asarray(v, dtype=np.float16).astype(np.float64) for k, v in t.items()}
    dd16 = write_model("qwen3_dense_f16", c, tf16, "F32")
    same_run(run_model(dd16, TOKENS, 6)[1:], run_model(md, TOKENS, 6)[1:])

    # Qwen2-MoE whose layers are all dense via mlp_only_layers == Qwen2 dense.
    dd, c, t = dense_model("qwen2_dense", "qwen2")
    mc = dict(c, model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2,
              moe_intermediate_size=16, shared_expert_intermediate_size=16,
              decoder_sparse_step=1, mlp_only_layers=[0, 1])
    md = write_model("qwen2_moe_dense", mc, t)
    same_run(run_model(dd, TOKENS, 4)[1:], run_model(md, TOKENS, 4)[1:])
    m = ref.load_model(md)
    assert m.cfg.moe_layers == set()
    m = ref.load_model(md, overrides={"mlp_only_layers": [], "decoder_sparse_step": 2})
    assert m.cfg.moe_layers == {1}, m.cfg.moe_layers


def naive_moe(x, gate, experts, k, renorm, shared=None):
    """Per-token loop, written independently of reference.moe()."""
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        lg = gate @ x[i]
        p = np.exp(lg - lg.max())
        p /= p.sum()
        order = sorted(range(len(p)), key=lambda e: (-p[e], e))[:k]
        w = p[order] / (p[order].sum() if renorm else 1.0)
        for wi, e in zip(w, order):
            g, u, d = experts[e]
            a = g @ x[i]
            out[i] += wi * (d @ ((a / (1 + np.exp(-a))) * (u @ x[i])))
        if shared is not None:
            sg, (g, u, d) = shared
            a = g @ x[i]
            out[i] += (1 / (1 + np.exp(-(sg @ x[i])[0]))) * (d @ ((a / (1 + np.exp(-a))) * (u @ x[i])))
    return out


def test_moe_routing_vs_naive():
    for fam, renorm_key in (("mixtral", None), ("olmoe", False), ("qwen3_moe", True),
                            ("qwen2_moe", False), ("qwen2_moe", True)):
        E, k, W = 6, 3, 20
        c = base_config(fam, num_local_experts=E, num_experts=E, num_experts_per_tok=k,
                        moe_intermediate_size=W, shared_expert_intermediate_size=12,
                        intermediate_size=W if fam in ("mixtral", "olmoe") else 24,
                        norm_topk_prob=renorm_key, num_hidden_layers=1)
        qk = {"olmoe": "full", "qwen3_moe": "head"}.get(fam)
        t = attention_weights(c, qkv_bias=fam == "qwen2_moe", qk_norm=qk)
        pre = "model.layers.0." + ("block_sparse_moe." if fam == "mixtral" else "mlp.")
        names = ("w1", "w3", "w2") if fam == "mixtral" else ("gate_proj", "up_proj", "down_proj")
        gate = rnd(E, 32, std=0.6)
        gate[4] = gate[1]          # exact tie between experts 1 and 4
        t[pre + "gate.weight"] = gate
        experts = []
        for e in range(E):
            g, u, d = dense_mlp(c, 0, W)
            experts.append((g, u, d))
            for n, v in zip(names, (g, u, d)):
                t[pre + "experts.%d.%s.weight" % (e, n)] = v
        shared = None
        if fam == "qwen2_moe":
            sg = rnd(1, 32)
            g, u, d = dense_mlp(c, 0, 12)
            shared = (sg, (g, u, d))
            t[pre + "shared_expert_gate.weight"] = sg
            for n, v in zip(names, (g, u, d)):
                t[pre + "shared_expert.%s.weight" % n] = v
        d = write_model("route_%s_%s" % (fam, renorm_key), c, t)
        m = ref.load_model(d)
        x = RNG.normal(0, 1, size=(9, 32))
        renorm = True if fam == "mixtral" else bool(renorm_key)
        diff = max_diff(m.moe(x, 0), naive_moe(x, gate, experts, k, renorm, shared))
        assert diff < 1e-12, "%s moe differs from naive by %g" % (fam, diff)


def test_topk_ties_lowest_index():
    E = 4
    c = base_config("mixtral", num_local_experts=E, num_experts_per_tok=2, num_hidden_layers=1)
    t = attention_weights(c)
    p = "model.layers.0.block_sparse_moe."
    t[p + "gate.weight"] = np.zeros((E, 32))            # all probabilities equal
    outs = []
    for e in range(E):
        g, u, dn = dense_mlp(c, 0)
        t[p + "experts.%d.w1.weight" % e], t[p + "experts.%d.w3.weight" % e] = g, u
        t[p + "experts.%d.w2.weight" % e] = dn
        outs.append((g, u, dn))
    m = ref.load_model(write_model("ties", c, t))
    x = RNG.normal(0, 1, size=(3, 32))
    want = 0.5 * sum(dn @ (ref.silu(g @ x.T) * (u @ x.T)) for g, u, dn in outs[:2]).T
    assert max_diff(m.moe(x, 0), want) < 1e-12, "tie did not pick experts 0 and 1"


def test_rope_variants():
    d, c, _ = dense_model("rope_llama", "llama", max_position_embeddings=4)
    base = run_model(d, TOKENS, 3, True, None)[1:]
    ident = [{"rope_type": "linear", "factor": 1.0}, {"type": "linear", "factor": 1},
             {"rope_type": "default"},
             {"rope_type": "llama3", "factor": 1.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192},
             {"rope_type": "yarn", "factor": 1.0, "original_max_position_embeddings": 4}]
    for rs in ident:
        same_run(base, run_model(d, TOKENS, 3, True, rs)[1:], 1e-12)
    # "type" and "rope_type" spellings agree; factor 2 really changes the logits.
    lin2 = run_model(d, TOKENS, 3, True, {"type": "linear", "factor": 2.0})[1:]
    same_run(lin2, run_model(d, TOKENS, 3, True, {"rope_type": "linear", "factor": 2.0})[1:], 0)
    assert max_diff(lin2[0], base[0]) > 1e-6, "linear factor 2 had no effect"
    # Linear scaling == positions divided by factor (definition), checked on inv_freq.
    cfg = ref.load_model(d, True, {"type": "linear", "factor": 2.0}).cfg
    inv, att = ref.rope_params(cfg, 10)
    inv0, _ = ref.rope_params(ref.load_model(d).cfg, 10)
    assert np.allclose(inv, inv0 / 2) and att == 1.0
    # Dynamic NTK: equal to default while seq_len <= max_position_embeddings (4), differs beyond.
    dyn = {"rope_type": "dynamic", "factor": 2.0}
    cfg = ref.load_model(d, True, dyn).cfg
    assert np.array_equal(ref.rope_params(cfg, 4)[0], inv0)
    assert not np.allclose(ref.rope_params(cfg, 7)[0], inv0)
    b7 = cfg.rope_theta * ((2.0 * 7 / 4) - 1) ** (8 / 6)
    assert np.allclose(ref.rope_params(cfg, 7)[0], 1 / b7 ** (np.arange(0, 8, 2) / 8), rtol=1e-14)
    dc = run_model(d, TOKENS, 3, True, dyn)[1:]
    dn = run_model(d, TOKENS, 3, True, dyn, cache=False)[1:]
    assert max_diff(dc[0], dn[0]) == 0      # same prefill; decode differs (cache keeps rotations)
    assert max_diff(dc[1][0][1], dn[1][0][1]) > 0
    # YaRN attention factor and ramp.
    cfg = ref.load_model(d, True, {"rope_type": "yarn", "factor": 4.0,
                                   "original_max_position_embeddings": 4}).cfg
    inv, att = ref.rope_params(cfg, 10)
    assert abs(att - (0.1 * math.log(4.0) + 1)) < 1e-15
    assert abs(inv[0] - inv0[0]) < 1e-15 and abs(inv[-1] - inv0[-1] / 4) < 1e-15, (inv, inv0)
    # YaRN spot check with Qwen3-style numbers (theta 1e6, head_dim 128, factor 4, orig 32768):
    # by hand, find_correction_dim(32) = 23.60 -> 23 and find_correction_dim(1) = 39.65 -> 40.
    yc = ref.Config(base_config("qwen3", head_dim=128, rope_theta=1e6, max_position_embeddings=131072,
                                rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                              "original_max_position_embeddings": 32768}))
    inv, att = ref.rope_params(yc, 1)
    inv0 = 1 / 1e6 ** (np.arange(0, 128, 2) / 128)
    ramp = np.clip((np.arange(64) - 23) / 17, 0, 1)
    assert np.allclose(inv, inv0 * (1 - ramp) + inv0 / 4 * ramp, rtol=1e-13, atol=0)
    assert inv[23] == inv0[23] and inv[40] == inv0[40] / 4 and inv0[24] / 4 < inv[24] < inv0[24]
    assert abs(att - 1.1386294361119891) < 1e-15
    # Llama 3.1 spot check (theta 5e5, head_dim 128, factor 8, low 1, high 4, orig 8192).
    lc = ref.Config(base_config("llama", head_dim=128, rope_theta=5e5, rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}))
    inv, _ = ref.rope_params(lc, 1)
    inv0 = 1 / 5e5 ** (np.arange(0, 128, 2) / 128)
    wl = 2 * np.pi / inv0
    assert np.array_equal(inv[wl < 2048], inv0[wl < 2048])
    assert np.allclose(inv[wl > 8192], inv0[wl > 8192] / 8, rtol=1e-15)
    mid = np.nonzero((wl >= 2048) & (wl <= 8192))[0]
    assert len(mid) > 0
    s = (8192 / wl[mid] - 1) / 3
    assert np.allclose(inv[mid], (1 - s) * inv0[mid] / 8 + s * inv0[mid], rtol=1e-14)
    # Unknown types are rejected with status 2, via config or flag.
    rc, out, err = run_cli(d, "--tokens", "1,2", "--rope-scaling", '{"type": "su"}')
    assert rc == 2 and out == "" and "unknown rope type" in err, (rc, err)
    bad = dict(c, rope_scaling={"rope_type": "longrope", "factor": 2.0})
    d2 = write_model("rope_bad", bad, {k: v for k, v in _load_all(d).items()})
    rc, out, err = run_cli(d2, "--tokens", "1,2")
    assert rc == 2 and "unknown rope type" in err, (rc, err)
    rc, out, err = run_cli(d2, "--tokens", "1,2", "--rope-scaling", "null")
    assert rc == 0, err


def test_rope_convention():
    # rotate_half: pair (i, i + d/2) rotates by angle pos * inv_freq[i].
    cos, sin = ref.rope_cos_sin(ref.Config(base_config("llama")), [0, 3], 4)
    x = np.zeros((2, 1, 8))
    x[:, 0, 1] = 1.0
    y = ref.apply_rope(x, cos, sin)
    a = 3 * 10000.0 ** (-2 / 8)
    assert np.allclose(y[1, 0], [0, math.cos(a), 0, 0, 0, math.sin(a), 0, 0], atol=1e-15)
    assert np.allclose(y[0, 0], x[0, 0])


def naive_attention(x, t, li, c, qk_norm, eps):
    """Loop over heads and positions; kv head of query head h is h // (H / KV)."""
    p = "model.layers.%d.self_attn." % li
    H, KV, D = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]

    def lin(n, v):
        return v @ t[p + n + ".weight"].T + t.get(p + n + ".bias", 0)

    def norm(v, w):
        return w * v / np.sqrt(np.mean(v * v, axis=-1, keepdims=True) + eps)

    q, k, v = lin("q_proj", x), lin("k_proj", x), lin("v_proj", x)
    if qk_norm == "full":
        q, k = norm(q, t[p + "q_norm.weight"]), norm(k, t[p + "k_norm.weight"])
    q, k, v = q.reshape(len(x), H, D), k.reshape(len(x), KV, D), v.reshape(len(x), KV, D)
    if qk_norm == "head":
        q, k = norm(q, t[p + "q_norm.weight"]), norm(k, t[p + "k_norm.weight"])

    def rot(vec, pos):
        out = vec.copy()
        for i in range(D // 2):
            a = pos * c["rope_theta"] ** (-2 * i / D)
            out[i] = vec[i] * math.cos(a) - vec[i + D // 2] * math.sin(a)
            out[i + D // 2] = vec[i + D // 2] * math.cos(a) + vec[i] * math.sin(a)
        return out

    out = np.zeros((len(x), H * D))
    for h in range(H):
        g = h // (H // KV)
        for i in range(len(x)):
            s = np.array([rot(q[i, h], i) @ rot(k[j, g], j) / math.sqrt(D) for j in range(i + 1)])
            w = np.exp(s - s.max())
            out[i, h * D:(h + 1) * D] = (w / w.sum()) @ v[:i + 1, g]
    return lin("o_proj", out)


def test_attention_vs_naive():
    for fam, qk in (("qwen2", None), ("qwen3", "head"), ("olmoe", "full"), ("llama", None)):
        c = base_config(fam, num_attention_heads=6, num_key_value_heads=2, head_dim=8,
                        hidden_size=48, num_hidden_layers=1, num_experts=2, num_experts_per_tok=1)
        t = attention_weights(c, qkv_bias=fam == "qwen2", qk_norm=qk)
        if fam == "olmoe":
            t["model.layers.0.mlp.gate.weight"] = rnd(2, 48)
            for e in range(2):
                for n, v in zip(("gate_proj", "up_proj", "down_proj"), dense_mlp(c, 0)):
                    t["model.layers.0.mlp.experts.%d.%s.weight" % (e, n)] = v
        else:
            for n, v in zip(("gate_proj", "up_proj", "down_proj"), dense_mlp(c, 0)):
                t["model.layers.0.mlp.%s.weight" % n] = v
        m = ref.load_model(write_model("attn_" + fam, c, t))
        x = RNG.normal(0, 1, size=(5, 48))
        pos = list(range(5))
        cos, sin = ref.rope_cos_sin(m.cfg, pos, 5)
        got = m.attention(x, 0, pos, cos, sin, None)
        diff = max_diff(got, naive_attention(x, t, 0, c, qk, m.cfg.eps))
        assert diff < 1e-12, "%s attention differs from naive by %g" % (fam, diff)


def _load_all(d):
    ck = ref.Checkpoint(d)
    return {n: ck.get(n) for n in ck.entries}


def test_causal_and_cache():
    d, _, _ = dense_model("causal_qwen2", "qwen2")
    a = run_model(d, TOKENS, 0)[1]
    b = run_model(d, TOKENS[:4] + [1, 2, 3], 0)[1]
    assert max_diff(a[:4], b[:4]) < 1e-12, "logits depend on later tokens"
    assert max_diff(a[4:], b[4:]) > 1e-6
    # Prefill of a prefix == prefill rows; cache and full recompute agree for default RoPE.
    pre = run_model(d, TOKENS[:3], 0)[1]
    assert max_diff(pre, a[:3]) < 1e-12
    same_run(run_model(d, TOKENS, 5)[1:], run_model(d, TOKENS, 5, cache=False)[1:], 1e-12)


def test_sliding_window():
    _, c, t = dense_model("sw_src", "llama")
    mc = dict(c, model_type="mixtral", num_local_experts=2, num_experts_per_tok=1,
              sliding_window=2)
    mt = {k: v for k, v in t.items() if ".mlp." not in k}
    for li in range(2):
        q = "model.layers.%d.block_sparse_moe." % li
        mt[q + "gate.weight"] = rnd(2, 32)
        for e in range(2):
            g, u, dn = dense_mlp(c, li)
            mt[q + "experts.%d.w1.weight" % e], mt[q + "experts.%d.w3.weight" % e] = g, u
            mt[q + "experts.%d.w2.weight" % e] = dn
    d = write_model("sw_mixtral", mc, mt)
    a = run_model(d, TOKENS, 0)[1]
    b = run_model(d, [0] + TOKENS[1:], 0)[1]
    # Window 2, 2 layers: token 0 reaches positions <= 2 only.
    assert max_diff(a[1], b[1]) > 1e-6 and max_diff(a[2], b[2]) > 1e-6
    assert max_diff(a[3:], b[3:]) < 1e-12, "window mask leaks"
    n = run_model(d, TOKENS, 0, overrides={"sliding_window": None})[1]
    nb = run_model(d, [0] + TOKENS[1:], 0, overrides={"sliding_window": None})[1]
    assert max_diff(n[5:], nb[5:]) > 1e-9, "null window should see everything"


def test_safetensors_parser():
    vals = {"a": np.array([[1.5, -2.25], [3.0, 0.0]]), "b": np.array([0.1, -7.0, 1e-3]),
            "c": np.zeros((0, 3)), "s": np.array(2.5)}
    for dt in ("F32", "F16", "BF16"):
        p = os.path.join(TMP, "ok_%s.safetensors" % dt)
        write_safetensors(p, vals, dt)
        hdr, base = ref.parse_safetensors_header(p)
        raw = open(p, "rb").read()
        for n, v in vals.items():
            b, e = hdr[n]["data_offsets"]
            got = ref.to_float64(raw[base + b:base + e], dt, hdr[n]["shape"])
            want = {"F32": np.float32, "F16": np.float16}.get(dt)
            want = np.asarray(v, dtype=want).astype(np.float64) if want else bf16_round(v)
            assert got.shape == np.shape(v) and np.array_equal(got, want), (dt, n, got)
    p = os.path.join(TMP, "ok_F32.safetensors")
    raw = open(p, "rb").read()
    (hn,) = struct.unpack("<Q", raw[:8])
    cuts = [0, 3, 7, 8, 8 + hn // 2, 8 + hn - 1, 8 + hn, len(raw) - 1]
    for i, cut in enumerate(cuts):
        q = os.path.join(TMP, "trunc_%d.safetensors" % i)
        open(q, "wb").write(raw[:cut])
        try:
            ref.parse_safetensors_header(q)
        except ref.RefError:
            continue
        raise AssertionError("truncated file (%d of %d bytes) accepted" % (cut, len(raw)))
    hdr = json.loads(raw[8:8 + hn])
    mutations = {"trailing": raw + b"\0",
                 "huge_len": struct.pack("<Q", 10 ** 12) + raw[8:]}
    gap = dict(hdr)
    gap["b"] = dict(hdr["b"], data_offsets=[hdr["b"]["data_offsets"][0] + 4,
                                            hdr["b"]["data_offsets"][1] + 4])
    small = dict(hdr)
    small["b"] = dict(hdr["b"], shape=[2])            # span no longer matches numel * size
    for n, h in (("gap", gap), ("size", small)):
        hb = json.dumps(h).encode()
        hb += b" " * (-len(hb) % 8)
        mutations[n] = struct.pack("<Q", len(hb)) + hb + raw[8 + hn:] + b"\0" * (4 if n == "gap" else 0)
    dup = raw[8:8 + hn].decode().replace('"__metadata__"', '"a": ' + json.dumps(hdr["a"])
                                         + ', "__metadata__"', 1).encode()
    dup += b" " * (-len(dup) % 8)
    mutations["dup"] = struct.pack("<Q", len(dup)) + dup + raw[8 + hn:]
    for n, data in mutations.items():
        q = os.path.join(TMP, "bad_%s.safetensors" % n)
        open(q, "wb").write(data)
        try:
            ref.parse_safetensors_header(q)
        except ref.RefError:
            continue
        raise AssertionError("malformed file (%s) accepted" % n)
    # The CLI reports a truncated shard with status 2 and nothing on stdout.
    d, _, _ = dense_model("trunc_model", "llama")
    shard = os.path.join(d, "model-00002-of-00002.safetensors")
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[:-10])
    rc, out, err = run_cli(d, "--tokens", "1,2")
    assert rc == 2 and out == "" and "safetensors" in err, (rc, err)


def test_cli_format_and_errors():
    d, c, _ = dense_model("cli_qwen3", "qwen3", tie_word_embeddings=True)
    os.remove(os.path.join(d, "model-00001-of-00002.safetensors"))  # holds lm_head: tied anyway
    rc, _, err = run_cli(d, "--tokens", "1,2")
    assert rc == 2, "missing shard must fail"
    d, c, t = dense_model("cli_qwen3b", "qwen3", tie_word_embeddings=True)
    rc, out, err = run_cli(d, "--tokens", "3,4,5", "--decode", "4")
    assert rc == 0, err
    j = json.loads(out)
    assert set(j) == {"prefill_logits", "decode"}
    assert len(j["prefill_logits"]) == 3 and len(j["prefill_logits"][0]) == c["vocab_size"]
    assert len(j["decode"]) == 4
    assert j["decode"][0]["token"] == int(np.argmax(j["prefill_logits"][-1]))
    for i in range(1, 4):
        assert j["decode"][i]["token"] == int(np.argmax(j["decode"][i - 1]["logits"]))
    # Tied: lm_head in the checkpoint is ignored in favour of embed_tokens.
    _, pre, _ = run_model(d, [3, 4, 5])
    _, pre2, _ = run_model(d, [3, 4, 5], overrides={"tie_word_embeddings": False})
    assert max_diff(pre, j["prefill_logits"]) < 1e-9 and max_diff(pre, pre2) > 1e-6
    for args in (["--tokens", "1,x"], ["--tokens", "1,48"], ["--tokens", ""],
                 ["--tokens", "1", "--decode", "-1"], ["--tokens", "1", "--rope-scaling", "{"]):
        rc, out, err = run_cli(d, *args)
        assert rc == 2 and out == "", (args, rc, out)
    bad = write_model("bad_family", dict(c, model_type="gpt2"), t)
    assert run_cli(bad, "--tokens", "1")[0] == 2


def test_generated_models():
    if not os.path.exists(HUBNODE):
        print("  SKIP: %s missing (generated-model check not run)" % HUBNODE)
        return
    for fam in ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "llama", "qwen2", "qwen3", "deepseek_v2",
                "deepseek_v3", "deepseek_v3:fp8"):
        fam, _, dtype = fam.partition(":")
        d = os.path.join(TMP, "gen_" + fam + dtype)
        subprocess.run([HUBNODE, "testmodel", "--family", fam, "--size", "tiny", "--out", d,
                        "--dtype", dtype or "bf16"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        rc, out, err = run_cli(d, "--tokens", "1,2,3,4,5,6,7,8", "--decode", "16")
        dt = time.time() - t0
        assert rc == 0, (fam, err)
        j = json.loads(out)
        rows = j["prefill_logits"] + [s["logits"] for s in j["decode"]]
        assert len(j["prefill_logits"]) == 8 and len(j["decode"]) == 16
        assert all(math.isfinite(v) for r in rows for v in r), fam + ": non-finite logits"
        toks = [s["token"] for s in j["decode"]]
        assert len(set(toks)) > 1, fam + ": greedy tokens all identical"
        print("  %-9s %.2fs  tokens %s" % (fam, dt, toks))


# ----------------------------------------------------------------------------- DeepSeek

def deepseek_model(name, model_type, q_lora=None, interleave=True, dtype="F32", **kw):
    c = base_config(model_type, num_hidden_layers=2, num_key_value_heads=4, kv_lora_rank=12,
                    qk_nope_head_dim=6, qk_rope_head_dim=4, v_head_dim=5, q_lora_rank=q_lora,
                    n_routed_experts=8, n_shared_experts=1, moe_intermediate_size=6,
                    num_experts_per_tok=3, first_k_dense_replace=1, n_group=4, topk_group=2,
                    rope_scaling={"type": "yarn", "factor": 40.0, "mscale": 0.707, "mscale_all_dim": 0.707,
                                  "original_max_position_embeddings": 64, "beta_fast": 32, "beta_slow": 1})
    if model_type == "deepseek_v3":
        c["rope_interleave"] = interleave
    c.update(kw)
    H, h, qk = c["num_attention_heads"], c["hidden_size"], 10
    t = {"model.embed_tokens.weight": rnd(c["vocab_size"], h, std=0.5),
         "model.norm.weight": rnd(h, std=0.1, mean=1.0), "lm_head.weight": rnd(c["vocab_size"], h, std=0.5)}
    for li in range(2):
        p = "model.layers.%d." % li
        t[p + "input_layernorm.weight"] = rnd(h, std=0.1, mean=1.0)
        t[p + "post_attention_layernorm.weight"] = rnd(h, std=0.1, mean=1.0)
        a = p + "self_attn."
        if q_lora:
            t[a + "q_a_proj.weight"] = rnd(q_lora, h)
            t[a + "q_a_layernorm.weight"] = rnd(q_lora, std=0.1, mean=1.0)
            t[a + "q_b_proj.weight"] = rnd(H * qk, q_lora)
        else:
            t[a + "q_proj.weight"] = rnd(H * qk, h)
        t[a + "kv_a_proj_with_mqa.weight"] = rnd(12 + 4, h)
        t[a + "kv_a_layernorm.weight"] = rnd(12, std=0.1, mean=1.0)
        t[a + "kv_b_proj.weight"] = rnd(H * (6 + 5), 12)
        t[a + "o_proj.weight"] = rnd(h, H * 5)
        m = p + "mlp."
        if li == 0:
            t[m + "gate_proj.weight"], t[m + "up_proj.weight"], t[m + "down_proj.weight"] = dense_mlp(c, li)
            continue
        t[m + "gate.weight"] = rnd(8, h, std=0.5)
        if model_type == "deepseek_v3":
            t[m + "gate.e_score_correction_bias"] = rnd(8, std=0.1)
        for e in range(8):
            t[m + "experts.%d.gate_proj.weight" % e], t[m + "experts.%d.up_proj.weight" % e], \
                t[m + "experts.%d.down_proj.weight" % e] = dense_mlp(c, li, 6)
        t[m + "shared_experts.gate_proj.weight"], t[m + "shared_experts.up_proj.weight"], \
            t[m + "shared_experts.down_proj.weight"] = dense_mlp(c, li, 6)
    return write_model(name, c, t, dtype), c, t


def rotate_pairs(v, pos, inv, att):
    """Interleaved RoPE by explicit 2x2 rotations of (v[2i], v[2i+1])."""
    out = np.empty_like(v)
    for i in range(len(v) // 2):
        a = pos * inv[i]
        r = att * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        out[2 * i:2 * i + 2] = r @ v[2 * i:2 * i + 2]
    return out


def rotate_halves(v, pos, inv, att):
    h = len(v) // 2
    out = np.empty_like(v)
    for i in range(h):
        a = pos * inv[i]
        out[i] = att * (v[i] * math.cos(a) - v[h + i] * math.sin(a))
        out[h + i] = att * (v[h + i] * math.cos(a) + v[i] * math.sin(a))
    return out


def naive_mla(m, x, li):
    """MLA in its absorbed form (compressed cache: latent + one rope key per token), token by token."""
    c, t = m.cfg, lambda n: m.w("model.layers.%d.self_attn.%s" % (li, n))
    H, nope, rope, vd, kvl = c.heads, c.nope, c.rope, c.v_dim, c.kv_lora
    rot = rotate_pairs if c.interleave else rotate_halves
    inv, att = ref.rope_params(c, len(x))
    wkv = t("kv_b_proj.weight").reshape(H, nope + vd, kvl)
    cache, out = [], []
    for pos, xi in enumerate(x):
        if c.q_lora:
            qa = t("q_a_proj.weight") @ xi
            qa = qa / math.sqrt(np.mean(qa * qa) + c.eps) * t("q_a_layernorm.weight")
            q = (t("q_b_proj.weight") @ qa).reshape(H, nope + rope)
        else:
            q = (t("q_proj.weight") @ xi).reshape(H, nope + rope)
        kv = t("kv_a_proj_with_mqa.weight") @ xi
        lat = kv[:kvl] / math.sqrt(np.mean(kv[:kvl] ** 2) + c.eps) * t("kv_a_layernorm.weight")
        cache.append((lat, rot(kv[kvl:], pos, inv, att)))
        o = np.zeros(H * vd)
        for h in range(H):
            q_abs = wkv[h, :nope].T @ q[h, :nope]                 # [kvl]
            q_pe = rot(q[h, nope:], pos, inv, att)
            sc = np.array([q_abs @ l + q_pe @ kp for l, kp in cache]) * c.softmax_scale
            p = np.exp(sc - sc.max())
            p /= p.sum()
            ctx = sum(pi * l for pi, (l, _) in zip(p, cache))
            o[h * vd:(h + 1) * vd] = wkv[h, nope:] @ ctx
        out.append(t("o_proj.weight") @ o)
    return np.array(out)


def test_mla_vs_absorbed_naive():
    for name, mt, ql, inter in (("mla2", "deepseek_v2", None, True), ("mla3", "deepseek_v3", 8, True),
                                ("mla3h", "deepseek_v3", 8, False)):
        d, c, t = deepseek_model(name, mt, q_lora=ql, interleave=inter)
        m = ref.load_model(d)
        x = RNG.normal(0, 1, size=(6, c["hidden_size"]))
        got = m.mla(x, 1, list(range(6)), None)
        want = naive_mla(m, x, 1)
        assert max_diff(got, want) < 1e-12, (name, max_diff(got, want))
    # YaRN: softmax scale 10^-0.5 · mscale(40, 0.707)^2; cos/sin scaled by 0.707/0.707 = 1.
    ms = 0.1 * 0.707 * math.log(40) + 1
    assert abs(m.cfg.softmax_scale - ms * ms / math.sqrt(10)) < 1e-15
    assert abs(ref.rope_params(m.cfg, 8)[1] - 1.0) < 1e-15


def naive_route(scores, choice, method, n_group, topk_group, k):
    E = len(scores)
    idx = list(range(E))
    if method != "greedy":
        per = E // n_group
        gs = []
        for g in range(n_group):
            mem = sorted((choice[g * per + i] for i in range(per)), reverse=True)
            gs.append(sum(mem[:2]) if method == "noaux_tc" else mem[0])
        keep = sorted(range(n_group), key=lambda g: (-gs[g], g))[:topk_group]
        idx = [e for e in idx if e // per in keep]
    return sorted(idx, key=lambda e: (-choice[e], e))[:k]


def test_deepseek_routing():
    for mt in ("deepseek_v2", "deepseek_v3"):
        d, c, t = deepseek_model("route_" + mt, mt)
        for method, scoring, norm in (("greedy", "softmax", False), ("group_limited_greedy", "softmax", True),
                                      ("noaux_tc", "sigmoid", True), ("noaux_tc", "sigmoid", False),
                                      ("group_limited_greedy", "sigmoid", False)):
            if method == "noaux_tc" and mt == "deepseek_v2":
                continue  # needs e_score_correction_bias, which only the V3 model has
            m = ref.load_model(d, overrides={"topk_method": method, "scoring_func": scoring,
                                             "norm_topk_prob": norm, "routed_scaling_factor": 2.5})
            logits = RNG.normal(0, 1, size=(5, 8))
            sel, w = m.route_deepseek(logits, 1)
            bias = t["model.layers.1.mlp.gate.e_score_correction_bias"] if mt == "deepseek_v3" else np.zeros(8)
            for r in range(5):
                sc = [1 / (1 + math.exp(-v)) for v in logits[r]] if scoring == "sigmoid" else \
                    list(np.exp(logits[r]) / np.exp(logits[r]).sum())
                ch = [s + (bias[e] if method == "noaux_tc" else 0) for e, s in enumerate(sc)]
                want = naive_route(sc, ch, method, 4, 2, 3)
                assert list(sel[r]) == want, (mt, method, list(sel[r]), want)
                ww = [sc[e] for e in want]
                if norm:
                    ww = [v / sum(ww) for v in ww]
                if not norm or mt == "deepseek_v3":
                    ww = [v * 2.5 for v in ww]
                assert max_diff(w[r], ww) < 1e-12


def test_fp8_e4m3_and_blocks():
    def decode(b):  # bit by bit
        sign = -1.0 if b & 0x80 else 1.0
        e, mant = (b >> 3) & 0xF, b & 7
        if e == 15 and mant == 7:
            return math.nan
        return sign * (math.ldexp(mant / 8, -6) if e == 0 else math.ldexp(1 + mant / 8, e - 7))
    got = ref.f8e4m3_to_float64(np.arange(256, dtype=np.uint8))
    for b in range(256):
        want = decode(b)
        assert (math.isnan(want) and math.isnan(got[b])) or got[b] == want, (b, got[b], want)
    assert got[0x7E] == 448 and got[0x38] == 1.0 and got[0x01] == 2.0 ** -9
    # A [130, 3] F8_E4M3 weight: two row blocks, each with its own weight_scale_inv.
    d = os.path.join(TMP, "fp8")
    os.makedirs(d)
    codes = RNG.integers(0, 0x7E, size=(130, 3)).astype(np.uint8)
    scales = np.array([[0.5], [3.0]], dtype=np.float32)
    blobs = [("w.weight", "F8_E4M3", [130, 3], codes.tobytes()),
             ("w.weight_scale_inv", "F32", [2, 1], scales.astype("<f4").tobytes())]
    header, off, data = {}, 0, b""
    for n, dt, sh, raw in blobs:
        header[n] = {"dtype": dt, "shape": sh, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(header).encode()
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)
    w = ref.Checkpoint(d).get("w.weight", (130, 3))
    plain = np.array([[decode(int(b)) for b in row] for row in codes])
    assert max_diff(w[:128], plain[:128] * 0.5) == 0 and max_diff(w[128:], plain[128:] * 3.0) == 0


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            print("PASS %s (%.2fs)" % (t.__name__, time.time() - t0))
        except Exception:
            failed += 1
            print("FAIL %s" % t.__name__)
            traceback.print_exc()
    print("%d/%d passed" % (len(tests) - failed, len(tests)))
    if not failed:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
