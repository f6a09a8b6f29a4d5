"""kiln's transformer in PyTorch, for parity tests and speed comparisons.

KilnGPT mirrors src/model/gpt.c: one module covers GPT-2 (learned positions,
LayerNorm, tanh GELU, biases, tied lm_head) and Llama (RoPE, RMSNorm, SwiGLU,
GQA, no biases, untied) and their mixtures. Parameter names equal the names
kiln writes to safetensors (HF Llama style), so

    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})

loads kiln weights directly. With tied=True there is no lm_head.weight: the
logits use model.embed_tokens.weight.

KilnGPT(cfg, bf16=True) rounds where kiln's train.precision: bf16 rounds
(src/backend/backend.h): every matmul's operands to bf16 in forward, and the
gradient of every matmul's output to bf16 before the backward matmuls; the
rest (norms, softmax, loss, bias and residual sums) stays in the model's dtype.
It is the exact specification kiln is held to; torch.autocast is the looser
reference (it also keeps activations in bf16 between matmuls).

Written for Python 3 + torch 1.13 + numpy only (no safetensors/yaml packages).
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MODEL_DEFAULTS = dict(vocab_size=256, block_size=256, n_layer=4, n_head=4, n_kv_head=0, n_embd=128,
                      ffn_hidden=0, pos="learned", norm="layernorm", act="gelu", bias=True, tied=True,
                      dropout=0.0, norm_eps=1e-5, rope_theta=10000.0, init_std=0.02)


def model_config(cfg):
    """kiln's model config with defaults and derived values filled in as
    kiln_config_finalize does (n_kv_head 0 -> n_head; ffn_hidden 0 -> 4*C, or for
    SwiGLU 8/3*C rounded up to a multiple of 64)."""
    c = dict(MODEL_DEFAULTS)
    c.update(cfg)
    if not c["n_kv_head"]:
        c["n_kv_head"] = c["n_head"]
    if not c["ffn_hidden"]:
        C = c["n_embd"]
        c["ffn_hidden"] = ((8 * C // 3) + 63) // 64 * 64 if c["act"] == "swiglu" else 4 * C
    assert c["pos"] in ("learned", "rope"), c["pos"]
    assert c["norm"] in ("layernorm", "rmsnorm"), c["norm"]
    assert c["act"] in ("gelu", "gelu_erf", "relu", "swiglu"), c["act"]
    assert c["n_embd"] % c["n_head"] == 0 and c["n_head"] % c["n_kv_head"] == 0
    return c


def _to_bf16(x):
    return x.to(torch.bfloat16).to(x.dtype)  # round to nearest even, as c10 does


class _RoundOperand(torch.autograd.Function):
    """Forward: x rounded to bf16. Backward: the gradient passes as it is."""

    @staticmethod
    def forward(ctx, x):
        return _to_bf16(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _RoundGrad(torch.autograd.Function):
    """Forward: x as it is. Backward: the gradient rounded to bf16."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return _to_bf16(g)


def mm_out(y, bf16):
    """A matmul's output: its gradient is rounded to bf16 in bf16 mode."""
    return _RoundGrad.apply(y) if bf16 else y


def mm_in(x, bf16):
    """A matmul's operand: rounded to bf16 in bf16 mode."""
    return _RoundOperand.apply(x) if bf16 else x


def linear(mod_or_w, x, bf16, bias=None):
    """F.linear with kiln's bf16 rounding points (bf16=False: plain F.linear)."""
    w = mod_or_w.weight if isinstance(mod_or_w, nn.Linear) else mod_or_w
    b = mod_or_w.bias if isinstance(mod_or_w, nn.Linear) else bias
    return mm_out(F.linear(mm_in(x, bf16), mm_in(w, bf16), b), bf16)


class Norm(nn.Module):
    """LayerNorm (bias optional, torch 1.13's nn.LayerNorm cannot drop it) or RMSNorm:
    y = x / sqrt(mean(x^2) + eps) * w."""

    def __init__(self, C, kind, bias, eps):
        super().__init__()
        self.kind, self.eps = kind, eps
        self.weight = nn.Parameter(torch.ones(C))
        self.bias = nn.Parameter(torch.zeros(C)) if kind == "layernorm" and bias else None

    def forward(self, x):
        if self.kind == "layernorm":
            return F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(T, HD, theta, dtype, device):
    """cos, sin (T, HD/2): angle t * theta^(-2i/HD), computed in float64 like rope.c."""
    i = torch.arange(HD // 2, dtype=torch.float64, device=device)
    freq = float(theta) ** (-2.0 * i / HD)
    ang = torch.arange(T, dtype=torch.float64, device=device)[:, None] * freq[None, :]
    return ang.cos().to(dtype), ang.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x (B,H,T,HD), "rotate half": channel i pairs with channel i + HD/2."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, NH, NKV = c["n_embd"], c["n_head"], c["n_kv_head"]
        self.NH, self.NKV, self.HD = NH, NKV, C // NH
        self.dropout = c["dropout"]
        b = c["bias"]
        self.q_proj = nn.Linear(C, NH * self.HD, bias=b)
        self.k_proj = nn.Linear(C, NKV * self.HD, bias=b)
        self.v_proj = nn.Linear(C, NKV * self.HD, bias=b)
        self.o_proj = nn.Linear(NH * self.HD, C, bias=b)
        self.bf16 = False

    def forward(self, x, rope):
        B, T, _ = x.shape
        r = self.bf16
        q = linear(self.q_proj, x, r).view(B, T, self.NH, self.HD).transpose(1, 2)   # (B,NH,T,HD)
        k = linear(self.k_proj, x, r).view(B, T, self.NKV, self.HD).transpose(1, 2)  # (B,NKV,T,HD)
        v = linear(self.v_proj, x, r).view(B, T, self.NKV, self.HD).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if self.NKV != self.NH:  # GQA: query head h reads kv head h // (NH/NKV)
            k = k.repeat_interleave(self.NH // self.NKV, dim=1)
            v = v.repeat_interleave(self.NH // self.NKV, dim=1)
        att = mm_out((mm_in(q, r) @ mm_in(k, r).transpose(-2, -1)) * (1.0 / math.sqrt(self.HD)), r)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = att.masked_fill(causal, float("-inf")).softmax(dim=-1)
        att = F.dropout(att, self.dropout, self.training)
        y = mm_out(mm_in(att, r) @ mm_in(v, r), r).transpose(1, 2).reshape(B, T, self.NH * self.HD)
        return linear(self.o_proj, y, r)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, H, b = c["n_embd"], c["ffn_hidden"], c["bias"]
        self.act = c["act"]
        if self.act == "swiglu":
            self.gate_proj = nn.Linear(C, H, bias=b)
        self.up_proj = nn.Linear(C, H, bias=b)
        self.down_proj = nn.Linear(H, C, bias=b)
        self.bf16 = False

    def forward(self, x):
        r = self.bf16
        if self.act == "swiglu":
            h = F.silu(linear(self.gate_proj, x, r)) * linear(self.up_proj, x, r)
        elif self.act == "gelu":
            h = F.gelu(linear(self.up_proj, x, r), approximate="tanh")
        elif self.act == "gelu_erf":
            h = F.gelu(linear(self.up_proj, x, r))
        else:
            h = F.relu(linear(self.up_proj, x, r))
        return linear(self.down_proj, h, r)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = Norm(c["n_embd"], c["norm"], c["bias"], c["norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = Norm(c["n_embd"], c["norm"], c["bias"], c["norm_eps"])
        self.mlp = MLP(c)
        self.dropout = c["dropout"]

    def forward(self, x, rope):
        x = x + F.dropout(self.self_attn(self.input_layernorm(x), rope), self.dropout, self.training)
        x = x + F.dropout(self.mlp(self.post_attention_layernorm(x)), self.dropout, self.training)
        return x


class Decoder(nn.Module):
    """Holds everything under the "model." prefix."""

    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c["vocab_size"], c["n_embd"])
        if c["pos"] == "learned":
            self.embed_positions = nn.Embedding(c["block_size"], c["n_embd"])
        self.layers = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.norm = Norm(c["n_embd"], c["norm"], c["bias"], c["norm_eps"])


class KilnGPT(nn.Module):
    def __init__(self, cfg, bf16=False):
        """cfg: kiln's model config dict (as in the "model" part of kiln.json); missing
        keys take kiln's defaults. bf16: round as kiln's train.precision bf16 does."""
        super().__init__()
        c = self.cfg = model_config(cfg)
        self.bf16 = bf16
        self.model = Decoder(c)
        for layer in self.model.layers:
            layer.self_attn.bf16 = layer.mlp.bf16 = bf16
        self.lm_head = None if c["tied"] else nn.Linear(c["n_embd"], c["vocab_size"], bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """kiln's init (gpt_init_weights), in distribution: N(0, init_std) for matrices and
        embeddings, init_std/sqrt(2 n_layer) for o_proj and down_proj, norms 1, biases 0."""
        std = self.cfg["init_std"]
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            elif "layernorm" in name or name == "model.norm.weight":
                p.fill_(1.0)
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                p.normal_(0.0, std / math.sqrt(2 * self.cfg["n_layer"]))
            else:
                p.normal_(0.0, std)

    def head_weight(self):
        return self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def forward(self, tokens, targets=None):
        """tokens (B,T) int -> logits (B,T,V); loss = mean cross-entropy over targets >= 0
        (None when targets is None)."""
        B, T = tokens.shape
        c, m = self.cfg, self.model
        assert T <= c["block_size"], f"sequence length {T} exceeds block_size {c['block_size']}"
        x = m.embed_tokens(tokens)
        rope = None
        if c["pos"] == "learned":
            x = x + m.embed_positions.weight[:T]
        else:
            rope = rope_tables(T, c["n_embd"] // c["n_head"], c["rope_theta"], x.dtype, x.device)
        x = F.dropout(x, c["dropout"], self.training)
        for layer in m.layers:
            x = layer(x, rope)
        logits = linear(self.head_weight(), m.norm(x), self.bf16)
        loss = None
        if targets is not None:
            t = targets.long().masked_fill(targets < 0, -100)
            loss = F.cross_entropy(logits.reshape(B * T, -1), t.reshape(-1), ignore_index=-100)
        return logits, loss


DECAYED_MATRICES = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
                    "gate_proj.weight", "up_proj.weight", "down_proj.weight")
EMBEDDINGS = ("model.embed_tokens.weight", "model.embed_positions.weight")


def decays(name, decay_embeddings=False):
    """kiln's weight-decay rule (optim.c, plan_params): linear matrices and an untied
    lm_head; embeddings only with decay_embeddings; never norms or biases."""
    if name.endswith(DECAYED_MATRICES) or name == "lm_head.weight":
        return True
    return decay_embeddings and name in EMBEDDINGS


def param_groups(model, cfg=None, weight_decay=0.0, decay_embeddings=False):
    """Two AdamW groups following kiln's rule: [decayed, not decayed]. cfg is unused
    (kept so callers may pass the model config); the rule only needs the names."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if decays(name, decay_embeddings) else no_decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
              "I8": "i1", "U8": "u1", "BOOL": "?", "U16": "<u2", "U32": "<u4", "U64": "<u8"}


def load_safetensors(path):
    """Reads a .safetensors file -> (dict name -> np.ndarray, metadata dict of strings).
    BF16 tensors come back as float32."""
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 8:
        raise ValueError(f"{path}: truncated safetensors file ({len(buf)} bytes)")
    (hlen,) = struct.unpack("<Q", buf[:8])
    if 8 + hlen > len(buf):
        raise ValueError(f"{path}: header length {hlen} does not fit in the file")
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    meta = header.pop("__metadata__", None) or {}
    data = memoryview(buf)[8 + hlen:]
    tensors = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        shape = tuple(h["shape"])
        if h["dtype"] == "BF16":
            raw = np.frombuffer(data[b:e], dtype="<u2").astype(np.uint32) << 16
            arr = raw.view(np.float32)
        elif h["dtype"] in _ST_DTYPES:
            arr = np.frombuffer(data[b:e], dtype=_ST_DTYPES[h["dtype"]])
        else:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {h['dtype']}")
        if arr.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"{path}: tensor '{name}': {arr.size} values for shape {list(shape)}")
        tensors[name] = arr.reshape(shape).copy()
    return tensors, meta
