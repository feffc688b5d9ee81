#!/usr/bin/env python3
"""Measure what PyTorch really allocates on the CPU, for nnmem's `pytorch` profile, on
architectures the shared ground truth does not hold; export the same modules to graph-only ONNX.

Method (the one of ../shared/groundtruth/README.md):
  * f32, random weights (torch.manual_seed), nothing downloaded; torch.set_num_threads(2);
  * every peak is the peak of live bytes ABOVE the baseline (weights, buffers and inputs resident),
    from torch.profiler(profile_memory=True): every allocation and free of PyTorch's CPU allocator
    replayed in order (intra-op temporaries included); `phase_peaks` splits it by phase;
  * a warm-up run precedes every measured run (oneDNN primitive creation, lazy initialisation);
  * the RSS high-water mark of a plain (unprofiled) run, above the RSS before it, is a cross-check
    (VmHWM after `clear_refs 5`, glibc's mmap threshold lowered to 64 KiB so frees reach the kernel);
  * inference: eval() + no_grad(), one forward; training: train(), loss = sum of the outputs (the logits),
    backward, SGD step without momentum, `.grad` empty before the step (weight gradients are born
    during backward); decode: one forward of one new token with the past K/V cache resident;
  * style: Gatys on VGG-19 (see style_case below).

Every case runs in a child process of its own (clean allocator, clean RSS). Usage:
    /work/venv/bin/python scripts/measure_cpu.py list
    /work/venv/bin/python scripts/measure_cpu.py export [--only REGEX]      # graph-only ONNX -> fixtures/measured/
    /work/venv/bin/python scripts/measure_cpu.py measure [--only REGEX] [--force]
                                         # -> docs/measurements/cpu_<family>.json, timelines -> --timelines
Run it with `nice -n 10`; one process at a time.
"""
import argparse
import contextlib
import gc
import gzip
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = "fixtures/measured"
OUT_DIR = "docs/measurements"
THREADS = 2
SEED = 0

# ----------------------------------------------------------------------------------------------
# Models written here in plain PyTorch (random weights; shapes follow the public configs' style)
# ----------------------------------------------------------------------------------------------


def _torch():
    import torch
    return torch


def build_models():
    """Return {name: constructor} for the modules written in this file (imports torch lazily)."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class TransformerEncoderLM(nn.Module):
        """nn.TransformerEncoder language model: token + learned position embedding, post-norm layers."""

        def __init__(self, vocab=16384, d=256, heads=4, ff=1024, layers=2, max_len=1024):
            super().__init__()
            self.tok = nn.Embedding(vocab, d)
            self.pos = nn.Embedding(max_len, d)
            layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.1, activation="gelu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.head = nn.Linear(d, vocab)

        def forward(self, input_ids):
            pos = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
            x = self.tok(input_ids) + self.pos(pos)
            return self.head(self.encoder(x))

    # --- BERT-style encoder with an MLM head tied to the word embeddings ---
    class BertLayer(nn.Module):
        def __init__(self, d, heads, ff, p):
            super().__init__()
            self.h, self.p = heads, p
            self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.attn_out = nn.Linear(d, d)
            self.attn_drop = nn.Dropout(p)
            self.ln1 = nn.LayerNorm(d, eps=1e-12)
            self.intermediate = nn.Linear(d, ff)
            self.output = nn.Linear(ff, d)
            self.out_drop = nn.Dropout(p)
            self.ln2 = nn.LayerNorm(d, eps=1e-12)

        def forward(self, x):
            b, s, d = x.shape
            hd = d // self.h
            q = self.query(x).view(b, s, self.h, hd).transpose(1, 2)
            k = self.key(x).view(b, s, self.h, hd).transpose(1, 2)
            v = self.value(x).view(b, s, self.h, hd).transpose(1, 2)
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0)
            a = a.transpose(1, 2).reshape(b, s, d)
            x = self.ln1(x + self.attn_drop(self.attn_out(a)))
            return self.ln2(x + self.out_drop(self.output(F.gelu(self.intermediate(x)))))

    class Bert(nn.Module):
        def __init__(self, vocab=16384, d=256, heads=4, ff=1024, layers=4, max_len=512, p=0.1):
            super().__init__()
            self.word = nn.Embedding(vocab, d)
            self.position = nn.Embedding(max_len, d)
            self.token_type = nn.Embedding(2, d)
            self.ln = nn.LayerNorm(d, eps=1e-12)
            self.drop = nn.Dropout(p)
            self.layers = nn.ModuleList([BertLayer(d, heads, ff, p) for _ in range(layers)])
            self.mlm_dense = nn.Linear(d, d)
            self.mlm_ln = nn.LayerNorm(d, eps=1e-12)
            self.decoder = nn.Linear(d, vocab)
            self.decoder.weight = self.word.weight  # tied, as BERT's MLM head is

        def forward(self, input_ids):
            s = input_ids.shape[1]
            pos = torch.arange(s, device=input_ids.device).unsqueeze(0)
            x = self.word(input_ids) + self.position(pos) + self.token_type(torch.zeros_like(input_ids))
            x = self.drop(self.ln(x))
            for layer in self.layers:
                x = layer(x)
            return self.decoder(self.mlm_ln(F.gelu(self.mlm_dense(x))))

    # --- GPT-2-style decoder (learned positions, pre-norm, tanh GELU, tied head), optional KV cache ---
    class GPT2Block(nn.Module):
        def __init__(self, d, heads, p):
            super().__init__()
            self.h, self.p = heads, p
            self.ln_1 = nn.LayerNorm(d)
            self.c_attn = nn.Linear(d, 3 * d)
            self.c_proj = nn.Linear(d, d)
            self.resid_drop = nn.Dropout(p)
            self.ln_2 = nn.LayerNorm(d)
            self.c_fc = nn.Linear(d, 4 * d)
            self.mlp_proj = nn.Linear(4 * d, d)
            self.mlp_drop = nn.Dropout(p)

        def forward(self, x, past_k=None, past_v=None):
            b, s, d = x.shape
            hd = d // self.h
            q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
            q = q.view(b, s, self.h, hd).transpose(1, 2)
            k = k.view(b, s, self.h, hd).transpose(1, 2)
            v = v.view(b, s, self.h, hd).transpose(1, 2)
            if past_k is not None:
                k = torch.cat([past_k, k], dim=2)
                v = torch.cat([past_v, v], dim=2)
            a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p if self.training else 0.0,
                                               is_causal=past_k is None)
            a = a.transpose(1, 2).reshape(b, s, d)
            x = x + self.resid_drop(self.c_proj(a))
            x = x + self.mlp_drop(self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh")))
            return x, k, v

    class GPT2(nn.Module):
        def __init__(self, vocab=16384, d=384, heads=6, layers=4, max_len=2048, p=0.1):
            super().__init__()
            self.wte = nn.Embedding(vocab, d)
            self.wpe = nn.Embedding(max_len, d)
            self.drop = nn.Dropout(p)
            self.blocks = nn.ModuleList([GPT2Block(d, heads, p) for _ in range(layers)])
            self.ln_f = nn.LayerNorm(d)
            self.lm_head = nn.Linear(d, vocab, bias=False)
            self.lm_head.weight = self.wte.weight  # tied

        def forward(self, input_ids, *past):
            past_len = past[0].shape[2] if past else 0
            pos = torch.arange(past_len, past_len + input_ids.shape[1], device=input_ids.device).unsqueeze(0)
            x = self.drop(self.wte(input_ids) + self.wpe(pos))
            present = []
            for i, blk in enumerate(self.blocks):
                x, k, v = blk(x, *(past[2 * i:2 * i + 2] if past else (None, None)))
                if past:  # without a cache nothing keeps K/V beyond the layer (use_cache=False)
                    present += [k, v]
                del k, v
            logits = self.lm_head(self.ln_f(x))
            return (logits, *present) if past else logits

    # --- Llama-style decoder: RMSNorm, rotary embeddings, SwiGLU, grouped-query attention ---
    class RMSNorm(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            dtype = x.dtype
            x = x.to(torch.float32)
            var = x.pow(2).mean(-1, keepdim=True)
            x = x * torch.rsqrt(var + self.eps)
            return self.weight * x.to(dtype)

    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    class LlamaAttention(nn.Module):
        def __init__(self, d, heads, kv_heads):
            super().__init__()
            self.h, self.kvh, self.hd = heads, kv_heads, d // heads
            self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
            self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
            self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
            self.o_proj = nn.Linear(heads * self.hd, d, bias=False)

        def forward(self, x, cos, sin, past_k=None, past_v=None):
            b, s, _ = x.shape
            q = self.q_proj(x).view(b, s, self.h, self.hd).transpose(1, 2)
            k = self.k_proj(x).view(b, s, self.kvh, self.hd).transpose(1, 2)
            v = self.v_proj(x).view(b, s, self.kvh, self.hd).transpose(1, 2)
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if past_k is not None:
                k = torch.cat([past_k, k], dim=2)
                v = torch.cat([past_v, v], dim=2)
            rep = self.h // self.kvh
            kk = k[:, :, None].expand(b, self.kvh, rep, k.shape[2], self.hd).reshape(b, self.h, k.shape[2], self.hd)
            vv = v[:, :, None].expand(b, self.kvh, rep, v.shape[2], self.hd).reshape(b, self.h, v.shape[2], self.hd)
            a = F.scaled_dot_product_attention(q, kk, vv, is_causal=past_k is None)
            return self.o_proj(a.transpose(1, 2).reshape(b, s, self.h * self.hd)), k, v

    class LlamaMLP(nn.Module):
        def __init__(self, d, ff):
            super().__init__()
            self.gate_proj = nn.Linear(d, ff, bias=False)
            self.up_proj = nn.Linear(d, ff, bias=False)
            self.down_proj = nn.Linear(ff, d, bias=False)

        def forward(self, x):
            return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))

    class LlamaLayer(nn.Module):
        def __init__(self, d, heads, kv_heads, ff):
            super().__init__()
            self.input_layernorm = RMSNorm(d)
            self.self_attn = LlamaAttention(d, heads, kv_heads)
            self.post_attention_layernorm = RMSNorm(d)
            self.mlp = LlamaMLP(d, ff)

        def forward(self, x, cos, sin, past_k=None, past_v=None):
            a, k, v = self.self_attn(self.input_layernorm(x), cos, sin, past_k, past_v)
            x = x + a
            return x + self.mlp(self.post_attention_layernorm(x)), k, v

    class Llama(nn.Module):
        def __init__(self, vocab=16384, d=384, heads=6, kv_heads=2, ff=1024, layers=4, theta=10000.0):
            super().__init__()
            self.embed_tokens = nn.Embedding(vocab, d)
            self.layers = nn.ModuleList([LlamaLayer(d, heads, kv_heads, ff) for _ in range(layers)])
            self.norm = RMSNorm(d)
            self.lm_head = nn.Linear(d, vocab, bias=False)
            hd = d // heads
            self.register_buffer("inv_freq", 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd),
                                 persistent=False)

        def forward(self, input_ids, *past):
            past_len = past[0].shape[2] if past else 0
            b, s = input_ids.shape
            pos = torch.arange(past_len, past_len + s, device=input_ids.device).unsqueeze(0).expand(b, s)
            freqs = (self.inv_freq[None, :, None].expand(b, -1, 1) @ pos[:, None, :].float()).transpose(1, 2)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            x = self.embed_tokens(input_ids)
            present = []
            for i, layer in enumerate(self.layers):
                x, k, v = layer(x, cos, sin, *(past[2 * i:2 * i + 2] if past else (None, None)))
                if past:  # without a cache nothing keeps K/V beyond the layer (use_cache=False)
                    present += [k, v]
                del k, v
            logits = self.lm_head(self.norm(x))
            return (logits, *present) if past else logits

    # --- T5-style encoder-decoder: relative position bias, RMS layer norm, no biases, tied scaled head ---
    def rel_bucket(rel, bidirectional, num_buckets=32, max_distance=128):
        ret = 0
        if bidirectional:
            num_buckets //= 2
            ret = (rel > 0).to(torch.long) * num_buckets
            n = rel.abs()
        else:
            n = -torch.min(rel, torch.zeros_like(rel))
        max_exact = num_buckets // 2
        is_small = n < max_exact
        large = max_exact + (torch.log(n.float().clamp(min=1) / max_exact) / math.log(max_distance / max_exact)
                             * (num_buckets - max_exact)).to(torch.long)
        large = torch.min(large, torch.full_like(large, num_buckets - 1))
        return ret + torch.where(is_small, n, large)

    class T5Norm(nn.Module):
        def __init__(self, d, eps=1e-6):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))
            self.eps = eps

        def forward(self, x):
            var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
            return self.weight * (x * torch.rsqrt(var + self.eps))

    class T5Attention(nn.Module):
        def __init__(self, d, heads, d_kv, has_bias, bidirectional, p):
            super().__init__()
            self.h, self.dkv, self.p, self.bidir = heads, d_kv, p, bidirectional
            self.q = nn.Linear(d, heads * d_kv, bias=False)
            self.k = nn.Linear(d, heads * d_kv, bias=False)
            self.v = nn.Linear(d, heads * d_kv, bias=False)
            self.o = nn.Linear(heads * d_kv, d, bias=False)
            self.rel = nn.Embedding(32, heads) if has_bias else None

        def bias(self, sq, sk, device):
            ctx = torch.arange(sq, device=device)[:, None]
            mem = torch.arange(sk, device=device)[None, :]
            buckets = rel_bucket(mem - ctx, self.bidir)
            return self.rel(buckets).permute(2, 0, 1).unsqueeze(0)

        def forward(self, x, kv=None, position_bias=None):
            b, sq, _ = x.shape
            kv = x if kv is None else kv
            sk = kv.shape[1]
            q = self.q(x).view(b, sq, self.h, self.dkv).transpose(1, 2)
            k = self.k(kv).view(b, sk, self.h, self.dkv).transpose(1, 2)
            v = self.v(kv).view(b, sk, self.h, self.dkv).transpose(1, 2)
            scores = torch.matmul(q, k.transpose(3, 2))
            if position_bias is None:
                position_bias = self.bias(sq, sk, x.device)
                if not self.bidir:
                    causal = torch.triu(torch.full((sq, sk), torch.finfo(x.dtype).min, device=x.device), 1)
                    position_bias = position_bias + causal
            scores = scores + position_bias
            w = F.dropout(F.softmax(scores.float(), dim=-1).type_as(scores), p=self.p, training=self.training)
            a = torch.matmul(w, v).transpose(1, 2).reshape(b, sq, self.h * self.dkv)
            return self.o(a), position_bias

    class T5FF(nn.Module):
        def __init__(self, d, ff, p):
            super().__init__()
            self.wi = nn.Linear(d, ff, bias=False)
            self.wo = nn.Linear(ff, d, bias=False)
            self.drop = nn.Dropout(p)

        def forward(self, x):
            return self.wo(self.drop(F.relu(self.wi(x))))

    class T5Block(nn.Module):
        def __init__(self, d, heads, d_kv, ff, has_bias, decoder, p):
            super().__init__()
            self.ln_sa = T5Norm(d)
            self.sa = T5Attention(d, heads, d_kv, has_bias, not decoder, p)
            self.ca = T5Attention(d, heads, d_kv, False, True, p) if decoder else None
            self.ln_ca = T5Norm(d) if decoder else None
            self.ln_ff = T5Norm(d)
            self.ff = T5FF(d, ff, p)
            self.drop = nn.Dropout(p)

        def forward(self, x, bias, enc=None, enc_bias=None):
            a, bias = self.sa(self.ln_sa(x), position_bias=bias)
            x = x + self.drop(a)
            if self.ca is not None:
                a, enc_bias = self.ca(self.ln_ca(x), kv=enc, position_bias=enc_bias)
                x = x + self.drop(a)
            return x + self.drop(self.ff(self.ln_ff(x))), bias, enc_bias

    class T5(nn.Module):
        def __init__(self, vocab=16384, d=256, heads=4, d_kv=64, ff=1024, layers=2, p=0.1):
            super().__init__()
            self.d = d
            self.shared = nn.Embedding(vocab, d)
            self.enc = nn.ModuleList([T5Block(d, heads, d_kv, ff, i == 0, False, p) for i in range(layers)])
            self.enc_ln = T5Norm(d)
            self.dec = nn.ModuleList([T5Block(d, heads, d_kv, ff, i == 0, True, p) for i in range(layers)])
            self.dec_ln = T5Norm(d)
            self.drop = nn.Dropout(p)
            self.lm_head = nn.Linear(d, vocab, bias=False)
            self.lm_head.weight = self.shared.weight  # tied (T5 v1.0), output scaled by d^-0.5

        def forward(self, input_ids, decoder_input_ids):
            x = self.drop(self.shared(input_ids))
            bias = None
            for blk in self.enc:
                x, bias, _ = blk(x, bias)
            enc = self.drop(self.enc_ln(x))
            y = self.drop(self.shared(decoder_input_ids))
            bias = None
            zero = torch.zeros(1, 1, 1, enc.shape[1], dtype=y.dtype, device=y.device)
            for blk in self.dec:
                y, bias, zero = blk(y, bias, enc, zero)
            y = self.drop(self.dec_ln(y)) * (self.d ** -0.5)
            return self.lm_head(y)

    class RNNLM(nn.Module):
        def __init__(self, cell, vocab=16384, d=256, hidden=512, layers=2):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.rnn = getattr(nn, cell)(d, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Linear(hidden, vocab)

        def forward(self, input_ids):
            out, _ = self.rnn(self.embed(input_ids))
            return self.head(out)  # [batch, seq, vocab]

    # --- a small UNet: two 3x3 conv+BN+ReLU per level, max-pool down, transposed conv up, skip concat ---
    def double_conv(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self, cin=3, classes=2, base=32, depth=4):
            super().__init__()
            ch = [base * 2 ** i for i in range(depth + 1)]
            self.inc = double_conv(cin, ch[0])
            self.down = nn.ModuleList([double_conv(ch[i], ch[i + 1]) for i in range(depth)])
            self.pool = nn.MaxPool2d(2)
            self.up = nn.ModuleList([nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2) for i in reversed(range(depth))])
            self.dec = nn.ModuleList([double_conv(2 * ch[i], ch[i]) for i in reversed(range(depth))])
            self.outc = nn.Conv2d(ch[0], classes, 1)

        def forward(self, x):
            skips = [self.inc(x)]
            for d in self.down:
                skips.append(d(self.pool(skips[-1])))
            x = skips.pop()
            for up, dec in zip(self.up, self.dec):
                x = dec(torch.cat([skips.pop(), up(x)], dim=1))
            return self.outc(x)

    class OutOnly(nn.Module):
        """torchvision segmentation models return a dict; the export and the loss take its 'out'."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)["out"]

    def tv(name, **kw):
        import torchvision
        if name == "fcn_resnet50":
            return OutOnly(torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None,
                                                                       aux_loss=False, **kw))
        if name == "r3d_18":
            return torchvision.models.video.r3d_18(weights=None)
        return getattr(torchvision.models, name)(weights=None, **kw)

    return {
        "tfenc_lm": TransformerEncoderLM,
        "bert": Bert,
        "gpt2": GPT2,
        "llama": Llama,
        "t5": T5,
        "lstm_lm": lambda: RNNLM("LSTM"),
        "gru_lm": lambda: RNNLM("GRU"),
        "unet": UNet,
        "resnext50_32x4d": lambda: tv("resnext50_32x4d"),
        "regnet_y_400mf": lambda: tv("regnet_y_400mf"),
        "shufflenet_v2_x1_0": lambda: tv("shufflenet_v2_x1_0"),
        "convnext_tiny": lambda: tv("convnext_tiny"),
        "swin_t": lambda: tv("swin_t"),
        "vit_b_16": lambda: tv("vit_b_16"),
        "wide_resnet50_2": lambda: tv("wide_resnet50_2"),
        "fcn_resnet50": lambda: tv("fcn_resnet50"),
        "r3d_18": lambda: tv("r3d_18"),
    }


# ----------------------------------------------------------------------------------------------
# Case registry
# ----------------------------------------------------------------------------------------------
# A model entry: family, how its inputs look, which exports exist. Sizes are (label, {input: dims}).
# Dims use names for the exports' dynamic axes; the measured case binds them.

LM_VOCAB = 16384

MODELS = {
    # family "transformer" (issue 15): both exporters
    "bert": dict(family="transformer", inputs={"input_ids": ("batch", "seq")}, int_inputs=True,
                 sizes=[("b2_s128", dict(batch=2, seq=128)), ("b2_s512", dict(batch=2, seq=512))],
                 exporters=("legacy", "dynamo")),
    "gpt2": dict(family="transformer", inputs={"input_ids": ("batch", "seq")}, int_inputs=True,
                 sizes=[("b2_s128", dict(batch=2, seq=128)), ("b2_s512", dict(batch=2, seq=512))],
                 exporters=("legacy", "dynamo"), decode=dict(layers=4, kv_heads=6, head_dim=64,
                                                             sizes=[("b2_p256", 2, 256), ("b2_p1024", 2, 1024)])),
    "llama": dict(family="transformer", inputs={"input_ids": ("batch", "seq")}, int_inputs=True,
                  sizes=[("b2_s128", dict(batch=2, seq=128)), ("b2_s512", dict(batch=2, seq=512))],
                  exporters=("legacy", "dynamo"), decode=dict(layers=4, kv_heads=2, head_dim=64,
                                                              sizes=[("b2_p256", 2, 256), ("b2_p1024", 2, 1024)])),
    "t5": dict(family="transformer", inputs={"input_ids": ("batch", "seq"), "decoder_input_ids": ("batch", "dec_seq")},
               int_inputs=True, exporters=("legacy", "dynamo"),
               sizes=[("b2_s128_d32", dict(batch=2, seq=128, dec_seq=32)),
                      ("b2_s512_d128", dict(batch=2, seq=512, dec_seq=128))]),
    "tfenc_lm": dict(family="transformer", inputs={"input_ids": ("batch", "seq")}, int_inputs=True,
                     sizes=[("b2_s128", dict(batch=2, seq=128)), ("b2_s512", dict(batch=2, seq=512))],
                     exporters=("legacy", "dynamo"), fixed=True),  # the legacy export of nn.MultiheadAttention bakes the
    # sequence length into its Reshape constants, so it is exported at each size
    # family "recurrent"
    "lstm_lm": dict(family="recurrent", inputs={"input_ids": ("batch", "seq")}, int_inputs=True,
                    sizes=[("b2_s128", dict(batch=2, seq=128)), ("b2_s512", dict(batch=2, seq=512))],
                    exporters=("legacy",)),
    "gru_lm": dict(family="recurrent", inputs={"input_ids": ("batch", "seq")}, int_inputs=True,
                   sizes=[("b2_s128", dict(batch=2, seq=128)), ("b2_s512", dict(batch=2, seq=512))],
                   exporters=("legacy",)),
    # family "vision"
    "resnext50_32x4d": dict(family="vision", sizes=[("b1_224", 224), ("b1_384", 384)], exporters=("legacy", "dynamo"),
                           dynamo_multiple=32, dynamo_inference_only=True),
    "regnet_y_400mf": dict(family="vision", sizes=[("b1_224", 224), ("b1_448", 448)], exporters=("legacy", "dynamo"),
                          dynamo_multiple=32, dynamo_inference_only=True),
    "shufflenet_v2_x1_0": dict(family="vision", sizes=[("b1_224", 224), ("b1_448", 448)], exporters=("legacy", "dynamo"),
                              dynamo_multiple=32, dynamo_inference_only=True),
    "convnext_tiny": dict(family="vision", sizes=[("b1_224", 224), ("b1_512", 512)], exporters=("legacy", "dynamo"),
                         dynamo_multiple=32, dynamo_inference_only=True),
    "swin_t": dict(family="vision", sizes=[("b1_224", 224), ("b1_384", 384)], fixed=True, exporters=("legacy", "dynamo")),
    # ViT-B/16 is in ../shared as a TorchScript export; here both exporters, for the locals of torchvision's
    # EncoderBlock and nn.MultiheadAttention (fixed at 224 px: its position embedding is)
    "vit_b_16": dict(family="vision", sizes=[("b1_224", 224)], fixed=True, exporters=("legacy", "dynamo")),
    "wide_resnet50_2": dict(family="vision", sizes=[("b1_224", 224), ("b1_512", 512)], exporters=("legacy", "dynamo"),
                           dynamo_multiple=32, dynamo_inference_only=True),
    "fcn_resnet50": dict(family="vision", sizes=[("b1_256", 256), ("b1_512", 512)], exporters=("legacy", "dynamo"),
                        dynamo_multiple=32, dynamo_inference_only=True),
    "unet": dict(family="vision", sizes=[("b1_256", 256), ("b1_512", 512)], exporters=("legacy", "dynamo"),
                 dynamo_multiple=16,  # four 2x poolings: torch.export needs the sides as multiples of 16
                 dynamo_inference_only=True),
    "r3d_18": dict(family="vision", video=True, sizes=[("b1_t8_112", (8, 112)), ("b1_t16_112", (16, 112))]),
}

VGG_NAMES = []
for _blk, _n in enumerate([2, 2, 4, 4, 4], start=1):
    for _i in range(1, _n + 1):
        VGG_NAMES += ["conv%d_%d" % (_blk, _i), "relu%d_%d" % (_blk, _i)]
    VGG_NAMES.append("pool%d" % _blk)
VGG_NAMES = VGG_NAMES[:30]  # conv1_1 .. relu5_1, torchvision vgg19().features[:30]

STYLE_LAYERS = {
    # neural-style / the shared ground truth: taps after the ReLU
    "ns": (["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], ["relu4_2"]),
    # taps on the convolution outputs, before the ReLU (the tutorial's placement of its loss modules)
    "conv": (["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"], ["conv4_2"]),
    # the PyTorch tutorial's own defaults: conv_1..conv_5 = conv1_1, conv1_2, conv2_1, conv2_2, conv3_1; content conv_4
    "tutorial": (["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"], ["conv2_2"]),
}
STYLE_SIZES = (128, 256, 384)
STYLE_OPTS = ("lbfgs10", "lbfgs100", "adam")


def model_files(name, exporter, size_label=None):
    """Graph-only ONNX paths (eval, train) for a model under one exporter."""
    spec = MODELS[name]
    tag = name if not spec.get("fixed") else "%s_%s" % (name, size_label)
    suffix = "" if exporter == "legacy" else ".dynamo"
    return ("%s/%s%s.onnx" % (FIXTURES, tag, suffix), "%s/%s%s.train.onnx" % (FIXTURES, tag, suffix))


def decode_files(name, exporter):
    suffix = "" if exporter == "legacy" else ".dynamo"
    return "%s/%s_decode%s.onnx" % (FIXTURES, name, suffix)


def input_dims(name, size):
    """{input name: concrete dims} for a model at a size."""
    spec = MODELS[name]
    if spec["family"] in ("transformer", "recurrent"):
        return {k: [size[d] for d in dims] for k, dims in spec["inputs"].items()}
    if spec.get("video"):
        t, hw = size
        return {"input": [1, 3, t, hw, hw]}
    return {"input": [1, 3, size, size]}


def decode_input_dims(name, batch, past):
    d = MODELS[name]["decode"]
    dims = {"input_ids": [batch, 1]}
    for i in range(d["layers"]):
        dims["past_key_%d" % i] = [batch, d["kv_heads"], past, d["head_dim"]]
        dims["past_value_%d" % i] = [batch, d["kv_heads"], past, d["head_dim"]]
    return dims


def nnmem_args(path, scenario, dims, extra=()):
    args = ["inspect", path, "--json", "-q", "--scenario", scenario]
    if scenario == "training":
        args += ["--optimizer", "sgd"]
    for k, v in dims.items():
        args += ["--input", "%s=%s" % (k, "x".join(str(x) for x in v))]
    return args + list(extra)


def all_cases():
    """Every case: key -> dict(family, kind, model, scenario, size, nnmem=[{exporter, file, args}])."""
    cases = {}
    for name, spec in MODELS.items():
        for label, size in spec["sizes"]:
            dims = input_dims(name, size)
            for scenario in ("inference", "training"):
                entries = []
                for exp in spec.get("exporters", ("legacy",)):
                    ev, tr = model_files(name, exp, label)
                    if exp == "dynamo" and spec.get("dynamo_inference_only"):
                        # torch.export traces BatchNorm in inference form even for a module in train() mode: the
                        # eval export is the only dynamo file, held for inference
                        if scenario == "inference":
                            entries.append(dict(exporter=exp, export="eval", file=ev, args=nnmem_args(ev, scenario, dims)))
                        continue
                    # PyTorch eager runs BatchNorm and Dropout as ops of their own: the training export is the
                    # file that describes it in both scenarios (as ../shared/check/nnmem_check.py accuracy does);
                    # the eval export (BatchNorm folded) is compared too, for information.
                    entries.append(dict(exporter=exp, export="train", file=tr, args=nnmem_args(tr, scenario, dims)))
                    entries.append(dict(exporter=exp, export="eval", file=ev, args=nnmem_args(ev, scenario, dims),
                                        informational=True))
                key = "%s/%s/%s" % (name, scenario, label)
                cases[key] = dict(family=spec["family"], kind="model", model=name, scenario=scenario, size=label,
                                  nnmem=entries)
        if "decode" in spec:
            for label, b, p in spec["decode"]["sizes"]:
                dims = decode_input_dims(name, b, p)
                entries = [dict(exporter=exp, export="eval", file=decode_files(name, exp),
                                args=nnmem_args(decode_files(name, exp), "inference", dims))
                           for exp in spec["exporters"]]
                key = "%s/decode/%s" % (name, label)
                cases[key] = dict(family="transformer", kind="decode", model=name, scenario="decode", size=label,
                                  batch=b, past=p, nnmem=entries)
    for placement in ("innet", "after"):
        for layers in ("ns", "conv", "tutorial"):
            if layers == "tutorial" and placement == "after":
                continue
            style, content = STYLE_LAYERS[layers]
            for opt in STYLE_OPTS:
                for px in STYLE_SIZES:
                    nopt = "adam" if opt == "adam" else "lbfgs:" + opt[5:]
                    path = "%s/vgg19_style_taps.onnx" % FIXTURES
                    args = ["inspect", path, "--json", "-q", "--scenario", "style-transfer", "--optimizer", nopt,
                            "--style-layers", ",".join(style), "--content-layers", ",".join(content),
                            "--loss-placement", "in-net" if placement == "innet" else "after-forward",
                            "--input", "input=1x3x%dx%d" % (px, px)]
                    key = "gatys_%s_%s/%s/b1_%d" % (placement, layers, opt, px)
                    cases[key] = dict(family="style", kind="style", model="vgg19", scenario="style", size="b1_%d" % px,
                                      placement=placement, layers=layers, optimizer=opt, px=px,
                                      nnmem=[dict(exporter="legacy", export="eval", file=path, args=args)])
    return cases


# ----------------------------------------------------------------------------------------------
# Measurement machinery
# ----------------------------------------------------------------------------------------------

def versions():
    import torch
    out = {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
           "mkldnn": torch.backends.mkldnn.is_available(), "nproc": os.cpu_count(), "dtype": "float32",
           "seed": SEED, "units": "bytes"}
    for mod in ("torchvision", "onnx", "onnxscript"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - recorded as absent
            out[mod] = None
    try:
        out["cpu"] = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except Exception:  # noqa: BLE001
        out["cpu"] = platform.processor()
    return out


def proc_status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def rss_window(fn):
    """RSS high-water mark of fn() above the RSS before it (malloc_trim(0), then clear_refs 5 resets VmHWM)."""
    gc.collect()
    trimmed = False
    try:  # hand freed heap pages back first, so that reusing them counts
        import ctypes
        trimmed = bool(ctypes.CDLL("libc.so.6").malloc_trim(0)) or True
    except OSError:
        pass
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = proc_status("VmRSS")
    t = time.time()
    fn()
    hwm = proc_status("VmHWM")
    end = proc_status("VmRSS")
    return {"peak_bytes": hwm - before, "end_bytes": end - before, "rss_before_bytes": before,
            "malloc_trim": trimmed, "seconds": round(time.time() - t, 3)}


class ModuleRanges:
    """Forward hooks that open a profiler range per module call, so allocations carry their module."""

    def __init__(self, model):
        self.model, self.handles, self.stack = model, [], []

    def __enter__(self):
        import torch
        for name, m in self.model.named_modules():
            if not name:
                continue

            def pre(mod, args, name=name):
                rf = torch.autograd.profiler.record_function("module::" + name)
                rf.__enter__()
                self.stack.append(rf)

            def post(mod, args, out):
                if self.stack:
                    self.stack.pop().__exit__(None, None, None)

            self.handles.append(m.register_forward_pre_hook(pre))
            self.handles.append(m.register_forward_hook(post))
        return self

    def __exit__(self, *a):
        for h in self.handles:
            h.remove()


def replay(prof, windows=None):
    """Replay the allocator events of a profile in order.

    Returns (summary, rows): summary has the peak above the profile's start, per-phase peaks, the op at the peak,
    the allocations live at the peak (size, op, module, phase) and the temporaries; rows is the per-event timeline.
    `windows` names record_function ranges ("window::NAME") whose peaks are reported separately.
    """
    import torch
    Alloc = torch._C._profiler._EventType.Allocation
    roots = prof.profiler.kineto_results.experimental_event_tree()
    events = []  # (t, tid, bytes, ptr, context)

    def walk(node, ctx):
        if node.tag == Alloc:
            ef = node.extra_fields
            if str(ef.device).startswith("cpu"):
                events.append((node.start_time_ns, node.start_tid, ef.alloc_size, ef.ptr, ctx))
            return
        name = node.name
        c = dict(ctx)
        if name.startswith("phase::"):
            c["phase"] = name[7:]
        elif name.startswith("window::"):
            c["window"] = name[8:]
        elif name.startswith("module::"):
            c["module"] = name[8:]
        elif name.startswith("autograd::engine::evaluate_function: "):
            c.setdefault("outer", name.split(": ", 1)[1])
            c["outer_id"] = node.id
        elif name.startswith("aten::") or name.startswith("Optimizer.") or name.endswith("Backward0"):
            if "outer" not in c:
                c["outer"] = name
                c["outer_id"] = node.id
            c["inner"] = name
        for ch in sorted(node.children, key=lambda n: n.start_time_ns):
            walk(ch, c)

    main_tid = None
    for r in sorted(roots, key=lambda n: n.start_time_ns):
        walk(r, {})
    events.sort(key=lambda e: e[0])
    tids = {}
    for e in events:
        tids[e[1]] = tids.get(e[1], 0) + 1
    if tids:
        main_tid = max(tids, key=tids.get)
    live = 0
    peak, peak_i = 0, -1
    phase_peaks, window_peaks, window_start = {}, {}, {}
    alive = {}  # ptr -> (bytes, ctx, index)
    rows = []
    temp_total = 0
    temp_by_op = {}
    live_at_peak = None
    for i, (t, tid, nbytes, ptr, ctx) in enumerate(events):
        if nbytes < 0 and ptr in alive:
            b, actx, ai = alive.pop(ptr)
            if actx.get("outer_id") is not None and actx.get("outer_id") == ctx.get("outer_id"):
                temp_total += b
                op = actx.get("outer", "?")
                temp_by_op[op] = max(temp_by_op.get(op, 0), b)
        elif nbytes > 0:
            alive[ptr] = (nbytes, ctx, i)
        live += nbytes
        ph = ctx.get("phase", "other")
        phase_peaks[ph] = max(phase_peaks.get(ph, live), live)
        w = ctx.get("window")
        if w is not None:
            if w not in window_start:
                window_start[w] = live - nbytes
            window_peaks[w] = max(window_peaks.get(w, live), live)
        if live > peak:
            peak, peak_i = live, i
            live_at_peak = dict(alive)
        rows.append([nbytes, live, ph, ctx.get("module"), ctx.get("outer"), ctx.get("inner"), w])
    summary = {"peak_bytes": peak, "end_bytes": live, "phase_peaks": phase_peaks, "n_alloc_events": len(events),
               "alloc_total_bytes": sum(e[2] for e in events if e[2] > 0),
               "events_off_main_thread": sum(v for k, v in tids.items() if k != main_tid)}
    if window_peaks:
        summary["window_peaks"] = window_peaks
        summary["window_start_bytes"] = window_start
    if peak_i >= 0:
        pctx = events[peak_i][4]
        summary["peak_at"] = {"phase": pctx.get("phase"), "module": pctx.get("module"), "outer_op": pctx.get("outer"),
                              "inner_op": pctx.get("inner"), "event_index": peak_i}
        # temporaries live at the peak: allocations made inside the op that is running at the peak
        pid = pctx.get("outer_id")
        temp_live = sum(b for b, c, _ in live_at_peak.values() if pid is not None and c.get("outer_id") == pid)
        items = sorted(live_at_peak.values(), key=lambda v: -v[0])
        summary["live_at_peak"] = {
            "n_allocations": len(items),
            "bytes_known": sum(v[0] for v in items),
            "bytes_allocated_before_profile": peak - sum(v[0] for v in items),
            "by_allocating_op": _group(items, lambda c: "%s | %s" % (c.get("phase"), c.get("outer"))),
            "largest": [{"bytes": b, "phase": c.get("phase"), "module": c.get("module"), "outer_op": c.get("outer"),
                         "inner_op": c.get("inner"), "event_index": idx} for b, c, idx in items[:25]],
        }
        summary["temporaries"] = {"temp_bytes_live_at_peak": temp_live,
                                  "peak_excluding_temporaries_bytes": peak - temp_live,
                                  "temp_alloc_total_bytes": temp_total,
                                  "ops_with_largest_temporaries": sorted(temp_by_op.items(), key=lambda kv: -kv[1])[:8]}
    return summary, rows


def _group(items, keyfn):
    g = {}
    for b, c, _ in items:
        k = keyfn(c)
        g[k] = g.get(k, 0) + b
    return dict(sorted(g.items(), key=lambda kv: -kv[1])[:20])


def profiled(fn, model=None):
    import torch
    from torch.profiler import ProfilerActivity, profile
    gc.collect()
    t = time.time()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with (ModuleRanges(model) if model is not None else contextlib.nullcontext()):
            fn()
    secs = time.time() - t
    summary, rows = replay(prof)
    summary["seconds"] = round(secs, 3)
    return summary, rows


def storage_bytes(tensors):
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        s = t.untyped_storage()
        if s.data_ptr() in seen:
            continue
        seen.add(s.data_ptr())
        total += s.nbytes()
    return total


def phase(name):
    import torch
    return torch.autograd.profiler.record_function("phase::" + name)


def make_inputs(name, dims, gen):
    import torch
    spec = MODELS[name]
    if spec.get("int_inputs"):
        return [torch.randint(0, LM_VOCAB, tuple(d), generator=gen) for d in dims.values()]
    return [torch.randn(*dims["input"], generator=gen)]


def saved_summary(model, run, inputs):
    """Unique storages autograd saves for backward during run(), split into param / input / activation."""
    import torch
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    params |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    ins = {x.untyped_storage().data_ptr() for x in inputs}
    seen = {}
    dtypes = {}

    def pack(t):
        s = t.untyped_storage()
        ptr = s.data_ptr()
        if ptr not in seen:
            cat = "param" if ptr in params else "input" if ptr in ins else "activation"
            seen[ptr] = (s.nbytes(), cat)
            if cat == "activation":
                dtypes[str(t.dtype)] = dtypes.get(str(t.dtype), 0) + s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    out = {"unique_bytes": sum(b for b, _ in seen.values()), "n_unique_storages": len(seen),
           "activation_by_dtype": dtypes}
    for cat in ("param", "input", "activation"):
        out[cat + "_bytes"] = sum(b for b, c in seen.values() if c == cat)
    return out


def model_case(key, case, timeline_dir):
    import torch
    torch.manual_seed(SEED)
    name = case["model"]
    model = build_models()[name]()
    gen = torch.Generator().manual_seed(SEED + 1)
    spec = MODELS[name]
    if case["kind"] == "decode":
        d = spec["decode"]
        dims = decode_input_dims(name, case["batch"], case["past"])
        inputs = [torch.randint(0, LM_VOCAB, tuple(dims["input_ids"]), generator=gen)]
        for k, v in dims.items():
            if k != "input_ids":
                inputs.append(torch.randn(*v, generator=gen))
        scenario = "inference"
    else:
        size = dict(spec["sizes"])[case["size"]]
        dims = input_dims(name, size)
        inputs = make_inputs(name, dims, gen)
        scenario = case["scenario"]
    params = list(model.parameters())
    rec = {"key": key, "model": name, "family": case["family"], "scenario": case["scenario"], "size": case["size"],
           "inputs": {k: v for k, v in dims.items()}, "dtype": "float32", "device": "cpu",
           "threads": torch.get_num_threads(),
           "param_count": sum(p.numel() for p in params),
           "param_bytes": storage_bytes(params),
           "buffer_bytes": storage_bytes(list(model.buffers())),
           "input_bytes": storage_bytes(inputs)}
    if scenario == "inference":
        model.eval()

        def run():
            with torch.no_grad():
                with phase("forward"):
                    out = model(*inputs)
            return out

        t = time.time()
        out = run()  # warm-up
        rec["warmup_seconds"] = round(time.time() - t, 3)
        outs = out if isinstance(out, tuple) else (out,)
        rec["output_bytes"] = storage_bytes(outs)
        rec["output_shapes"] = [list(o.shape) for o in outs]
        del out, outs
        rec["grad_bytes"] = 0
        holder = {}
        prof, rows = profiled(lambda: holder.__setitem__("y", run()), model)
        holder.clear()
        rec["methods"] = {"profiler": prof}
        rec["methods"]["rss"] = rss_window(lambda: holder.__setitem__("y", run()))
        holder.clear()
    else:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)
        holder = {}

        def step():
            opt.zero_grad(set_to_none=True)
            with phase("forward"):
                y = model(*inputs)
            with phase("loss"):
                loss = y.sum()
            with phase("backward"):
                loss.backward()
            with phase("step"):
                opt.step()
            holder["y"], holder["loss"] = y, loss

        t = time.time()
        rec["saved"] = saved_summary(model, step, inputs)  # the warm-up run, with saved-tensor hooks
        rec["warmup_seconds"] = round(time.time() - t, 3)
        rec["output_bytes"] = storage_bytes([holder["y"]])
        rec["output_shapes"] = [list(holder["y"].shape)]
        rec["grad_bytes"] = storage_bytes([p.grad for p in params])
        holder.clear()
        for p in params:
            p.grad = None
        prof, rows = profiled(step, model)
        holder.clear()
        for p in params:
            p.grad = None
        rec["methods"] = {"profiler": prof}
        rec["methods"]["rss"] = rss_window(step)
        holder.clear()
        for p in params:
            p.grad = None
    rec["timeline_file"] = write_timeline(timeline_dir, key, rows)
    return rec


def write_timeline(folder, key, rows):
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    fname = key.replace("/", "_") + ".json.gz"
    with gzip.open(os.path.join(folder, fname), "wt") as f:
        json.dump({"key": key, "columns": ["bytes", "live_bytes", "phase", "module", "outer_op", "inner_op", "window"],
                   "rows": rows}, f, separators=(",", ":"))
    return fname


# ----------------------------------------------------------------------------------------------
# Style transfer (issue 18)
# ----------------------------------------------------------------------------------------------

def style_case(key, case, timeline_dir, all_real=False):
    """Gatys on torchvision VGG-19 features (random weights), the image optimised, weights frozen.

    placement "innet": the PyTorch tutorial's structure — a new nn.Sequential (Normalization first) with
      ContentLoss/StyleLoss modules inserted after the tapped layers (each keeps `self.loss = F.mse_loss(...)`),
      ReLU(inplace=False), trimmed after the last loss; closure: clamp_ in no_grad, zero_grad, forward, sum the
      modules' losses (style ×1e6), backward.
    placement "after": the shared ground truth's / measure_cuda.py's structure — the layers run, the taps are
      collected, then loss = Σ ((gram(F) − T)²).sum() + Σ ((F − T)²).sum(); ReLU(inplace=False).
    Optimizers: LBFGS(lr=1, history_size=H, max_iter=H+4, tolerances -1, max_eval unbounded) — its first step() call fills the history
      and ends with evaluations at full history; then a later step() call (max_iter=2: two evaluations, state
      carried) is the steady state. Adam(lr=0.02): step 1 (state born) and step 2 (steady).
    With random VGG weights the real loss drives L-BFGS (lr=1) into flat regions where it would stop early (zero
      gradient) or skip its updates, so the history would not fill: the tolerances are -1 (never stop early), and
      the evaluations before the last two of the first call use a diagonal quadratic surrogate loss on the image
      (the last two run the real network; the history vectors are real L-BFGS state of the same size;
      `history_after_first_call` records that the history is full); all_real=True runs the real closure every
      time. L-BFGS keeps a skipped pair (y·s <= 1e-10) referenced until the next evaluation: 2 image-sized
      vectors more; `first_call_last_evals_after_accepted_update` and `steady_call_update_accepted` record it.
    The window is the whole profile from just after the targets are built: its running sum starts at
      weights + image + targets, so every peak is above those; optimizer state is counted when it is born.
    """
    import torch
    import torchvision
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(SEED)
    px, placement, layers, optname = case["px"], case["placement"], case["layers"], case["optimizer"]
    style_names, content_names = STYLE_LAYERS[layers]
    last = max(VGG_NAMES.index(n) for n in style_names + content_names)
    rss_runtime = proc_status("VmRSS")
    feats = torchvision.models.vgg19(weights=None).features[:last + 1].eval()
    for p in feats.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(SEED + 1)
    content_img = torch.rand(1, 3, px, px, generator=gen)
    style_img = torch.rand(1, 3, px, px, generator=gen)

    def gram(x):
        a, b, c, d = x.size()
        f = x.view(a * b, c * d)
        return torch.mm(f, f.t()).div(a * b * c * d)

    class ContentLoss(nn.Module):
        def __init__(self, target):
            super().__init__()
            self.target = target.detach()

        def forward(self, x):
            self.loss = F.mse_loss(x, self.target)
            return x

    class StyleLoss(nn.Module):
        def __init__(self, target_feature):
            super().__init__()
            self.target = gram(target_feature).detach()

        def forward(self, x):
            self.loss = F.mse_loss(gram(x), self.target)
            return x

    class Normalization(nn.Module):
        def __init__(self):
            super().__init__()
            self.mean = torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
            self.std = torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)

        def forward(self, img):
            return (img - self.mean) / self.std

    targets = []
    opt = None

    def zero_grad():  # optimizer.zero_grad() (set_to_none); the warm-up evaluation runs before the optimizer exists
        if opt is not None:
            opt.zero_grad()
        else:
            img.grad = None

    if placement == "innet":
        model = nn.Sequential(Normalization())
        style_losses, content_losses = [], []
        with torch.no_grad():
            for i, layer in enumerate(feats):
                name = VGG_NAMES[i]
                if isinstance(layer, nn.ReLU):
                    layer = nn.ReLU(inplace=False)
                model.add_module(name, layer)
                if name in content_names:
                    cl = ContentLoss(model(content_img))
                    model.add_module("content_loss_" + name, cl)
                    content_losses.append(cl)
                    targets.append(cl.target)
                if name in style_names:
                    sl = StyleLoss(model(style_img))
                    model.add_module("style_loss_" + name, sl)
                    style_losses.append(sl)
                    targets.append(sl.target)
        model.eval()
        model.requires_grad_(False)
        img = content_img.clone().requires_grad_(True)

        def real_closure():
            with torch.no_grad():
                img.clamp_(0, 1)
            zero_grad()
            with phase("forward"):
                model(img)
            with phase("loss"):
                s = 0
                for sl in style_losses:
                    s = s + sl.loss
                c = 0
                for cl in content_losses:
                    c = c + cl.loss
                s = s * 1e6
                loss = s + c
            with phase("backward"):
                loss.backward()
            return s + c
    else:
        for m in feats.modules():
            if isinstance(m, nn.ReLU):
                m.inplace = False
        model = feats
        taps_at = {VGG_NAMES.index(n): n for n in style_names + content_names}

        def features(x):
            taps = {}
            for i, layer in enumerate(model):
                x = layer(x)
                if i in taps_at:
                    taps[taps_at[i]] = x
            return taps

        tmap = {}
        with torch.no_grad():
            ref = features(style_img)
            for k in style_names:
                tmap[k] = gram(ref[k])
            ref = features(content_img)
            for k in content_names:
                tmap[k] = ref[k].clone()
            del ref
        targets = list(tmap.values())
        img = content_img.clone().requires_grad_(True)

        def real_closure():
            zero_grad()
            with phase("forward"):
                taps = features(img)
            with phase("loss"):
                loss = sum(((gram(taps[k]) - tmap[k]) ** 2).sum() for k in style_names)
                loss = loss + sum(((taps[k] - tmap[k]) ** 2).sum() for k in content_names)
                del taps
            with phase("backward"):
                loss.backward()
            return loss

    # a diagonal quadratic with curvatures spread over [1, 1000]: L-BFGS never reaches an exactly zero gradient and
    # every step passes its curvature test (y·s > 1e-10), so the history fills (a plain 0.5·|x − a|² converges in
    # two steps and stops the first call early)
    surrogate_target = torch.rand(1, 3, px, px, generator=gen)
    surrogate_weight = torch.rand(1, 3, px, px, generator=gen) * 999 + 1
    counter = {"n": 0, "real_from": 0, "ids": []}

    def mixed_closure():
        counter["n"] += 1
        # which evaluation follows an accepted history update: L-BFGS appends (y, s) only when y·s > 1e-10; when it
        # skips, y and s stay referenced by step()'s locals through the next evaluation (2 image-sized vectors more)
        st = opt.state.get(img, {}) if opt is not None else {}
        od = st.get("old_dirs")
        counter["ids"].append(id(od[-1]) if od else None)
        if all_real or counter["n"] > counter["real_from"]:
            return real_closure()
        zero_grad()
        with phase("surrogate"):
            loss = 0.5 * (surrogate_weight * (img - surrogate_target) ** 2).sum()
            loss.backward()
        return loss

    param_bytes = storage_bytes(list(feats.parameters()))
    rec = {"key": key, "model": "vgg19_features", "family": "style", "scenario": "style", "size": case["size"],
           "placement": placement, "layers": layers, "style_layers": style_names, "content_layers": content_names,
           "optimizer": optname, "dtype": "float32", "device": "cpu", "threads": torch.get_num_threads(),
           "param_count": sum(p.numel() for p in feats.parameters()), "param_bytes": param_bytes,
           "input_bytes": storage_bytes([img]), "image_bytes": storage_bytes([img]),
           "target_bytes": storage_bytes(targets), "surrogate_prefill": not all_real}

    def run_all():
        nonlocal opt
        with torch.autograd.profiler.record_function("window::warmup"):
            real_closure()  # warm-up evaluation (oneDNN primitives, lazy initialisation)
        img.grad = None
        if optname == "adam":
            opt = torch.optim.Adam([img], lr=0.02)

            def adam_step():
                loss = real_closure()
                with phase("step"):
                    opt.step()
                return loss

            with torch.autograd.profiler.record_function("window::first"):
                adam_step()
            with torch.autograd.profiler.record_function("window::steady"):
                adam_step()
        else:
            h = int(optname[5:])
            opt = torch.optim.LBFGS([img], lr=1, max_iter=h + 4, history_size=h, tolerance_grad=-1,
                                    tolerance_change=-1, max_eval=10 ** 9)
            counter["n"], counter["real_from"] = 0, (h + 4) - 2
            counter["ids"] = []
            with torch.autograd.profiler.record_function("window::first"):
                with phase("step"):
                    opt.step(mixed_closure)
            st = opt.state[img]
            rec["history_after_first_call"] = len(st["old_dirs"])
            ids = counter["ids"]
            rec["first_call_last_evals_after_accepted_update"] = [ids[i] != ids[i - 1] for i in range(len(ids) - 2,
                                                                                                     len(ids))]
            last_id = id(st["old_dirs"][-1])
            counter["ids"] = []
            opt.param_groups[0]["max_iter"] = 2
            counter["real_from"] = 0
            with torch.autograd.profiler.record_function("window::steady"):
                with phase("step"):
                    opt.step(mixed_closure)
            rec["history_after_steady_call"] = len(st["old_dirs"])
            ids = counter["ids"]  # evaluation 1 at entry, evaluation 2 after iteration 1's update
            rec["steady_call_update_accepted"] = len(ids) == 2 and ids[1] != ids[0] and ids[0] == last_id
        rec["optimizer_state_bytes"] = storage_bytes([v for v in opt.state[img].values() if torch.is_tensor(v)] +
                                                     [t for v in opt.state[img].values() if isinstance(v, list)
                                                      for t in v if torch.is_tensor(t)])

    gc.collect()
    rec["rss_baseline_bytes"] = proc_status("VmRSS")
    rec["rss_runtime_bytes"] = rss_runtime
    t = time.time()
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with ModuleRanges(model):
            run_all()
    secs = time.time() - t
    summary, rows = replay(prof)
    summary["seconds"] = round(secs, 3)
    wp = summary.get("window_peaks", {})
    summary["first_peak_bytes"] = wp.get("first")
    summary["steady_peak_bytes"] = wp.get("steady")
    summary["warmup_peak_bytes"] = wp.get("warmup")
    summary["peak_bytes_whole_run"] = summary["peak_bytes"]
    # the figure compared: the larger of the first and steady-state optimisation windows
    summary["peak_bytes"] = max(v for k, v in wp.items() if k in ("first", "steady"))
    rec["methods"] = {"profiler": summary}
    # RSS cross-check: a plain run of the steady window, after a plain first call
    img.grad = None
    opt = None
    rss = {}

    def plain():
        nonlocal opt
        real_closure()
        img.grad = None
        if optname == "adam":
            opt = torch.optim.Adam([img], lr=0.02)
            real_closure()
            opt.step()

            def steady():
                real_closure()
                opt.step()
        else:
            h = int(optname[5:])
            opt = torch.optim.LBFGS([img], lr=1, max_iter=h + 4, history_size=h, tolerance_grad=-1,
                                    tolerance_change=-1, max_eval=10 ** 9)
            counter["n"], counter["real_from"] = 0, (h + 4) - 2
            opt.step(mixed_closure)
            opt.param_groups[0]["max_iter"] = 2
            counter["real_from"] = 0

            def steady():
                opt.step(mixed_closure)
        rss.update(rss_window(steady))

    if px <= 128 or all_real:  # the RSS cross-check costs a second run; at the smallest size only
        plain()
        rss["note"] = "steady-state window only, above the RSS at its start (optimizer state already resident)"
    else:
        rss.update(peak_bytes=None, note="not run at this size (time); see the 128 px cases")
    rec["methods"]["rss"] = rss
    rec["methods"]["profiler"]["steady_window_above_start_bytes"] = (
        wp.get("steady", 0) - summary.get("window_start_bytes", {}).get("steady", 0))
    rec["timeline_file"] = write_timeline(timeline_dir, key, rows)
    return rec


# ----------------------------------------------------------------------------------------------
# ONNX export, graph only
# ----------------------------------------------------------------------------------------------

def graph_only(src, dst):
    """Rewrite an exported model so that every float initializer (and any other of 1 KiB or more) is an
    external-data reference to a file that is not shipped, with no payload in the file. Returns stats."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(src, load_external_data=True)
    base = os.path.basename(dst) + ".data"
    offset = 0
    stats = {"initializers": 0, "external": 0, "inline_bytes": 0, "external_bytes": 0}
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    for t in m.graph.initializer:
        stats["initializers"] += 1
        arr = numpy_helper.to_array(t)
        nbytes = arr.nbytes
        if t.data_type in floats or nbytes >= 1024:
            for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data",
                          "string_data"):
                t.ClearField(field)
            del t.external_data[:]
            t.data_location = onnx.TensorProto.EXTERNAL
            for k, v in (("location", base), ("offset", str(offset)), ("length", str(nbytes))):
                e = t.external_data.add()
                e.key, e.value = k, v
            offset += (nbytes + 63) // 64 * 64
            stats["external"] += 1
            stats["external_bytes"] += nbytes
        else:
            stats["inline_bytes"] += nbytes
    # Constant nodes: report their payload (the exporters put shape arguments and scalars there)
    const_bytes = 0
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.t is not None and a.t.ByteSize():
                    const_bytes += a.t.ByteSize()
    stats["constant_node_bytes"] = const_bytes
    onnx.save_model(m, dst)
    stats["file_bytes"] = os.path.getsize(dst)
    stats["n_nodes"] = len(m.graph.node)
    stats["opset"] = {o.domain or "ai.onnx": o.version for o in m.opset_import}
    stats["n_functions"] = len(m.functions)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    stats["op_histogram"] = dict(sorted(ops.items(), key=lambda kv: -kv[1]))
    stats["inputs"] = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in m.graph.input}
    stats["outputs"] = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
                        for o in m.graph.output}
    return stats


def export_one(module, args, dst, exporter, training, input_names, output_names, dyn_axes, dyn_shapes):
    import torch
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.onnx")
        if exporter == "legacy":
            torch.onnx.export(module, tuple(args), path, dynamo=False, opset_version=17,
                              input_names=input_names, output_names=output_names, dynamic_axes=dyn_axes,
                              training=torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL,
                              do_constant_folding=not training)
        else:
            prog = torch.onnx.export(module, tuple(args), dynamo=True, input_names=input_names,
                                     output_names=output_names, dynamic_shapes=dyn_shapes, optimize=True)
            prog.save(path, external_data=True)
        stats = graph_only(path, os.path.join(ROOT, dst))
    stats["exporter"] = "torch %s %s" % (torch.__version__, "legacy TorchScript (dynamo=False)" if exporter == "legacy"
                                         else "dynamo (dynamo=True)")
    stats["mode"] = "train (BatchNorm and Dropout kept, no constant folding)" if training else \
        "eval (constant folding: BatchNorm folded)"
    return stats


def export_model(name, manifest, only=None):
    import torch
    spec = MODELS[name]
    labels = [l for l, _ in spec["sizes"]] if spec.get("fixed") else [spec["sizes"][0][0]]
    for label in labels:
        size = dict(spec["sizes"])[label]
        dims = input_dims(name, size)
        gen = torch.Generator().manual_seed(SEED + 1)
        inputs = make_inputs(name, dims, gen)
        in_names = list(dims.keys())
        out_names = ["logits"] if spec["family"] in ("transformer", "recurrent") else ["output"]
        if spec.get("fixed"):
            dyn_axes, dyn_shapes = None, None
        elif spec["family"] in ("transformer", "recurrent"):
            dyn_axes = {k: {i: d for i, d in enumerate(v)} for k, v in spec["inputs"].items()}
            dyn_axes["logits"] = {0: "batch", 1: "dec_seq" if "decoder_input_ids" in dims else "seq"}
            dims_obj = {d: torch.export.Dim(d, min=2, max=4096) for v in spec["inputs"].values() for d in v}
            dyn_shapes = {k: {i: dims_obj[d] for i, d in enumerate(v)} for k, v in spec["inputs"].items()}
        else:
            axes = {0: "batch", 2: "height", 3: "width"} if not spec.get("video") else \
                {0: "batch", 2: "frames", 3: "height", 4: "width"}
            dyn_axes = {"input": axes, "output": {0: "batch"}}
            dyn_shapes = None
            if spec.get("dynamo_multiple"):
                k = spec["dynamo_multiple"]
                side = lambda n: k * torch.export.Dim(n, min=1, max=4096 // k)  # noqa: E731
                dyn_shapes = ({2: side("height_blocks"), 3: side("width_blocks")},)
        for exp in spec.get("exporters", ("legacy",)):
            for training, path in zip((False, True), model_files(name, exp, label)):
                if only and not re.search(only, path):
                    continue
                if training and exp == "dynamo" and spec.get("dynamo_inference_only"):
                    continue
                torch.manual_seed(SEED)
                module = build_models()[name]()
                module.train(training)
                t = time.time()
                try:
                    stats = export_one(module, inputs, path, exp, training, in_names, out_names, dyn_axes, dyn_shapes)
                    stats["seconds"] = round(time.time() - t, 2)
                    stats["torch_param_elements"] = sum(p.numel() for p in module.parameters())
                    manifest[path] = stats
                    print("exported %s: %d nodes, %.1f KiB" % (path, stats["n_nodes"], stats["file_bytes"] / 1024),
                          flush=True)
                except Exception as e:  # noqa: BLE001 - the failure is recorded in the manifest
                    manifest[path] = {"failed": "%s: %s" % (type(e).__name__, str(e)[:2000])}
                    print("FAILED %s: %s" % (path, str(e)[:300]), flush=True)
    if "decode" in spec:
        d = spec["decode"]
        _, b, p = d["sizes"][0]
        dims = decode_input_dims(name, b, p)
        gen = torch.Generator().manual_seed(SEED + 1)
        inputs = [torch.randint(0, LM_VOCAB, tuple(dims["input_ids"]), generator=gen)]
        inputs += [torch.randn(*v, generator=gen) for k, v in dims.items() if k != "input_ids"]
        in_names = list(dims.keys())
        out_names = ["logits"] + ["present_%s_%d" % (kv, i) for i in range(d["layers"]) for kv in ("key", "value")]
        dyn_axes = {"input_ids": {0: "batch"}}
        for k in in_names[1:]:
            dyn_axes[k] = {0: "batch", 2: "past"}
        dyn_axes["logits"] = {0: "batch"}
        for k in out_names[1:]:
            dyn_axes[k] = {0: "batch", 2: "total"}
        bd, pd = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("past", min=2, max=8192)
        dyn_shapes = [{0: bd}] + [{0: bd, 2: pd} for _ in in_names[1:]]
        for exp in spec["exporters"]:
            path = decode_files(name, exp)
            if only and not re.search(only, path):
                continue
            torch.manual_seed(SEED)
            module = build_models()[name]().eval()
            t = time.time()
            try:
                stats = export_one(module, inputs, path, exp, False, in_names, out_names, dyn_axes,
                                   (dyn_shapes[0], tuple(dyn_shapes[1:])) if exp == "dynamo" else None)
                stats["seconds"] = round(time.time() - t, 2)
                stats["torch_param_elements"] = sum(p.numel() for p in module.parameters())
                manifest[path] = stats
                print("exported %s: %d nodes, %.1f KiB" % (path, stats["n_nodes"], stats["file_bytes"] / 1024),
                      flush=True)
            except Exception as e:  # noqa: BLE001
                manifest[path] = {"failed": "%s: %s" % (type(e).__name__, str(e)[:2000])}
                print("FAILED %s: %s" % (path, str(e)[:300]), flush=True)


def export_vgg(manifest):
    """VGG-19 features conv1_1..relu5_1 (torchvision layout): graph outputs relu1_1, relu2_1, relu3_1, relu4_1,
    relu4_2, relu5_1 (as the shared vgg19_style), and every intermediate tensor renamed to its layer's name
    (conv1_1, relu1_1, ..., pool4) so --style-layers can point at convolution outputs before their ReLU."""
    import onnx
    import torch
    import torchvision
    path = "%s/vgg19_style_taps.onnx" % FIXTURES
    torch.manual_seed(SEED)
    feats = torchvision.models.vgg19(weights=None).features[:30].eval()
    outs = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]

    class Taps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = feats

        def forward(self, x):
            r = []
            for i, layer in enumerate(self.features):
                x = layer(x)
                if VGG_NAMES[i] in outs:
                    r.append(x)
            return tuple(r)

    x = torch.randn(1, 3, 224, 224)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        torch.onnx.export(Taps(), (x,), raw, dynamo=False, opset_version=17, input_names=["input"], output_names=outs,
                          dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}})
        m = onnx.load(raw)
        # rename node outputs to layer names, in node order (Conv, Relu, MaxPool follow torchvision's order)
        rename = {}
        i = 0
        for n in m.graph.node:
            if n.op_type in ("Conv", "Relu", "MaxPool"):
                want = VGG_NAMES[i]
                if n.output[0] not in outs:
                    rename[n.output[0]] = want
                else:
                    assert n.output[0] == want, (n.output[0], want)
                n.name = want
                i += 1
        assert i == 30, i
        for n in m.graph.node:
            for j, v in enumerate(n.input):
                if v in rename:
                    n.input[j] = rename[v]
            for j, v in enumerate(n.output):
                if v in rename:
                    n.output[j] = rename[v]
        for vi in m.graph.value_info:
            if vi.name in rename:
                vi.name = rename[vi.name]
        renamed = os.path.join(tmp, "renamed.onnx")
        onnx.save_model(m, renamed)
        stats = graph_only(renamed, os.path.join(ROOT, path))
    stats["exporter"] = "torch %s legacy TorchScript (dynamo=False), tensors renamed to layer names" % torch.__version__
    stats["tensor_names"] = VGG_NAMES
    manifest[path] = stats
    print("exported %s: %d nodes, %.1f KiB" % (path, stats["n_nodes"], stats["file_bytes"] / 1024), flush=True)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------

def family_file(family):
    return os.path.join(ROOT, OUT_DIR, "cpu_%s.json" % family)


def load_json(path, default):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def save_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def child_env():
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS),
                "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", "PYTHONHASHSEED": "0"})
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["list", "export", "measure", "one", "relink"],
                    help="relink: rewrite the nnmem arguments stored with every measured case from this script's "
                         "case list (after an export changed a file name), without measuring again")
    ap.add_argument("--only", help="regular expression on case keys (measure) or file paths (export)")
    ap.add_argument("--force", action="store_true", help="re-measure cases already in the output files")
    ap.add_argument("--timelines", default="/work/measure-timelines",
                    help="folder for per-event timelines (gzip JSON); '' for none")
    ap.add_argument("--key", help="(internal) the case a child process measures")
    ap.add_argument("--result", help="(internal) where the child writes its record")
    ap.add_argument("--all-real", action="store_true", help="style L-BFGS: no surrogate prefill")
    a = ap.parse_args()
    os.chdir(ROOT)
    cases = all_cases()
    if a.command == "list":
        for k, c in cases.items():
            print("%-45s %s" % (k, " | ".join(" ".join(e["args"][1:2] + e["args"][5:]) for e in c["nnmem"][:1])))
        print("%d cases" % len(cases))
        return
    if a.command == "one":
        import torch
        torch.set_num_threads(THREADS)
        case = cases[a.key]
        t = time.time()
        if case["kind"] == "style":
            rec = style_case(a.key, case, a.timelines, all_real=a.all_real)
        else:
            rec = model_case(a.key, case, a.timelines)
        rec["wall_seconds"] = round(time.time() - t, 1)
        rec["nnmem"] = case["nnmem"]
        with open(a.result, "w") as f:
            json.dump(rec, f)
        return
    if a.command == "relink":
        for fam in sorted({c["family"] for c in cases.values()}):
            fpath = family_file(fam)
            data = load_json(fpath, None)
            if not data:
                continue
            for key, rec in data["cases"].items():
                rec["nnmem"] = cases[key]["nnmem"]
            save_json(fpath, data)
        return
    if a.command == "export":
        import torch
        torch.set_num_threads(THREADS)
        os.makedirs(FIXTURES, exist_ok=True)
        mpath = os.path.join(FIXTURES, "manifest.json")
        manifest = load_json(mpath, {"meta": {}, "files": {}})
        manifest["meta"] = versions()
        manifest["meta"]["note"] = (
            "Graph-only ONNX written by scripts/measure_cpu.py export: every float initializer (and any other of "
            "1 KiB or more) is an external-data reference to a .data file that is not shipped; small integer "
            "initializers (shape arguments) stay inline. Random weights (torch.manual_seed(0)). NAME.onnx is the "
            "eval export (constant folding: BatchNorm folded), NAME.train.onnx the training export "
            "(TrainingMode.TRAINING, do_constant_folding=False: BatchNorm and Dropout kept); .dynamo. files come "
            "from the dynamo exporter (dynamo=True; the module in train() mode for .train.).")
        files = manifest["files"]
        for name in MODELS:
            export_model(name, files, a.only)
            save_json(mpath, manifest)
        if not a.only or re.search(a.only, "vgg19_style_taps"):
            export_vgg(files)
        save_json(mpath, manifest)
        return
    # measure: one child process per case
    meta = versions()
    meta["method"] = {
        "profiler": "torch.profiler profile_memory=True: running sum of the CPU allocator's alloc/free events in "
                    "order, above the baseline (weights, buffers, inputs resident); a warm-up run first",
        "rss": "VmHWM - VmRSS(before) of a plain run after clear_refs 5; glibc mmap threshold 64 KiB",
        "saved": "saved_tensors_hooks during the warm-up run: unique storages saved for backward",
        "baseline": "weights, buffers and inputs resident before the window (style: weights, image, targets; "
                    "decode: weights, the new token and the past K/V cache)",
    }
    todo = [k for k in cases if not a.only or re.search(a.only, k)]
    for key in todo:
        case = cases[key]
        fpath = family_file(case["family"])
        data = load_json(fpath, {"meta": meta, "cases": {}})
        if key in data["cases"] and not a.force:
            continue
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            res = tf.name
        cmd = [sys.executable, os.path.abspath(__file__), "one", "--key", key, "--result", res,
               "--timelines", a.timelines]
        if a.all_real:
            cmd.append("--all-real")
        t = time.time()
        p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True)
        if p.returncode != 0:
            print("FAILED %s (%.0f s): %s" % (key, time.time() - t, p.stderr[-3000:]), flush=True)
            continue
        with open(res) as f:
            rec = json.load(f)
        os.unlink(res)
        data = load_json(fpath, {"meta": meta, "cases": {}})
        data["meta"] = meta
        data["cases"][key] = rec
        data["cases"] = dict(sorted(data["cases"].items()))
        save_json(fpath, data)
        pr = rec["methods"]["profiler"]
        rss = rec["methods"]["rss"]["peak_bytes"]
        print("%-45s profiler %9.1f MiB  rss %9s MiB  (%.0f s)" % (
            key, pr["peak_bytes"] / 2**20, "%.1f" % (rss / 2**20) if rss is not None else "—", time.time() - t),
            flush=True)


if __name__ == "__main__":
    main()
