#!/usr/bin/python3
"""Write a Hugging Face MoE checkpoint as a GGUF file that llama.cpp loads, for benchmarks.

Usage: bench/gguf_export.py HF_DIR OUT.gguf [--name NAME] [--pre PRE] [--f32]

Families: OLMoE (OlmoeForCausalLM -> llama.cpp architecture "olmoe") and Qwen3-MoE
(Qwen3MoeForCausalLM -> "qwen3moe"), with one safetensors tensor per expert projection
(model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight), as `hubnode testmodel` and the
published checkpoints write them. NumPy only: no torch, no transformers, no gguf-py.

Weights keep their dtype (bf16 -> GGUF BF16, f16 -> F16, f32 -> F32), except norms and the
router (ffn_gate_inp), written as F32 as llama.cpp's own converter writes them (bf16 -> f32 is
exact); --f32 writes every tensor as F32 (llama.cpp then computes in f32: for checking numerics). A layer's experts become one 3-D tensor per projection, blk.L.ffn_{gate,up,down}_exps
(ggml shape [in, out, experts]). The tokenizer is the checkpoint's byte-level BPE tokenizer.json
(tokenizer.ggml.model "gpt2"), its vocabulary padded with unused "[PADi]" tokens up to the
config's vocab_size (the embedding's row count).

The GGUF layout (version 3, little-endian): magic "GGUF", version u32, tensor count u64, key/value
count u64; each key/value: key (u64 length + UTF-8), value type u32, value (an array: element type
u32, count u64, elements); each tensor: name, dimension count u32, dimensions u64 (innermost
first), ggml type u32, data offset u64 relative to the data section; then padding to the alignment
(32 bytes) and the data, every tensor starting at a multiple of the alignment.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

ALIGN = 32

# gguf value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY = range(10)
T_UINT64, T_INT64, T_FLOAT64 = 10, 11, 12

# ggml tensor types
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30
GGML_TYPE_SIZE = {GGML_F32: 4, GGML_F16: 2, GGML_BF16: 2}
LLAMA_FTYPE = {GGML_F32: 0, GGML_F16: 1, GGML_BF16: 32}  # general.file_type (llama_ftype)

# llama.cpp token types
TOK_NORMAL, TOK_CONTROL, TOK_USER_DEFINED, TOK_UNUSED = 1, 3, 4, 5

ARCH = {"OlmoeForCausalLM": "olmoe", "Qwen3MoeForCausalLM": "qwen3moe"}


def fail(msg):
    sys.exit(f"gguf_export: {msg}")


# ---------------------------------------------------------------- safetensors (read-only, mmap)

class SafeTensors:
    DTYPES = {"BF16": (np.uint16, GGML_BF16), "F16": (np.float16, GGML_F16), "F32": (np.float32, GGML_F32)}

    def __init__(self, hf_dir):
        index = os.path.join(hf_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            with open(index) as f:
                files = sorted(set(json.load(f)["weight_map"].values()))
        else:
            files = ["model.safetensors"]
        self.tensors = {}  # name -> (memmap of the file, dtype, shape, begin, end)
        for fn in files:
            path = os.path.join(hf_dir, fn)
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
            mm = np.memmap(path, dtype=np.uint8, mode="r")
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                if info["dtype"] not in self.DTYPES:
                    fail(f"{name}: dtype {info['dtype']} not supported")
                b, e = info["data_offsets"]
                self.tensors[name] = (mm, info["dtype"], tuple(info["shape"]), 8 + n + b, 8 + n + e)

    def has(self, name):
        return name in self.tensors

    def shape(self, name):
        return self.tensors[name][2]

    def ggml_type(self, name):
        return self.DTYPES[self.tensors[name][1]][1]

    def raw(self, name):
        """The tensor as a NumPy array of its storage type (bf16 as uint16), not copied."""
        mm, dt, shape, b, e = self.tensors[name]
        return mm[b:e].view(self.DTYPES[dt][0]).reshape(shape)

    def f32(self, name):
        a = self.raw(name)
        if self.tensors[name][1] == "BF16":
            return (a.astype(np.uint32) << 16).view(np.float32)
        return a.astype(np.float32)


# ---------------------------------------------------------------- GGUF writer

def gguf_string(s):
    b = s.encode("utf-8") if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


SCALAR = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I", T_INT32: "<i",
          T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d"}


def gguf_value(vtype, value):
    if vtype == T_STRING:
        return gguf_string(value)
    return struct.pack(SCALAR[vtype], value)


class GGUFWriter:
    def __init__(self):
        self.kv = []       # (key, type, value) or (key, T_ARRAY, (elem type, values))
        self.tensors = []  # (name, ggml dims innermost first, ggml type, nbytes, writer(f))

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def add_array(self, key, elem_type, values):
        self.kv.append((key, T_ARRAY, (elem_type, list(values))))

    def add_tensor(self, name, dims, gtype, write):
        n = 1
        for d in dims:
            n *= d
        self.tensors.append((name, list(dims), gtype, n * GGML_TYPE_SIZE[gtype], write))

    def write(self, path):
        head = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv)))
        for key, vtype, value in self.kv:
            head += gguf_string(key) + struct.pack("<I", vtype)
            if vtype == T_ARRAY:
                etype, values = value
                head += struct.pack("<IQ", etype, len(values))
                head += b"".join(gguf_value(etype, v) for v in values)
            else:
                head += gguf_value(vtype, value)
        offset = 0
        offsets = []
        for name, dims, gtype, nbytes, _ in self.tensors:
            offsets.append(offset)
            head += gguf_string(name) + struct.pack("<I", len(dims))
            head += b"".join(struct.pack("<Q", d) for d in dims)
            head += struct.pack("<IQ", gtype, offset)
            offset += nbytes + (-nbytes) % ALIGN
        head += b"\0" * ((-len(head)) % ALIGN)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(head)
            base = f.tell()
            for (name, dims, gtype, nbytes, write), off in zip(self.tensors, offsets):
                assert f.tell() == base + off, name
                write(f)
                if f.tell() != base + off + nbytes:
                    fail(f"{name}: wrote {f.tell() - base - off} bytes, expected {nbytes}")
                f.write(b"\0" * ((-nbytes) % ALIGN))
        os.replace(tmp, path)


# ---------------------------------------------------------------- the model

def first_int(v):
    if isinstance(v, list):
        return v[0] if v else None
    return v


def load_json(path, default=None):
    if not os.path.exists(path):
        if default is not None:
            return default
        fail(f"{path} not found")
    with open(path) as f:
        return json.load(f)


def detect_pre(tok):
    """llama.cpp's tokenizer.ggml.pre for a tokenizer.json pre-tokenizer we recognise."""
    pre = tok.get("pre_tokenizer") or {}
    if pre.get("type") == "ByteLevel" and pre.get("use_regex", True):
        return "gpt-2"  # ByteLevel's own regex is GPT-2's
    if pre.get("type") == "Sequence":
        items = pre.get("pretokenizers", [])
        kinds = [p.get("type") for p in items]
        if kinds == ["Split", "ByteLevel"] and not items[1].get("use_regex", True):
            pattern = items[0].get("pattern", {}).get("Regex", "")
            if pattern.startswith("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"):
                return "qwen2"
    fail("unrecognised pre-tokenizer in tokenizer.json; pass --pre (a name llama.cpp knows)")


def add_tokenizer(w, hf_dir, cfg, vocab_size, pre):
    tok = load_json(os.path.join(hf_dir, "tokenizer.json"))
    tcfg = load_json(os.path.join(hf_dir, "tokenizer_config.json"), {})
    model = tok.get("model", {})
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        fail("only byte-level BPE tokenizers (no byte fallback) are supported")
    vocab = dict(model["vocab"])
    added = {t["id"]: t for t in tok.get("added_tokens", [])}
    for i, t in added.items():
        vocab[t["content"]] = i
    if max(vocab.values()) >= vocab_size:
        fail(f"token id {max(vocab.values())} >= vocab_size {vocab_size}")
    by_id = {i: s for s, i in vocab.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(TOK_UNUSED)
        else:
            tokens.append(by_id[i])
            if i in added:
                types.append(TOK_CONTROL if added[i].get("special") else TOK_USER_DEFINED)
            else:
                types.append(TOK_NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    w.add("tokenizer.ggml.model", T_STRING, "gpt2")
    w.add("tokenizer.ggml.pre", T_STRING, pre or detect_pre(tok))
    w.add_array("tokenizer.ggml.tokens", T_STRING, tokens)
    w.add_array("tokenizer.ggml.token_type", T_INT32, types)
    w.add_array("tokenizer.ggml.merges", T_STRING, merges)
    gen = load_json(os.path.join(hf_dir, "generation_config.json"), {})
    ids = {
        "bos": first_int(cfg.get("bos_token_id")),
        "eos": first_int(cfg.get("eos_token_id", gen.get("eos_token_id"))),
        "padding": first_int(cfg.get("pad_token_id", gen.get("pad_token_id"))),
    }
    for what, i in ids.items():
        if i is not None:
            w.add(f"tokenizer.ggml.{what}_token_id", T_UINT32, int(i))
    w.add("tokenizer.ggml.add_bos_token", T_BOOL, bool(tcfg.get("add_bos_token", False)))
    w.add("tokenizer.ggml.add_eos_token", T_BOOL, bool(tcfg.get("add_eos_token", False)))
    if isinstance(tcfg.get("chat_template"), str):
        w.add("tokenizer.chat_template", T_STRING, tcfg["chat_template"])


def export(hf_dir, out, name=None, pre=None, all_f32=False):
    cfg = load_json(os.path.join(hf_dir, "config.json"))
    archs = cfg.get("architectures") or []
    if len(archs) != 1 or archs[0] not in ARCH:
        fail(f"architectures {archs}: want one of {sorted(ARCH)}")
    arch = ARCH[archs[0]]
    st = SafeTensors(hf_dir)

    for key in ("rope_scaling", "clip_qkv"):
        if cfg.get(key):
            fail(f"config {key}={cfg[key]} is not supported")
    if cfg.get("hidden_act", "silu") != "silu":
        fail(f"hidden_act {cfg['hidden_act']} is not supported")
    if cfg.get("attention_bias"):
        fail("attention biases are not supported")
    # llama.cpp fixes the top-k renormalisation per architecture: olmoe never, qwen3moe always.
    want_norm = arch == "qwen3moe"
    if bool(cfg.get("norm_topk_prob", want_norm)) != want_norm:
        fail(f"norm_topk_prob={cfg.get('norm_topk_prob')}: llama.cpp's {arch} uses {want_norm}")
    if arch == "qwen3moe":
        if cfg.get("mlp_only_layers") or cfg.get("decoder_sparse_step", 1) != 1:
            fail("dense (mlp_only) layers are not supported by llama.cpp's qwen3moe")
        if cfg.get("use_sliding_window"):
            fail("sliding-window attention is not supported")

    hidden = cfg["hidden_size"]
    layers = cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads", heads)
    head_dim = cfg.get("head_dim") or hidden // heads
    experts = cfg["num_experts"]
    top_k = cfg["num_experts_per_tok"]
    vocab_size, emb_hidden = st.shape("model.embed_tokens.weight")
    if emb_hidden != hidden:
        fail(f"embed_tokens is {emb_hidden} wide, hidden_size is {hidden}")
    if cfg.get("vocab_size", vocab_size) != vocab_size:
        fail(f"config vocab_size {cfg['vocab_size']} != embedding rows {vocab_size}")
    p0 = "model.layers.0.mlp.experts.0."
    if not st.has(p0 + "gate_proj.weight"):
        fail("experts must be stored one tensor per projection (mlp.experts.E.gate_proj.weight)")
    expert_width = st.shape(p0 + "gate_proj.weight")[0]
    if arch == "olmoe":
        # llama.cpp's olmoe normalises q and k over the whole projection with norms of n_embd
        if kv_heads * head_dim != hidden:
            fail(f"llama.cpp's olmoe needs num_key_value_heads * head_dim == hidden_size "
                 f"({kv_heads} * {head_dim} != {hidden}); generate with --kv-heads {heads}")

    w = GGUFWriter()
    w.add("general.architecture", T_STRING, arch)
    w.add("general.name", T_STRING, name or os.path.basename(os.path.normpath(hf_dir)))
    w.add("general.alignment", T_UINT32, ALIGN)
    main_type = GGML_F32 if all_f32 else st.ggml_type("model.layers.0.self_attn.q_proj.weight")
    w.add("general.file_type", T_UINT32, LLAMA_FTYPE[main_type])
    w.add(f"{arch}.vocab_size", T_UINT32, vocab_size)
    w.add(f"{arch}.context_length", T_UINT32, cfg.get("max_position_embeddings", 4096))
    w.add(f"{arch}.embedding_length", T_UINT32, hidden)
    w.add(f"{arch}.block_count", T_UINT32, layers)
    # olmoe reads its expert width from feed_forward_length; qwen3moe from expert_feed_forward_length
    w.add(f"{arch}.feed_forward_length", T_UINT32,
          expert_width if arch == "olmoe" else cfg.get("intermediate_size", expert_width))
    if arch == "qwen3moe":
        w.add(f"{arch}.expert_feed_forward_length", T_UINT32, expert_width)
    w.add(f"{arch}.attention.head_count", T_UINT32, heads)
    w.add(f"{arch}.attention.head_count_kv", T_UINT32, kv_heads)
    w.add(f"{arch}.attention.key_length", T_UINT32, head_dim)
    w.add(f"{arch}.attention.value_length", T_UINT32, head_dim)
    w.add(f"{arch}.rope.dimension_count", T_UINT32, head_dim)
    w.add(f"{arch}.rope.freq_base", T_FLOAT32, float(cfg.get("rope_theta", 10000.0)))
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", T_FLOAT32, float(cfg.get("rms_norm_eps", 1e-6)))
    w.add(f"{arch}.expert_count", T_UINT32, experts)
    w.add(f"{arch}.expert_used_count", T_UINT32, top_k)
    add_tokenizer(w, hf_dir, cfg, vocab_size, pre)

    used = set()

    def copy(src, dst, as_f32=False, want=None):
        if not st.has(src):
            fail(f"tensor {src} missing")
        shape = st.shape(src)
        if want is not None and tuple(shape) != tuple(want):
            fail(f"{src}: shape {shape}, expected {tuple(want)}")
        used.add(src)
        as_f32 = as_f32 or all_f32
        gtype = GGML_F32 if as_f32 else st.ggml_type(src)
        data = (lambda: st.f32(src)) if as_f32 else (lambda: st.raw(src))
        w.add_tensor(dst, list(reversed(shape)), gtype, lambda f: f.write(np.ascontiguousarray(data()).tobytes()))

    def stack(srcs, dst, want):
        gtype = None
        for s in srcs:
            if not st.has(s):
                fail(f"tensor {s} missing")
            if tuple(st.shape(s)) != tuple(want):
                fail(f"{s}: shape {st.shape(s)}, expected {tuple(want)}")
            if gtype is not None and st.ggml_type(s) != gtype:
                fail(f"{s}: dtype differs from the other experts'")
            gtype = st.ggml_type(s)
            used.add(s)

        if all_f32:
            gtype = GGML_F32

        def write(f):
            for s in srcs:
                f.write(np.ascontiguousarray(st.f32(s) if all_f32 else st.raw(s)).tobytes())

        w.add_tensor(dst, list(reversed(want)) + [len(srcs)], gtype, write)

    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    norm_q, norm_k = (q_width, kv_width) if arch == "olmoe" else (head_dim, head_dim)
    copy("model.embed_tokens.weight", "token_embd.weight")
    for L in range(layers):
        p, b = f"model.layers.{L}.", f"blk.{L}."
        copy(p + "input_layernorm.weight", b + "attn_norm.weight", True, (hidden,))
        copy(p + "self_attn.q_proj.weight", b + "attn_q.weight", want=(q_width, hidden))
        copy(p + "self_attn.k_proj.weight", b + "attn_k.weight", want=(kv_width, hidden))
        copy(p + "self_attn.v_proj.weight", b + "attn_v.weight", want=(kv_width, hidden))
        copy(p + "self_attn.o_proj.weight", b + "attn_output.weight", want=(hidden, q_width))
        copy(p + "self_attn.q_norm.weight", b + "attn_q_norm.weight", True, (norm_q,))
        copy(p + "self_attn.k_norm.weight", b + "attn_k_norm.weight", True, (norm_k,))
        copy(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", True, (hidden,))
        copy(p + "mlp.gate.weight", b + "ffn_gate_inp.weight", True, (experts, hidden))
        e = p + "mlp.experts."
        stack([f"{e}{i}.gate_proj.weight" for i in range(experts)], b + "ffn_gate_exps.weight", (expert_width, hidden))
        stack([f"{e}{i}.up_proj.weight" for i in range(experts)], b + "ffn_up_exps.weight", (expert_width, hidden))
        stack([f"{e}{i}.down_proj.weight" for i in range(experts)], b + "ffn_down_exps.weight", (hidden, expert_width))
    copy("model.norm.weight", "output_norm.weight", True, (hidden,))
    if st.has("lm_head.weight"):
        copy("lm_head.weight", "output.weight", want=(vocab_size, hidden))
    elif cfg.get("tie_word_embeddings"):
        if arch == "olmoe":  # llama.cpp's olmoe requires output.weight
            copy("model.embed_tokens.weight", "output.weight")
    else:
        fail("lm_head.weight missing and tie_word_embeddings is false")
    left = sorted(set(st.tensors) - used)
    if left:
        fail(f"{len(left)} tensors not mapped, e.g. {left[:3]}")
    w.write(out)
    return arch, len(w.tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("hf_dir")
    ap.add_argument("out")
    ap.add_argument("--name", help="general.name (default: the directory's name)")
    ap.add_argument("--pre", help="tokenizer.ggml.pre (default: detected from tokenizer.json)")
    ap.add_argument("--f32", action="store_true", help="write every tensor as F32 (for checking numerics)")
    a = ap.parse_args()
    arch, n = export(a.hf_dir, a.out, a.name, a.pre, a.f32)
    print(f"{a.out}: {arch}, {n} tensors, {os.path.getsize(a.out) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
