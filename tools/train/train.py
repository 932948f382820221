#!/usr/bin/env python3
"""Trains hubnode's demo Mixture-of-Experts model (tools/train/README.md).

Reads an initial checkpoint directory written by `hubnode testmodel` (config.json in OLMoE's
layout, the tokenizer learned from the corpus, tensor names) and token-id files written by
`hubnode run --tokenize` (uint32 little-endian), trains the model with PyTorch on the CPU, and
writes an HF-layout checkpoint: the same config and tokenizer, model.safetensors in bf16, a card
with the training figures. The model is OLMoE as transformers' modeling_olmoe.py defines it (the
same rules tests/runtime/reference.py follows): RMSNorm (eps from config) before attention and
the MoE; q and k RMS-normed over the whole projection; rotary embeddings in the rotate-half
convention; grouped-query attention; a softmax router over all experts, top-k without
renormalisation (norm_topk_prob false); SwiGLU experts; untied lm_head.

Deterministic for a seed and a thread count (torch's CPU kernels reduce in a fixed order for a
fixed number of threads).

Usage: train.py --init DIR --train IDS --chat IDS --held IDS --out DIR [--steps N] [--seed S]
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_ids(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) % 4:
        sys.exit("%s is not a file of uint32 ids" % path)
    t = torch.frombuffer(bytearray(data), dtype=torch.int32).to(torch.long)
    return t


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            f.seek(base + a)
            raw = bytearray(f.read(b - a))
            if t["dtype"] != "BF16":
                sys.exit("expected BF16 tensors, %s is %s" % (name, t["dtype"]))
            out[name] = torch.frombuffer(raw, dtype=torch.bfloat16).reshape(t["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    """tensors: name -> bf16 tensor, written in name order with 8-byte aligned header."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous().to(torch.bfloat16)
        raw = t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": "BF16", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class Olmoe(torch.nn.Module):
    def __init__(self, cfg, init):
        super().__init__()
        self.cfg = cfg
        self.H = cfg["hidden_size"]
        self.L = cfg["num_hidden_layers"]
        self.nh = cfg["num_attention_heads"]
        self.kv = cfg["num_key_value_heads"]
        self.D = self.H // self.nh
        self.E = cfg["num_experts"]
        self.K = cfg["num_experts_per_tok"]
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg["rope_theta"]
        assert not cfg.get("norm_topk_prob", False) and not cfg.get("tie_word_embeddings", False)
        # The parameters, by the checkpoint's names; initialised as transformers does (normal 0.02,
        # norms 1), drawn from the seeded generator in name order.
        self.names = sorted(init)
        self.params = torch.nn.ParameterList()
        self.index = {}
        for name in self.names:
            shape = init[name].shape
            if name.endswith("norm.weight") or "layernorm" in name:
                w = torch.ones(shape)
            else:
                w = torch.randn(shape) * cfg.get("initializer_range", 0.02)
            self.index[name] = len(self.params)
            self.params.append(torch.nn.Parameter(w))

    def p(self, name):
        return self.params[self.index[name]]

    def rms(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, T):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.D, 2, dtype=torch.float64) / self.D))
        f = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        emb = torch.cat([f, f], dim=-1)
        return emb.cos().float(), emb.sin().float()

    @staticmethod
    def rot(x, cos, sin):
        h = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], dim=-1) * sin

    def forward(self, ids):
        B, T = ids.shape
        x = F.embedding(ids, self.p("model.embed_tokens.weight"))
        cos, sin = self.rope(T)
        aux = 0.0
        for li in range(self.L):
            pre = "model.layers.%d." % li
            h = self.rms(x, self.p(pre + "input_layernorm.weight"))
            a = pre + "self_attn."
            q = self.rms(h @ self.p(a + "q_proj.weight").t(), self.p(a + "q_norm.weight"))
            k = self.rms(h @ self.p(a + "k_proj.weight").t(), self.p(a + "k_norm.weight"))
            v = h @ self.p(a + "v_proj.weight").t()
            q = q.view(B, T, self.nh, self.D).transpose(1, 2)
            k = k.view(B, T, self.kv, self.D).transpose(1, 2)
            v = v.view(B, T, self.kv, self.D).transpose(1, 2)
            q, k = self.rot(q, cos, sin), self.rot(k, cos, sin)
            rep = self.nh // self.kv
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(self.D)
            mask = torch.ones(T, T, dtype=torch.bool).tril()
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            o = (att @ v).transpose(1, 2).reshape(B, T, self.nh * self.D)
            x = x + o @ self.p(a + "o_proj.weight").t()

            h = self.rms(x, self.p(pre + "post_attention_layernorm.weight")).reshape(B * T, self.H)
            m = pre + "mlp."
            probs = (h @ self.p(m + "gate.weight").t()).softmax(-1)
            wts, sel = probs.topk(self.K, dim=-1)
            out = torch.zeros_like(h)
            for e in range(self.E):
                rows, slot = (sel == e).nonzero(as_tuple=True)
                if rows.numel() == 0:
                    continue
                xe = h[rows]
                ep = "%sexperts.%d." % (m, e)
                y = (F.silu(xe @ self.p(ep + "gate_proj.weight").t()) * (xe @ self.p(ep + "up_proj.weight").t())) \
                    @ self.p(ep + "down_proj.weight").t()
                out.index_add_(0, rows, wts[rows, slot][:, None] * y)
            # Switch-style load balancing: E * sum_e (share of tokens routed to e) * (mean prob of e).
            share = F.one_hot(sel, self.E).sum(1).float().mean(0) / self.K
            aux = aux + self.E * (share * probs.mean(0)).sum()
            x = x + out.view(B, T, self.H)
        x = self.rms(x, self.p("model.norm.weight"))
        return x @ self.p("lm_head.weight").t(), aux / self.L

    def bf16_state(self):
        return {n: self.p(n).detach().to(torch.bfloat16) for n in self.names}

    def load_bf16(self, state):
        with torch.no_grad():
            for n in self.names:
                self.p(n).copy_(state[n].float())


def windows_loss(model, ids, window):
    """Mean next-token loss over consecutive windows read from their start (hubnode run --eval)."""
    n = ids.numel() // window
    total, count = 0.0, 0
    with torch.no_grad():
        for k in range(0, n, 8):
            batch = torch.stack([ids[j * window:(j + 1) * window] for j in range(k, min(n, k + 8))])
            logits, _ = model(batch)
            lp = logits[:, :-1].double().log_softmax(-1)
            nll = -lp.gather(-1, batch[:, 1:, None]).squeeze(-1)
            total += nll.sum().item()
            count += nll.numel()
    return total / count, n, count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--chat", required=True)
    ap.add_argument("--held", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--chat-share", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-window", type=int, default=256)
    ap.add_argument("--system", default="You are a small model trained on the King James Bible.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    cfg = json.load(open(os.path.join(args.init, "config.json")))
    index = json.load(open(os.path.join(args.init, "model.safetensors.index.json")))
    init = {}
    for shard in sorted(set(index["weight_map"].values())):
        init.update(read_safetensors(os.path.join(args.init, shard)))
    model = Olmoe(cfg, init)
    train, chat, held = read_ids(args.train), read_ids(args.chat), read_ids(args.held)
    vocab = cfg["vocab_size"]
    for name, t in (("train", train), ("chat", chat), ("held", held)):
        if int(t.max()) >= vocab:
            sys.exit("%s has ids outside the vocabulary" % name)

    decay = [p for n, p in zip(model.names, model.params) if not ("norm" in n)]
    keep = [p for n, p in zip(model.names, model.params) if "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": keep, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)
    warm = max(1, args.steps // 20)
    coef = cfg.get("router_aux_loss_coef", 0.01)
    log = []
    t0 = time.time()
    tokens_seen = 0
    for step in range(args.steps):
        lr = args.lr * min(1.0, (step + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        n_chat = int(round(args.batch * args.chat_share))
        rows = []
        for src, n in ((train, args.batch - n_chat), (chat, n_chat)):
            starts = torch.randint(0, src.numel() - args.seq - 1, (n,), generator=gen)
            rows += [src[s:s + args.seq + 1] for s in starts.tolist()]
        batch = torch.stack(rows)
        logits, aux = model(batch[:, :-1])
        ce = F.cross_entropy(logits.reshape(-1, vocab), batch[:, 1:].reshape(-1))
        loss = ce + coef * aux
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += batch[:, :-1].numel()
        if step % 25 == 0 or step == args.steps - 1:
            el = time.time() - t0
            log.append({"step": step, "loss": round(ce.item(), 4), "aux": round(float(aux), 4), "lr": lr,
                        "tokens": tokens_seen, "seconds": round(el, 1)})
            print("step %d/%d  loss %.4f  aux %.3f  lr %.2e  %d tok  %.0f s  %.0f tok/s" %
                  (step, args.steps, ce.item(), float(aux), lr, tokens_seen, el, tokens_seen / max(el, 1e-9)), flush=True)
    train_seconds = time.time() - t0

    # The checkpoint is bf16: evaluate the rounded weights, as the runtime will read them.
    state = model.bf16_state()
    model.load_bf16(state)
    held_loss, windows, predicted = windows_loss(model, held, args.eval_window)
    print("held-out loss %.6f over %d windows of %d (%d predicted tokens), perplexity %.2f" %
          (held_loss, windows, args.eval_window, predicted, math.exp(held_loss)), flush=True)

    os.makedirs(args.out, exist_ok=True)
    for f in ("config.json", "generation_config.json", "tokenizer.json", "LICENSE"):
        shutil.copy(os.path.join(args.init, f), os.path.join(args.out, f))
    tc = json.load(open(os.path.join(args.init, "tokenizer_config.json")))
    tc["chat_template"] = tc["chat_template"].replace("You are a test model with random weights.", args.system)
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(args.out, "model.safetensors"), state)
    figures = {"steps": args.steps, "batch": args.batch, "seq": args.seq, "lr": args.lr, "seed": args.seed,
               "threads": args.threads, "chat_share": args.chat_share, "train_tokens_seen": tokens_seen,
               "train_corpus_tokens": int(train.numel()), "chat_corpus_tokens": int(chat.numel()),
               "train_seconds": round(train_seconds, 1), "final_train_loss": log[-1]["loss"],
               "held_out": {"loss": held_loss, "window": args.eval_window, "windows": windows,
                            "predicted_tokens": predicted, "perplexity": math.exp(held_loss)},
               "parameters": sum(p.numel() for p in model.params), "torch": torch.__version__, "log": log}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(figures, f, indent=1)
        f.write("\n")
    print(json.dumps({k: v for k, v in figures.items() if k != "log"}))


if __name__ == "__main__":
    main()
