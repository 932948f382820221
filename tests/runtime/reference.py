#!/usr/bin/python3
"""Reference forward pass (NumPy, float64) for the Hugging Face checkpoints hubnode serves.

Usage:
  reference.py MODEL_DIR --tokens 1,2,3 [--decode 16] [--rope-scaling JSON]
               [--config-override JSON] [--no-cache] [--route-margin]

Prints one JSON object on stdout and nothing else:
  {"prefill_logits": [[vocab floats] per prompt position],
   "decode": [{"token": id, "logits": [vocab floats]}, ...]}
Decode step i appends the argmax of the previous logits (ties: lowest token id, like np.argmax)
and records the logits of that new position, so --decode 16 generates 16 tokens; the first one is
the argmax of the last prefill position. Errors: message on stderr, exit status 2.

Families (config.json "model_type"): mixtral, qwen2_moe, qwen3_moe, olmoe, llama, qwen2, qwen3,
deepseek_v2, deepseek_v3 (the DeepSeek rules are written down in docs/deepseek.md, from DeepSeek's
modeling_deepseek.py and transformers' modeling_deepseek_v2/v3.py: MLA with the decompressed keys
and values per head, as those files compute it; rope pairs (x[2i], x[2i+1]) rotated as complex
numbers; YaRN's softmax scale; softmax/sigmoid scores, greedy/group-limited/noaux_tc selection;
shared experts; F8_E4M3 weights times their 128 x 128 `weight_scale_inv` blocks).
Semantics follow transformers (modeling_llama/qwen2/qwen3/mixtral/qwen2_moe/qwen3_moe/olmoe.py,
modeling_rope_utils.py); every tensor is converted to float64 and all arithmetic is float64
(transformers runs the router softmax and RMSNorm in fp32 and everything else in the model dtype).
Conventions where transformers leaves a choice:
  * MoE top-k: experts ordered by (probability descending, expert index ascending), i.e. on exact
    ties the lowest expert index wins (what torch.topk does in practice; not documented by torch).
  * Router: softmax over all experts (float64 here, fp32 in transformers), top-k, renormalise
    always for mixtral and iff norm_topk_prob for qwen2_moe / qwen3_moe / olmoe (default false).
  * Attention / Linear biases are used whenever the checkpoint has them (required for q/k/v of
    qwen2 and qwen2_moe and wherever attention_bias is true).
  * Sliding window (mixtral "sliding_window" when not null; qwen2-family only when
    use_sliding_window is true and layer_idx >= max_window_layers): query i sees key j iff
    j <= i and i - j < sliding_window (transformers' mask: kv_idx > q_idx - sliding_window).
  * RoPE: rotate_half (first half / second half), inv_freq per rope type as in
    _compute_{default,linear_scaling,dynamic_ntk,yarn,llama3}_parameters; yarn's attention factor
    multiplies cos and sin. "dynamic" is recomputed for each forward chunk with
    seq_len = max(position)+1 (clamped below by max_position_embeddings), as transformers'
    dynamic_rope_update does; yarn uses the explicit "factor" and original_max_position_embeddings
    (default max_position_embeddings), mscale/mscale_all_dim/attention_factor/truncate as in
    transformers v5 (4.4x-4.5x instead replaced factor by max_position_embeddings /
    original_max_position_embeddings when the latter was given); with the KV cache (default, like generate(use_cache=True)) keys
    keep the rotation they were written with; --no-cache recomputes the whole sequence per step.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np


class RefError(Exception):
    """Any input problem; main() turns it into exit status 2."""


# ----------------------------------------------------------------------------- safetensors

MAX_HEADER = 100_000_000
# dtype -> (numpy dtype or None for special handling, bits per element)
DTYPES = {
    "F64": ("<f8", 64), "F32": ("<f4", 32), "F16": ("<f2", 16), "BF16": ("<u2", 16),
    "I64": ("<i8", 64), "I32": ("<i4", 32), "I16": ("<i2", 16), "I8": ("i1", 8),
    "U64": ("<u8", 64), "U32": ("<u4", 32), "U16": ("<u2", 16), "U8": ("u1", 8),
    "BOOL": ("u1", 8), "F8_E4M3": ("u1", 8),
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16", "F8_E4M3")


def f8e4m3_to_float64(codes):
    """float8 e4m3fn codes (uint8) to float64: bias 7, subnormals, no infinities, S.1111.111 NaN."""
    c = codes.astype(np.int64)
    e, m = (c >> 3) & 15, c & 7
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7.0))
    v = np.where((e == 15) & (m == 7), np.nan, v)
    return np.where(c & 0x80, -v, v)


def _no_dup_pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise RefError("safetensors: duplicate key %r in header" % k)
        d[k] = v
    return d


def parse_safetensors_header(path):
    """Validates a safetensors file like safetensors' Metadata::validate.

    Returns (header dict without __metadata__, byte offset of the data buffer)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise RefError("safetensors: %s: file shorter than the 8-byte header length" % path)
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise RefError("safetensors: %s: header length %d exceeds limit" % (path, n))
            if 8 + n > size:
                raise RefError("safetensors: %s: truncated header (%d bytes declared, file %d)"
                               % (path, n, size))
            raw = f.read(n)
    except OSError as e:
        raise RefError("safetensors: %s: %s" % (path, e))
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dup_pairs)
    except (UnicodeDecodeError, ValueError) as e:
        if isinstance(e, RefError):
            raise
        raise RefError("safetensors: %s: bad JSON header: %s" % (path, e))
    if not isinstance(header, dict):
        raise RefError("safetensors: %s: header is not an object" % path)
    header.pop("__metadata__", None)
    spans = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise RefError("safetensors: %s: bad entry for %r" % (path, name))
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in DTYPES:
            raise RefError("safetensors: %s: unsupported dtype %r for %r" % (path, dt, name))
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)
                or not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and o >= 0 for o in offs) or offs[0] > offs[1]):
            raise RefError("safetensors: %s: bad shape/offsets for %r" % (path, name))
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if offs[1] - offs[0] != numel * DTYPES[dt][1] // 8:
            raise RefError("safetensors: %s: size mismatch for %r" % (path, name))
        spans.append((offs[0], offs[1], name))
    spans.sort()
    pos = 0
    for b, e, name in spans:
        if b != pos:
            raise RefError("safetensors: %s: gap or overlap before %r" % (path, name))
        pos = e
    if 8 + n + pos != size:
        raise RefError("safetensors: %s: file size %d, header implies %d (truncated or trailing "
                       "bytes)" % (path, size, 8 + n + pos))
    return header, 8 + n


def to_float64(raw, dtype, shape):
    """Converts little-endian bytes of a safetensors dtype to a float64 array."""
    npdt = np.dtype(DTYPES[dtype][0])
    a = np.frombuffer(raw, dtype=npdt)
    if dtype == "BF16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    if dtype == "F8_E4M3":
        return f8e4m3_to_float64(a).reshape(shape)
    return a.astype(np.float64).reshape(shape)


class Checkpoint:
    """Tensor name -> (file, header entry); tensors are read and converted on first use."""

    def __init__(self, model_dir):
        self.entries = {}
        index = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(index):
            try:
                with open(index) as f:
                    weight_map = json.load(f)["weight_map"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise RefError("bad %s: %s" % (index, e))
            files = sorted(set(weight_map.values()))
        else:
            weight_map, files = None, ["model.safetensors"]
        for fn in files:
            path = os.path.join(model_dir, fn)
            header, base = parse_safetensors_header(path)
            for name, info in header.items():
                if weight_map is None or weight_map.get(name) == fn:
                    self.entries[name] = (path, base, info)
        if weight_map is not None:
            missing = [n for n in weight_map if n not in self.entries]
            if missing:
                raise RefError("index names tensors missing from their shard: %s" % missing[:5])
        self.cache = {}

    def has(self, name):
        return name in self.entries

    def get(self, name, shape=None):
        if name not in self.cache:
            if name not in self.entries:
                raise RefError("checkpoint lacks tensor %s" % name)
            path, base, info = self.entries[name]
            if info["dtype"] not in FLOAT_DTYPES:
                raise RefError("tensor %s has non-float dtype %s" % (name, info["dtype"]))
            b, e = info["data_offsets"]
            with open(path, "rb") as f:
                f.seek(base + b)
                raw = f.read(e - b)
            t = to_float64(raw, info["dtype"], info["shape"])
            if info["dtype"] == "F8_E4M3":   # DeepSeek-V3: value = stored · weight_scale_inv[block]
                if len(t.shape) != 2:
                    raise RefError("F8_E4M3 tensor %s is not a matrix" % name)
                rows, cols = t.shape
                br, bc = -(-rows // 128), -(-cols // 128)
                s = self.get(name + "_scale_inv", (br, bc))
                t = t * np.repeat(np.repeat(s, 128, axis=0), 128, axis=1)[:rows, :cols]
            self.cache[name] = t
        t = self.cache[name]
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise RefError("tensor %s has shape %s, expected %s" % (name, list(t.shape), list(shape)))
        return t


# ----------------------------------------------------------------------------- config

FAMILIES = ("mixtral", "qwen2_moe", "qwen3_moe", "olmoe", "llama", "qwen2", "qwen3",
            "deepseek_v2", "deepseek_v3")
ROPE_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")


class Config:
    def __init__(self, raw):
        g = raw.get
        self.family = g("model_type")
        if self.family not in FAMILIES:
            raise RefError("unsupported model_type %r" % self.family)
        if g("hidden_act", "silu") != "silu":
            raise RefError("unsupported hidden_act %r" % g("hidden_act"))
        try:
            self.hidden = int(raw["hidden_size"])
            self.layers = int(raw["num_hidden_layers"])
            self.heads = int(raw["num_attention_heads"])
            self.vocab = int(raw["vocab_size"])
        except (KeyError, TypeError, ValueError) as e:
            raise RefError("config.json: missing or bad field %s" % e)
        self.kv_heads = int(g("num_key_value_heads") or self.heads)
        self.head_dim = int(g("head_dim") or self.hidden // self.heads)
        if self.heads % self.kv_heads:
            raise RefError("num_attention_heads not a multiple of num_key_value_heads")
        self.eps = float(g("rms_norm_eps", 1e-6))
        self.max_pos = int(g("max_position_embeddings", 2048))
        self.tie = bool(g("tie_word_embeddings", False))
        self.intermediate = g("intermediate_size")
        self.clip_qkv = g("clip_qkv") if self.family == "olmoe" else None
        rp = g("rope_parameters") if isinstance(g("rope_parameters"), dict) else {}
        self.rope_theta = float(g("rope_theta") or rp.get("rope_theta") or 10000.0)
        self.rope_scaling = g("rope_scaling") if g("rope_scaling") is not None else (rp or None)
        # qk-norm: "head" = per head over head_dim (qwen3*), "full" = whole projection (olmoe)
        self.qk_norm = {"qwen3": "head", "qwen3_moe": "head", "olmoe": "full"}.get(self.family)
        self.require_qkv_bias = self.family in ("qwen2", "qwen2_moe") or bool(g("attention_bias"))
        # sliding window per layer
        sw = g("sliding_window")
        self.window = [None] * self.layers
        if sw is not None:
            if self.family == "mixtral":
                self.window = [int(sw)] * self.layers
            elif self.family in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe") and g("use_sliding_window"):
                mwl = int(g("max_window_layers", self.layers))
                self.window = [int(sw) if i >= mwl else None for i in range(self.layers)]
        # MoE
        self.moe_layers = set()
        self.shared_expert = self.family == "qwen2_moe"
        self.deepseek = self.family in ("deepseek_v2", "deepseek_v3")
        if self.deepseek:
            self.init_deepseek(raw)
            return
        if self.family == "mixtral":
            self.experts = int(g("num_local_experts") or g("num_experts") or 8)
            self.norm_topk = True
            self.moe_layers = set(range(self.layers))
        elif self.family in ("qwen2_moe", "qwen3_moe", "olmoe"):
            self.experts = int(g("num_experts") or g("num_local_experts") or 0)
            self.norm_topk = bool(g("norm_topk_prob", False))
            if self.family == "olmoe":
                self.moe_layers = set(range(self.layers)) if self.experts > 0 else set()
            else:
                step = int(g("decoder_sparse_step", 1))
                only = set(g("mlp_only_layers") or [])
                self.moe_layers = {i for i in range(self.layers) if i not in only
                                   and self.experts > 0 and (i + 1) % step == 0}
        if self.moe_layers:
            self.top_k = int(g("num_experts_per_tok", 2))
            if not 1 <= self.top_k <= self.experts:
                raise RefError("num_experts_per_tok %d out of range" % self.top_k)
            # expert width: intermediate_size for mixtral / olmoe, moe_intermediate_size for qwen
            key = "intermediate_size" if self.family in ("mixtral", "olmoe") else "moe_intermediate_size"
            self.moe_width = g(key)
            self.shared_width = g("shared_expert_intermediate_size") if self.shared_expert else 0
            if self.moe_width is None or self.shared_width is None:
                raise RefError("config.json lacks %s" % (key if self.moe_width is None
                                                         else "shared_expert_intermediate_size"))
        if set(range(self.layers)) - self.moe_layers and self.intermediate is None:
            raise RefError("config.json lacks intermediate_size")

    def init_deepseek(self, raw):
        g = raw.get
        v3 = self.family == "deepseek_v3"
        if g("attention_bias"):
            raise RefError("attention_bias is not supported for deepseek")
        self.q_lora = g("q_lora_rank")                 # None: a plain q_proj
        self.kv_lora = int(raw["kv_lora_rank"])
        self.nope, self.rope = int(raw["qk_nope_head_dim"]), int(raw["qk_rope_head_dim"])
        self.v_dim = int(raw["v_head_dim"])
        self.head_dim = self.rope                      # RoPE (and YaRN) cover the rope part
        # V2 always rotates interleaved pairs; V3 when rope_interleave (default true)
        self.interleave = bool(g("rope_interleave", True)) if v3 else True
        self.softmax_scale = (self.nope + self.rope) ** -0.5
        rs = self.rope_scaling
        if isinstance(rs, dict):
            msad = rs.get("mscale_all_dim") or 0
            if msad:
                m = yarn_mscale(float(rs["factor"]), float(msad))
                self.softmax_scale *= m * m
        self.experts = int(g("n_routed_experts") or 0)
        if self.experts:
            first, freq = int(g("first_k_dense_replace") or 0), int(g("moe_layer_freq") or 1)
            self.moe_layers = {i for i in range(self.layers) if i >= first and i % freq == 0}
            self.top_k = int(raw["num_experts_per_tok"])
            self.moe_width = int(raw["moe_intermediate_size"])
            self.shared_width = self.moe_width * int(g("n_shared_experts") or 0)
            self.scoring = g("scoring_func", "sigmoid" if v3 else "softmax")
            self.topk_method = g("topk_method", "noaux_tc" if v3 else "greedy")
            if self.topk_method == "gready":
                self.topk_method = "greedy"
            if self.scoring not in ("softmax", "sigmoid") or self.topk_method not in (
                    "greedy", "group_limited_greedy", "noaux_tc"):
                raise RefError("unsupported scoring_func / topk_method")
            self.n_group, self.topk_group = int(g("n_group") or 1), int(g("topk_group") or 1)
            self.norm_topk = bool(g("norm_topk_prob", v3))
            self.scaling = float(g("routed_scaling_factor") or 1.0)
        if set(range(self.layers)) - self.moe_layers and self.intermediate is None:
            raise RefError("config.json lacks intermediate_size")


# ----------------------------------------------------------------------------- RoPE

def rope_type_of(rs):
    if rs is None:
        return "default"
    if not isinstance(rs, dict):
        raise RefError("rope_scaling must be an object or null")
    t = rs.get("rope_type", rs.get("type", "default"))
    if t not in ROPE_TYPES:
        raise RefError("unknown rope type %r (supported: %s)" % (t, ", ".join(ROPE_TYPES)))
    return t


def _need(rs, key):
    if rs.get(key) is None:
        raise RefError("rope_scaling of type %s needs %r" % (rope_type_of(rs), key))
    return float(rs[key])


def rope_params(cfg, seq_len):
    """Returns (inv_freq [head_dim/2], attention_factor) for the current total length."""
    rs = cfg.rope_scaling
    t = rope_type_of(rs)
    dim, base = cfg.head_dim, cfg.rope_theta
    expo = np.arange(0, dim, 2, dtype=np.float64) / dim
    inv = 1.0 / base ** expo
    if t == "default":
        return inv, 1.0
    if t == "linear":                       # _compute_linear_scaling_rope_parameters
        return inv / _need(rs, "factor"), 1.0
    if t == "dynamic":                      # _compute_dynamic_ntk_parameters
        factor = _need(rs, "factor")
        s = max(seq_len, cfg.max_pos)
        b = base * ((factor * s / cfg.max_pos) - (factor - 1)) ** (dim / (dim - 2))
        return 1.0 / b ** expo, 1.0
    if t == "llama3":                       # _compute_llama3_parameters
        factor = _need(rs, "factor")
        low, high = _need(rs, "low_freq_factor"), _need(rs, "high_freq_factor")
        old = float(rs.get("original_max_position_embeddings") or cfg.max_pos)
        low_wl, high_wl = old / low, old / high
        wl = 2 * math.pi / inv
        out = np.where(wl > low_wl, inv / factor, inv)
        smooth = (old / wl - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wl < high_wl) & ~(wl > low_wl)
        return np.where(medium, smoothed, out), 1.0
    # yarn: _compute_yarn_parameters (transformers >= v5 semantics: explicit factor wins)
    orig = float(rs.get("original_max_position_embeddings") or cfg.max_pos)
    factor = rs.get("factor")
    factor = float(factor) if factor is not None else cfg.max_pos / orig

    def mscale_of(scale, m=1.0):
        return yarn_mscale(scale, m)

    att = rs.get("attention_factor")
    if att is None and getattr(cfg, "deepseek", False):
        # DeepSeek's YaRN: mscale(factor, mscale) / mscale(factor, mscale_all_dim), defaults 1, 0
        att = mscale_of(factor, float(rs.get("mscale", 1.0))) / mscale_of(factor, float(rs.get("mscale_all_dim", 0.0)))
    if att is None:
        ms, msad = rs.get("mscale"), rs.get("mscale_all_dim")
        att = mscale_of(factor, ms) / mscale_of(factor, msad) if ms and msad else mscale_of(factor)
    beta_fast = float(rs.get("beta_fast") or 32)
    beta_slow = float(rs.get("beta_slow") or 1)

    def corr_dim(rot):
        return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

    lo, hi = corr_dim(beta_fast), corr_dim(beta_slow)
    if rs.get("truncate", True):
        lo, hi = math.floor(lo), math.ceil(hi)
    lo, hi = max(lo, 0), min(hi, dim - 1)
    if lo == hi:
        hi += 0.001
    ramp = np.clip((np.arange(dim // 2, dtype=np.float64) - lo) / (hi - lo), 0, 1)
    extra = 1 - ramp                           # inv_freq_extrapolation_factor
    inv = (inv / factor) * (1 - extra) + inv * extra
    return inv, float(att)


def yarn_mscale(scale, m=1.0):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def rope_cos_sin(cfg, positions, seq_len):
    inv, att = rope_params(cfg, seq_len)
    freqs = np.asarray(positions, dtype=np.float64)[:, None] * inv[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)          # [T, head_dim]
    return np.cos(emb) * att, np.sin(emb) * att


def apply_rope(x, cos, sin):
    """x: [T, n, d]; HF rotate_half convention (non-interleaved halves)."""
    h = x.shape[-1] // 2
    rot = np.concatenate([-x[..., h:], x[..., :h]], axis=-1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def apply_rope_pairs(x, positions, inv, att):
    """x: [T, n, d]; DeepSeek's interleaved form: (x[2i], x[2i+1]) as a complex number times
    att · e^{i·pos·inv[i]} (modeling_deepseek_v2.py apply_rotary_emb)."""
    ang = np.asarray(positions, dtype=np.float64)[:, None] * inv[None, :]      # [T, d/2]
    z = (x[..., 0::2] + 1j * x[..., 1::2]) * (att * np.exp(1j * ang))[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = z.real, z.imag
    return out


# ----------------------------------------------------------------------------- layers

def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def silu(x):
    return x * (0.5 * (1.0 + np.tanh(0.5 * x)))     # x * sigmoid(x), overflow-free


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


class Model:
    def __init__(self, model_dir, rope_override=False, rope_scaling=None, overrides=None):
        try:
            with open(os.path.join(model_dir, "config.json")) as f:
                raw = json.load(f)
        except (OSError, ValueError) as e:
            raise RefError("cannot read config.json in %s: %s" % (model_dir, e))
        if not isinstance(raw, dict):
            raise RefError("config.json is not a JSON object")
        raw.update(overrides or {})
        if rope_override:
            raw["rope_scaling"] = rope_scaling
            rp = raw.get("rope_parameters")            # v5 layout: keep only its rope_theta
            raw["rope_parameters"] = ({"rope_theta": rp["rope_theta"]}
                                      if isinstance(rp, dict) and "rope_theta" in rp else None)
        self.cfg = Config(raw)
        rope_type_of(self.cfg.rope_scaling)           # fail early on unknown types
        self.ck = Checkpoint(model_dir)
        self.min_margin = math.inf

    def w(self, name, shape=None):
        return self.ck.get(name, shape)

    def linear(self, x, prefix, out_dim, in_dim, need_bias=False):
        y = x @ self.w(prefix + ".weight", (out_dim, in_dim)).T
        if need_bias or self.ck.has(prefix + ".bias"):
            y = y + self.w(prefix + ".bias", (out_dim,))
        return y

    def mlp(self, x, prefix, width, names=("gate_proj", "up_proj", "down_proj")):
        H = self.cfg.hidden
        g = self.linear(x, prefix + "." + names[0], width, H)
        u = self.linear(x, prefix + "." + names[1], width, H)
        return self.linear(silu(g) * u, prefix + "." + names[2], H, width)

    def route_deepseek(self, logits, li):
        """DeepSeek's routing: (expert indices [T, k], weights [T, k])."""
        c = self.cfg
        T, E = logits.shape
        scores = softmax(logits) if c.scoring == "softmax" else sigmoid(logits)
        choice = scores.copy()
        if c.topk_method == "noaux_tc":
            choice = choice + self.w("model.layers.%d.mlp.gate.e_score_correction_bias" % li, (E,))
        sel = np.zeros((T, c.top_k), dtype=np.int64)
        for t in range(T):
            allowed = np.ones(E, dtype=bool)
            if c.topk_method != "greedy" and c.n_group > 1:
                grp = choice[t].reshape(c.n_group, -1)
                if c.topk_method == "noaux_tc":     # sum of the two best (bias included)
                    gs = np.sort(grp, axis=-1)[:, ::-1][:, :2].sum(axis=-1)
                else:                               # group_limited_greedy: the best
                    gs = grp.max(axis=-1)
                keep = np.argsort(-gs, kind="stable")[:c.topk_group]
                allowed = np.zeros((c.n_group, E // c.n_group), dtype=bool)
                allowed[keep] = True
                allowed = allowed.reshape(E)
            cand = np.nonzero(allowed)[0]
            order = cand[np.argsort(-choice[t, cand], kind="stable")]
            sel[t] = order[:c.top_k]
        w = np.take_along_axis(scores, sel, axis=-1)       # unbiased scores
        norm = c.top_k > 1 and c.norm_topk
        if norm:
            w = w / (w.sum(axis=-1, keepdims=True) + 1e-20)
        if not norm or c.family == "deepseek_v3":          # V2 scales only what it leaves
            w = w * c.scaling
        return sel, w

    def moe(self, x, li):
        c = self.cfg
        if c.deepseek:
            p = "model.layers.%d.mlp" % li
            sel, wts = self.route_deepseek(x @ self.w(p + ".gate.weight", (c.experts, c.hidden)).T, li)
            out = np.zeros_like(x)
            for e in np.unique(sel):
                rows, slots = np.nonzero(sel == e)
                y = self.mlp(x[rows], "%s.experts.%d" % (p, e), c.moe_width)
                np.add.at(out, rows, wts[rows, slots][:, None] * y)
            if c.shared_width:
                out = out + self.mlp(x, p + ".shared_experts", c.shared_width)
            return out
        if c.family == "mixtral":
            p, names = "model.layers.%d.block_sparse_moe" % li, ("w1", "w3", "w2")
        else:
            p, names = "model.layers.%d.mlp" % li, ("gate_proj", "up_proj", "down_proj")
        width = int(c.moe_width)
        probs = softmax(x @ self.w(p + ".gate.weight", (c.experts, c.hidden)).T)   # [T, E]
        order = np.argsort(-probs, axis=-1, kind="stable")      # ties: lowest index first
        sel = order[:, :c.top_k]
        wts = np.take_along_axis(probs, sel, axis=-1)
        if c.top_k < c.experts:
            nxt = np.take_along_axis(probs, order[:, c.top_k:c.top_k + 1], axis=-1)
            self.min_margin = min(self.min_margin, float(np.min(wts[:, -1:] - nxt)))
        if c.norm_topk:
            wts = wts / np.sum(wts, axis=-1, keepdims=True)
        out = np.zeros_like(x)
        for e in np.unique(sel):
            rows, slots = np.nonzero(sel == e)
            y = self.mlp(x[rows], "%s.experts.%d" % (p, e), width, names)
            np.add.at(out, rows, wts[rows, slots][:, None] * y)
        if c.shared_expert:
            sw = int(c.shared_width)
            gate = sigmoid(self.linear(x, p + ".shared_expert_gate", 1, c.hidden))
            out = out + gate * self.mlp(x, p + ".shared_expert", sw)
        return out

    def mla(self, x, li, positions, cache):
        """Multi-head latent attention as DeepSeek's modeling code writes it: keys and values
        decompressed per head (the cache holds them decompressed)."""
        c = self.cfg
        p = "model.layers.%d.self_attn" % li
        T, H, nope, rope, vd = x.shape[0], c.heads, c.nope, c.rope, c.v_dim
        qk = nope + rope
        if c.q_lora:
            qa = rms_norm(self.linear(x, p + ".q_a_proj", c.q_lora, c.hidden),
                          self.w(p + ".q_a_layernorm.weight", (c.q_lora,)), c.eps)
            q = self.linear(qa, p + ".q_b_proj", H * qk, c.q_lora)
        else:
            q = self.linear(x, p + ".q_proj", H * qk, c.hidden)
        q = q.reshape(T, H, qk)
        q_nope, q_pe = q[..., :nope], q[..., nope:]
        ckv = self.linear(x, p + ".kv_a_proj_with_mqa", c.kv_lora + rope, c.hidden)
        latent, k_pe = ckv[:, :c.kv_lora], ckv[:, c.kv_lora:].reshape(T, 1, rope)
        latent = rms_norm(latent, self.w(p + ".kv_a_layernorm.weight", (c.kv_lora,)), c.eps)
        kv = self.linear(latent, p + ".kv_b_proj", H * (nope + vd), c.kv_lora).reshape(T, H, nope + vd)
        k_nope, v = kv[..., :nope], kv[..., nope:]
        inv, att = rope_params(c, int(max(positions)) + 1)
        if c.interleave:
            q_pe, k_pe = apply_rope_pairs(q_pe, positions, inv, att), apply_rope_pairs(k_pe, positions, inv, att)
        else:
            cos, sin = rope_cos_sin(c, positions, int(max(positions)) + 1)
            q_pe, k_pe = apply_rope(q_pe, cos, sin), apply_rope(k_pe, cos, sin)
        q = np.concatenate([q_nope, q_pe], axis=-1)                            # [T, H, qk]
        k = np.concatenate([k_nope, np.broadcast_to(k_pe, (T, H, rope))], axis=-1)
        if cache is not None:
            if cache[li] is not None:
                k = np.concatenate([cache[li][0], k], axis=0)
                v = np.concatenate([cache[li][1], v], axis=0)
            cache[li] = (k, v)
        S = k.shape[0]
        allowed = np.arange(S)[None, :] <= np.asarray(positions)[:, None]     # [T, S]
        scores = np.einsum("thd,shd->hts", q, k) * c.softmax_scale
        scores = np.where(allowed[None], scores, -np.inf)
        o = np.einsum("hts,shd->thd", softmax(scores, axis=-1), v).reshape(T, H * vd)
        return self.linear(o, p + ".o_proj", c.hidden, H * vd)

    def attention(self, x, li, positions, cos, sin, cache):
        c = self.cfg
        if c.deepseek:
            return self.mla(x, li, positions, cache)
        p = "model.layers.%d.self_attn" % li
        T, H, KV, D = x.shape[0], c.heads, c.kv_heads, c.head_dim
        bias = c.require_qkv_bias
        q = self.linear(x, p + ".q_proj", H * D, c.hidden, bias)
        k = self.linear(x, p + ".k_proj", KV * D, c.hidden, bias)
        v = self.linear(x, p + ".v_proj", KV * D, c.hidden, bias)
        if c.qk_norm == "full":
            q = rms_norm(q, self.w(p + ".q_norm.weight", (H * D,)), c.eps)
            k = rms_norm(k, self.w(p + ".k_norm.weight", (KV * D,)), c.eps)
        if c.clip_qkv is not None:
            q, k, v = (np.clip(t, -c.clip_qkv, c.clip_qkv) for t in (q, k, v))
        q, k, v = q.reshape(T, H, D), k.reshape(T, KV, D), v.reshape(T, KV, D)
        if c.qk_norm == "head":
            q = rms_norm(q, self.w(p + ".q_norm.weight", (D,)), c.eps)
            k = rms_norm(k, self.w(p + ".k_norm.weight", (D,)), c.eps)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            if cache[li] is not None:
                k = np.concatenate([cache[li][0], k], axis=0)
                v = np.concatenate([cache[li][1], v], axis=0)
            cache[li] = (k, v)
        S = k.shape[0]
        kpos = np.arange(S)
        qpos = np.asarray(positions)[:, None]
        allowed = kpos[None, :] <= qpos
        if c.window[li] is not None:
            allowed &= (qpos - kpos[None, :]) < c.window[li]
        rep = H // KV
        qg = q.reshape(T, KV, rep, D).transpose(1, 2, 0, 3)           # [KV, rep, T, D]
        kg, vg = k.transpose(1, 0, 2), v.transpose(1, 0, 2)            # [KV, S, D]
        scores = np.einsum("grtd,gsd->grts", qg, kg) / math.sqrt(D)
        scores = np.where(allowed[None, None], scores, -np.inf)
        attn = softmax(scores, axis=-1)
        o = np.einsum("grts,gsd->grtd", attn, vg)                      # [KV, rep, T, D]
        o = o.transpose(2, 0, 1, 3).reshape(T, H * D)
        return self.linear(o, p + ".o_proj", c.hidden, H * D)

    def forward(self, tokens, positions, cache=None):
        """Logits [T, vocab] for `tokens` at `positions` (cache: per-layer (K, V) or None)."""
        c = self.cfg
        emb = self.w("model.embed_tokens.weight", (c.vocab, c.hidden))
        x = emb[np.asarray(tokens)]
        seq_len = int(max(positions)) + 1
        cos, sin = rope_cos_sin(c, positions, seq_len)
        for li in range(c.layers):
            p = "model.layers.%d" % li
            h = rms_norm(x, self.w(p + ".input_layernorm.weight", (c.hidden,)), c.eps)
            x = x + self.attention(h, li, positions, cos, sin, cache)
            h = rms_norm(x, self.w(p + ".post_attention_layernorm.weight", (c.hidden,)), c.eps)
            if li in c.moe_layers:
                x = x + self.moe(h, li)
            else:
                x = x + self.mlp(h, p + ".mlp", int(c.intermediate))
        x = rms_norm(x, self.w("model.norm.weight", (c.hidden,)), c.eps)
        head = emb if c.tie else self.w("lm_head.weight", (c.vocab, c.hidden))
        return x @ head.T

    def run(self, tokens, decode=0, use_cache=True):
        """Prefill logits [T, V] and a list of (token, logits[V]) greedy decode steps."""
        tokens = [int(t) for t in tokens]
        if not tokens:
            raise RefError("need at least one token")
        bad = [t for t in tokens if not 0 <= t < self.cfg.vocab]
        if bad:
            raise RefError("token ids out of range [0, %d): %s" % (self.cfg.vocab, bad[:5]))
        cache = [None] * self.cfg.layers if use_cache else None
        prefill = self.forward(tokens, list(range(len(tokens))), cache)
        steps, last = [], prefill[-1]
        for _ in range(decode):
            nxt = int(np.argmax(last))                    # ties: lowest token id
            tokens.append(nxt)
            n = len(tokens)
            if use_cache:
                last = self.forward([nxt], [n - 1], cache)[-1]
            else:
                last = self.forward(tokens, list(range(n)))[-1]
            steps.append((nxt, last))
        return prefill, steps


def load_model(model_dir, rope_override=False, rope_scaling=None, overrides=None):
    return Model(model_dir, rope_override, rope_scaling, overrides)


# ----------------------------------------------------------------------------- CLI

def parse_json_arg(text, what):
    try:
        return json.loads(text)
    except ValueError as e:
        raise RefError("bad JSON for %s: %s" % (what, e))


def main(argv=None):
    ap = argparse.ArgumentParser(description="float64 NumPy reference forward pass")
    ap.add_argument("model_dir")
    ap.add_argument("--tokens", required=True, help="comma-separated prompt token ids")
    ap.add_argument("--decode", type=int, default=0, help="greedy steps after the prompt")
    ap.add_argument("--rope-scaling", help="JSON object or null replacing config rope_scaling")
    ap.add_argument("--config-override", help="JSON object merged into config.json (tests)")
    ap.add_argument("--no-cache", action="store_true", help="recompute the full sequence per step")
    ap.add_argument("--route-margin", action="store_true",
                    help='add "min_route_margin": smallest gap between the k-th and (k+1)-th '
                         "router probability seen (small = routing fragile in low precision)")
    args = ap.parse_args(argv)
    try:
        try:
            tokens = [int(t) for t in args.tokens.split(",") if t.strip() != ""]
        except ValueError:
            raise RefError("--tokens must be comma-separated integers")
        if args.decode < 0:
            raise RefError("--decode must be >= 0")
        overrides = None
        if args.config_override is not None:
            overrides = parse_json_arg(args.config_override, "--config-override")
            if not isinstance(overrides, dict):
                raise RefError("--config-override must be a JSON object")
        rope_override = args.rope_scaling is not None
        rs = parse_json_arg(args.rope_scaling, "--rope-scaling") if rope_override else None
        model = load_model(args.model_dir, rope_override, rs, overrides)
        prefill, steps = model.run(tokens, args.decode, use_cache=not args.no_cache)
    except RefError as e:
        sys.stderr.write("reference.py: error: %s\n" % e)
        return 2
    out = {"prefill_logits": prefill.tolist(),
           "decode": [{"token": t, "logits": l.tolist()} for t, l in steps]}
    if args.route_margin:
        out["min_route_margin"] = None if math.isinf(model.min_margin) else model.min_margin
    sys.stdout.write(json.dumps(out))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
